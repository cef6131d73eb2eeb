"""Test doubles: a fast lexicon sentiment model behind the same ModelHandler interface.

Pipeline tests that check counts, metrics and sinks use it so that they run in
seconds; the real embedded model runs through the whole job in
`tests/test_real_model_e2e.py`, and through its Beam handler in `test_models.py`.
"""

from __future__ import annotations

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.scorer import JudgedText, text_of

NEGATIVE = ("bad", "hate", "broken", "awful", "worst", "ужас", "плох", "loš", "лош", "жах", "fail")
TOPIC_WORDS = {
    "price_promotion": ("price", "discount", "promo", "cijena", "цена", "ціна", "скидк"),
    "purchase_delivery": ("delivery", "order", "arrived", "dostav", "достав"),
    "customer_service": ("support", "service", "refund", "поддержк", "podrš"),
}
# Words of everyday senses of brand names: a post holding one reads as not about the brand (relevance 0.1).
OTHER_SENSE = ("planet", "fruit", "juice", "fridge", "холодильник", "планет", "voće", "physics")
POSITIVE = ("love", "great", "good", "best", "отлич", "люблю", "super", "odličan", "одличан", "чудов")


class _Lexicon:
    model_id = "fake-lexicon-v1"

    def scores(self, text: str) -> tuple[float, float, float]:
        low = text.lower()
        if any(w in low for w in NEGATIVE):
            return 0.8, 0.15, 0.05
        if any(w in low for w in POSITIVE):
            return 0.05, 0.15, 0.8
        return 0.1, 0.8, 0.1


class FakeSentimentHandler(ModelHandler):
    """Scores by keywords; `fail_on` makes every batch holding that substring raise."""

    def __init__(self, fail_on: str | None = None):
        super().__init__()
        self._fail_on = fail_on
        self._profiles: tuple[str, ...] = ()

    def with_profiles(self, profiles) -> "FakeSentimentHandler":
        """A copy that also scores relevance to the profiles, by keywords (as the real handler's method)."""
        handler = FakeSentimentHandler(self._fail_on)
        handler._profiles = tuple(p.name for p in profiles)
        return handler

    def load_model(self):
        return _Lexicon()

    def run_inference(self, batch, model, inference_args=None):
        # As the real handler: a JudgedText says whether its relevance is read.
        judged = [item.judged if isinstance(item, JudgedText) else True for item in batch]
        batch = [text_of(item) for item in batch]
        if self._fail_on and any(self._fail_on in text for text in batch):
            raise RuntimeError(f"poisoned batch ({self._fail_on!r})")
        for text, judge in zip(batch, judged):
            neg, neu, pos = model.scores(text)
            label = max((neg, "negative"), (neu, "neutral"), (pos, "positive"))[1]
            low = text.lower()
            scores = {t: (0.9 if any(w in low for w in words) else 0.1) for t, words in TOPIC_WORDS.items()}
            topics = sorted((t for t, v in scores.items() if v >= 0.5), key=lambda t: (-scores[t], t))
            inference = {"sentiment": label, "p_negative": neg, "p_neutral": neu, "p_positive": pos,
                         "topics": topics, "topic_scores": scores}
            if self._profiles and judge:
                relevance = 0.1 if any(w in low for w in OTHER_SENSE) else 0.9
                inference["relevance"] = {name: relevance for name in self._profiles}
            yield PredictionResult(text, inference, model.model_id)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 8}
