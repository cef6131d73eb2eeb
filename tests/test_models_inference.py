"""Topics, text normalisation, fine-tuned layers, precisions and the scoring step's dedupe and batching.

Runs offline: the embedded model is the one converted into the cache (see `test_models.py`);
Hugging Face topic models are tiny ones built here; the Beam step is exercised with a
counting double of the model handler.
"""

from __future__ import annotations

import datetime
import pathlib
import typing

import apache_beam as beam
import numpy as np
import pytest
import torch
from apache_beam.ml.inference.base import ModelHandler, PredictionResult
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from transformers import BertConfig, BertModel

from models.encoder import set_precision
from models.finetune import add_lora, export_lora, merge_lora
from models.handler import ScorerModelHandler
from models.embedded_scorer import EmbeddedScorer
from models.loader import load_scorer
from models.scorer import LABELS
from models.text import model_text, text_key
from models.hf_topics import ClassifierTopicModel, ZeroShotTopicModel, check_topic_model
from models.taxonomy import DEFAULT_TOPICS, OTHER, MeanCosineTopicScorer, Topic, merge_taxonomy
from schemas import Mention
from schemas.config import ConfigError, parse_config
from tests.support.tiny_model import save_tiny_hf_model
from transforms.matching import Match
from transforms.scoring import ScoreTexts, SortBundleByLength

# ------------------------------------------------------------------------------ text


@pytest.mark.parametrize(("text", "expected"), [
    ("RT @brand: Great news http://t.co/AbC123", "Great news http"),
    ("@Sprite you rock https://x.com/a?b=1 and www.example.com/x", "@user you rock http and http"),
    ("mail me at someone@example.com", "mail me at someone@example.com"),
    ("  tabs\tand\nnewlines  ", "tabs and newlines"),
    ("e\u0301", "\u00e9"),
    ("RT @a: RT @b: hi", "hi"),
])
def test_model_text(text, expected):
    assert model_text(text) == expected
    assert model_text(expected) == expected  # idempotent


def test_text_key_ignores_links_handles_and_retweet_prefix():
    assert text_key("Love it @x https://t.co/1") == text_key("RT @y: Love it @z https://t.co/2")
    assert text_key("Love it") != text_key("love it")


# ---------------------------------------------------------------------------- topics

AXES = {"price": np.array([1.0, 0, 0, 0]), "delivery": np.array([0, 1.0, 0, 0]), "taste": np.array([0, 0, 1.0, 0])}


def _axis_embed(phrases):
    """Embeds a phrase as the unit vector of the axis word it contains (a fake, linear encoder)."""
    out = []
    for phrase in phrases:
        v = sum((vec for word, vec in AXES.items() if word in phrase), np.zeros(4)) + np.array([0, 0, 0, 0.1])
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


TOY = (Topic("price_promotion", ("price",)), Topic("purchase_delivery", ("delivery",)),
       Topic("product_experience", ("taste",)), Topic(OTHER))


def test_mean_cosine_scores_are_multi_label_with_other_as_the_rest():
    # The previous scorer, kept for tools/eval_topics.py; the few-shot one is tested in test_topics.py.
    scorer = MeanCosineTopicScorer(TOY, _axis_embed, threshold=0.5)
    scores = scorer.scores(_axis_embed(["price", "price delivery", "nothing at all"]))
    assert scores.shape == (3, 4) and scores.min() >= 0.0 and scores.max() <= 1.0
    labels = scorer.label(scores)
    assert labels[0] == ["price_promotion"]
    assert set(labels[1]) == {"price_promotion", "purchase_delivery"}
    assert labels[2] == [OTHER]
    np.testing.assert_allclose(scores[:, 3], 1.0 - scores[:, :3].max(axis=1), atol=1e-6)
    # Best first.
    mixed = scorer.scores(_axis_embed(["price price delivery"]))
    assert scorer.label(mixed)[0][0] == "price_promotion"


def test_merge_taxonomy_extends_replaces_and_validates():
    merged = merge_taxonomy([Topic("sustainability", ("recycling",)), Topic("price_promotion", ("cost",))])
    names = [t.name for t in merged]
    assert names[-1] == OTHER and "sustainability" in names and "customer_service" in names
    assert dict((t.name, t.phrases) for t in merged)["price_promotion"] == ("cost",)
    only = merge_taxonomy([Topic("sustainability", ("recycling",))], replace=True)
    assert [t.name for t in only] == ["sustainability", OTHER]
    with pytest.raises(ValueError, match="needs at least one"):
        merge_taxonomy([Topic("empty", ())])
    with pytest.raises(ValueError, match="topic name"):
        merge_taxonomy([Topic("Bad Name", ("x",))])


def test_topics_section_of_the_config():
    config = parse_config({"brands": [{"id": "a", "names": ["A"]}],
                           "topics": {"threshold": 0.4, "taxonomy": {"sustainability": ["recycling", "экология"]}}})
    assert config.topics.threshold == 0.4
    assert config.topics.taxonomy == (("sustainability", ("recycling", "экология")),)
    with pytest.raises(ConfigError, match=r"b.yaml: topics.taxonomy.x: give at least one"):
        parse_config({"brands": [{"id": "a", "names": ["A"]}], "topics": {"taxonomy": {"x": []}}}, "b.yaml")
    with pytest.raises(ConfigError, match=r"topics.threshold"):
        parse_config({"brands": [{"id": "a", "names": ["A"]}], "topics": {"threshold": 1.5}}, "b.yaml")


# ------------------------------------------------------------- the embedded model


@pytest.fixture(scope="module")
def classifier() -> EmbeddedScorer:
    return EmbeddedScorer(topics=DEFAULT_TOPICS)


def test_topics_come_from_the_same_forward_pass(classifier):
    calls = []
    # The embeddings run once per batch whichever way the layers above branch.
    handle = classifier.encoder.model.embeddings.register_forward_hook(lambda *args: calls.append(1))
    try:
        scores = classifier.score(["The courier lost my parcel and the delivery is two weeks late.",
                                   "Support refunded me within a day, thank you!",
                                   "20% discount with the promo code this weekend"])
    finally:
        handle.remove()
    assert len(calls) == 1  # one batch, one encoder pass, for sentiment and topics together
    topics = classifier.topic_labels(scores.topic_scores)
    assert topics[0][0] == "purchase_delivery"
    assert "customer_service" in topics[1]
    assert topics[2][0] == "price_promotion"
    assert scores.probs.shape == (3, 3) and scores.topic_scores.shape == (3, len(DEFAULT_TOPICS))
    assert "+topics-" in classifier.model_id


def test_topics_across_languages(classifier):
    texts = ["Доставка опоздала на неделю, курьер не отвечает", "Dostava kasni tjedan dana, dostavljač se ne javlja",
             "Доставка запізнилася на тиждень, кур'єр не відповідає"]
    topics = classifier.topic_labels(classifier.score(texts).topic_scores)
    assert all(t and t[0] == "purchase_delivery" for t in topics), topics


def test_handler_inference_has_topics_and_can_do_without(classifier):
    results = list(ScorerModelHandler().run_inference(["Delivery was late again, awful."], classifier))
    inference = results[0].inference
    assert set(inference) == {"sentiment", "p_negative", "p_neutral", "p_positive", "topics", "topic_scores"}
    assert set(inference["topic_scores"]) == {t.name for t in DEFAULT_TOPICS}
    assert inference["topics"] == sorted(inference["topics"], key=lambda t: -inference["topic_scores"][t])
    assert ScorerModelHandler(topic_model="none").topic_names == ()


def test_int8_and_bf16_stay_close_to_fp32(classifier):
    texts = ["I love it, best purchase ever!", "Terrible, it broke after a day.", "The shop opens at nine."]
    reference = classifier.predict_proba(texts)
    for precision in ("int8", "bf16"):
        other = EmbeddedScorer(precision=precision)
        probs = other.predict_proba(texts)
        assert (probs.argmax(axis=1) == reference.argmax(axis=1)).all(), precision
        assert np.abs(probs - reference).max() < 0.15, precision
        assert other.model_id.endswith(f"-{precision}")


def test_precision_conversion_on_a_tiny_model(tmp_path):
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (2, 7))
    outputs = {}
    for precision in ("fp32", "bf16", "int8"):
        torch.manual_seed(0)
        model = set_precision(BertModel(config).eval(), precision)
        with torch.inference_mode():
            outputs[precision] = model(input_ids=ids).last_hidden_state.float()
    for precision in ("bf16", "int8"):
        cosine = torch.nn.functional.cosine_similarity(outputs[precision], outputs["fp32"], dim=-1)
        assert cosine.min() > 0.97, precision
    with pytest.raises(ValueError, match="precision"):
        set_precision(BertModel(config), "fp8")


def test_shipped_model_records_how_it_was_trained(classifier):
    meta = classifier.head_metadata
    assert "9 held out" in meta["training_data"]["split"]
    tuned = meta["encoder"].get("fine_tuned")
    # With fine-tuned layers, the model id says so and the layers file it names ships beside the head, small.
    assert ("+layers-" in classifier.model_id) == bool(tuned)
    heads = pathlib.Path(__file__).resolve().parents[1] / "models" / "heads"
    # Rank-128 updates: ~1.8 MB a layer (14.3 MB for the shipped 8); a layer in full, in fp16, would be ~3.5 MB.
    assert all((heads / t["file"]).stat().st_size < 2_000_000 * len(t["layers"]) for t in [tuned] if t)


# ------------------------------------------------------------- fine-tuned layers


def test_lora_updates_merge_into_plain_weights():
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(1)
    base = BertModel(config, add_pooling_layer=False).eval()
    import copy

    wrapped = copy.deepcopy(base.encoder.layer[1])
    add_lora(wrapped, rank=4)
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name or "LayerNorm" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.05)
    merged = merge_lora(base.state_dict(), {k: v.float() for k, v in export_lora({1: wrapped}).items()})
    assert all(k.startswith("encoder.layer.1.") for k in merged)
    tuned = copy.deepcopy(base)
    tuned.load_state_dict(merged, strict=False)
    x = torch.randn(2, 5, 32)
    with torch.inference_mode():
        want = wrapped.eval()(x)
        got = tuned.encoder.layer[1](x)
    want = want[0] if isinstance(want, tuple) else want
    got = got[0] if isinstance(got, tuple) else got
    # fp16 storage of the updates: close, not bit-equal.
    torch.testing.assert_close(got, want, atol=5e-3, rtol=5e-3)


# ------------------------------------------------------------ Hugging Face topic models


def test_topic_classifier_needs_a_mapping_for_unknown_labels(tmp_path):
    save_tiny_hf_model(tmp_path, ["price_promotion", "LABEL_1", "shipping"], bias=[2.0, 0.0, 1.0])
    topics = merge_taxonomy()
    with pytest.raises(ValueError, match="topic_label_map") as error:
        check_topic_model(str(tmp_path), topics)
    assert "'LABEL_1'" in str(error.value) and "'shipping'" in str(error.value)
    mapping = {"LABEL_1": "ignore", "shipping": "purchase_delivery"}
    assert check_topic_model(str(tmp_path), topics, mapping) == "classifier"
    with pytest.raises(ValueError, match="not a topic"):
        check_topic_model(str(tmp_path), topics, {"LABEL_1": "nope", "shipping": "purchase_delivery"})
    model = ClassifierTopicModel(str(tmp_path), topics, mapping)
    scores = model.scores(["good service", "bad"])
    names = [t.name for t in topics]
    expected = np.exp([2.0, 0.0, 1.0]) / np.exp([2.0, 0.0, 1.0]).sum()
    np.testing.assert_allclose(scores[:, names.index("price_promotion")], expected[0], atol=1e-5)
    np.testing.assert_allclose(scores[:, names.index("purchase_delivery")], expected[2], atol=1e-5)


def test_zero_shot_nli_topics(tmp_path):
    save_tiny_hf_model(tmp_path, ["entailment", "neutral", "contradiction"], bias=[1.0, 0.0, -1.0])
    topics = TOY
    assert check_topic_model(str(tmp_path), topics) == "nli"
    model = ZeroShotTopicModel(str(tmp_path), topics)
    scores = model.scores(["good movie", "bad service"])
    entail = np.exp(1.0) / (np.exp(1.0) + np.exp(-1.0))
    np.testing.assert_allclose(scores[:, :3], entail, atol=1e-5)
    np.testing.assert_allclose(scores[:, 3], 1.0 - entail, atol=1e-5)
    generic = tmp_path / "generic"
    save_tiny_hf_model(generic, ["LABEL_0", "LABEL_1", "LABEL_2"], bias=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="topic_label_map"):
        check_topic_model(str(generic), topics)
    assert check_topic_model(str(generic), topics, {"entailment": "LABEL_0"}) == "nli"


def test_hf_sentiment_with_an_hf_topic_model(tmp_path):
    sentiment, topic = tmp_path / "s", tmp_path / "t"
    save_tiny_hf_model(sentiment, ["negative", "neutral", "positive"], seed=2)
    save_tiny_hf_model(topic, ["price_promotion", "other"], bias=[0.0, 1.0])
    clf = load_scorer(str(sentiment), topics=merge_taxonomy(), topic_model=str(topic))
    scores = clf.score(["good", "bad service"])
    assert scores.topic_scores.shape == (2, len(merge_taxonomy()))
    assert clf.model_id == f"{sentiment}+topics:{topic}"


def test_handler_check_fails_before_loading(tmp_path):
    save_tiny_hf_model(tmp_path, ["joy", "anger", "neutral"])
    handler = ScorerModelHandler(str(tmp_path), topic_model="none")
    with pytest.raises(ValueError, match="label_map"):
        handler.check()
    ScorerModelHandler(str(tmp_path), label_map={"joy": "positive", "anger": "negative"},
                          topic_model="none").check()


def test_pipeline_flags_build_the_handler_from_the_config(tmp_path):
    from pipelines.options import SocialListeningOptions, model_config
    from pipelines.plan import model_handler

    def _model_handler(argv, brands):
        options = PipelineOptions(argv)
        return model_handler(model_config(options.view_as(SocialListeningOptions), options, brands))

    brands = parse_config({"brands": [{"id": "a", "names": ["A"]}],
                           "topics": {"threshold": 0.6, "taxonomy": {"sustainability": ["recycling"]}}})
    handler = _model_handler(["--precision", "int8"], brands)
    assert "sustainability" in handler.topic_names and handler.topic_names[-1] == OTHER
    assert handler._topic_threshold == 0.6 and handler._precision == "int8"
    save_tiny_hf_model(tmp_path, ["joy", "anger", "neutral"])
    with pytest.raises(ConfigError, match="--model"):
        _model_handler(["--model", str(tmp_path), "--topic_model", "none"], brands)
    nli = tmp_path / "nli"
    save_tiny_hf_model(nli, ["LABEL_0", "LABEL_1", "LABEL_2"])
    with pytest.raises(ConfigError, match="--topic_model"):
        _model_handler(["--topic_model", str(nli)], brands)


# --------------------------------------------------------- the scoring step (Beam)


def _mention(mid: str, text: str) -> Mention:
    values = {name: None for name in Mention._fields}
    values.update(id=mid, platform="x", text=text, connector="file",
                  created_at=datetime.datetime(2026, 9, 7, 10, tzinfo=datetime.timezone.utc))
    return Mention(**values)


class _Model:
    """Stands for a model (RunInference keeps a weak reference to it)."""


class CountingHandler(ModelHandler):
    """Scores every text neutral and records (in a file: workers may be other processes) what it saw."""

    def __init__(self, log: pathlib.Path):
        super().__init__()
        self._log = str(log)

    def load_model(self):
        return _Model()

    def run_inference(self, batch, model, inference_args=None):
        with open(self._log, "a", encoding="utf-8") as handle:
            handle.write("\x1e".join(batch) + "\n")
        for text in batch:
            yield PredictionResult(text, {"sentiment": "neutral", "p_negative": 0.1, "p_neutral": 0.8,
                                          "p_positive": 0.1, "topics": ["other"], "topic_scores": {"other": 0.9}},
                                   "counting")

    def batch_elements_kwargs(self):
        return {"min_batch_size": 2, "max_batch_size": 2}


class JudgedRecordingHandler(CountingHandler):
    """Records each value as `text|judged` (JudgedText) or `text|plain`."""

    def run_inference(self, batch, model, inference_args=None):
        from models.scorer import JudgedText

        with open(self._log, "a", encoding="utf-8") as handle:
            handle.write("\x1e".join(f"{v.text}|{v.judged}" if isinstance(v, JudgedText) else f"{v}|plain"
                                      for v in batch) + "\n")
        for value in batch:
            yield PredictionResult(value.text if isinstance(value, JudgedText) else value, {
                "sentiment": "neutral", "p_negative": 0.1, "p_neutral": 0.8, "p_positive": 0.1, "topics": ["other"],
                "topic_scores": {"other": 0.9}}, "recording")


ORANGE_CLAUSE, SPRITE_CLAUSE = "Orange came in two minutes", "Sprite was awful again"
BOTH = f"{ORANGE_CLAUSE}, but {SPRITE_CLAUSE}"


@pytest.mark.parametrize("judged_brands, expected", [
    ((), {"Orange bill is too high|plain", "Sprite is fine|plain", f"{BOTH}|plain", f"{ORANGE_CLAUSE}|plain",
          f"{SPRITE_CLAUSE}|plain"}),
    (("orange",), {"Orange bill is too high|True", "Sprite is fine|False", f"{BOTH}|True", f"{ORANGE_CLAUSE}|False",
                   f"{SPRITE_CLAUSE}|False"}),
])
def test_texts_say_whether_their_relevance_is_read(tmp_path, judged_brands, expected):
    """With judged brands, the handler learns per text whether one of its posts matches one of them (a
    clause pass never: relevance is the post's); without, it gets plain texts as before."""
    log = tmp_path / "calls.txt"
    orange, sprite = Match("orange", "untagged", "Orange", "names"), Match("sprite", "untagged", "Sprite", "names")
    posts = [(_mention("m1", "Orange bill is too high"), (orange,)), (_mention("m2", "Sprite is fine"), (sprite,)),
             (_mention("m3", BOTH), (orange, sprite))]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(JudgedRecordingHandler(log), judged_brands=judged_brands)
        assert_that(out["brand_mentions"] | beam.Map(lambda r: r.mention_id),
                    equal_to(["m1", "m2", "m3", "m3"]))
    seen = {t for line in log.read_text(encoding="utf-8").splitlines() for t in line.split("\x1e")}
    # m3's clauses, one toward each brand, are scored in passes of their own.
    assert seen == expected


def test_each_distinct_text_is_scored_once(tmp_path):
    log = tmp_path / "calls.txt"
    sprite = Match("sprite", "untagged", "Sprite", "names")
    posts = [
        (_mention("m1", "Sprite is fine https://t.co/aaa"), (sprite,)),
        (_mention("m2", "RT @fan: Sprite is fine https://t.co/bbb"), (sprite,)),
        (_mention("m3", "Sprite   is fine  https://t.co/ccc"), (sprite, Match("fanta", "untagged", "Fanta", "names"))),
        (_mention("m4", "Coke is better than Sprite, honestly"), (sprite,)),
    ]
    with TestPipeline() as p:
        out = p | beam.Create(posts) | ScoreTexts(CountingHandler(log))
        assert_that(out["brand_mentions"] | beam.Map(lambda r: (r.mention_id, r.brand_id, r.topics)),
                    equal_to([("m1", "sprite", ["other"]), ("m2", "sprite", ["other"]), ("m3", "sprite", ["other"]),
                              ("m3", "fanta", ["other"]), ("m4", "sprite", ["other"])]))
    seen = [t for line in log.read_text(encoding="utf-8").splitlines() for t in line.split("\x1e")]
    assert sorted(seen) == ["Coke is better than Sprite, honestly", "Sprite is fine http"]


def test_sort_bundle_by_length_reorders_a_bundle():
    dofn = SortBundleByLength()
    dofn.start_bundle()
    for text in ["ccc", "a", "bb"]:
        assert list(dofn.process((text, text))) == []
    emitted = list(dofn.finish_bundle())
    assert [wv.value[1] for wv in emitted] == ["a", "bb", "ccc"]
    assert all(wv.windows == (GlobalWindow(),) for wv in emitted)


def test_sort_bundle_by_length_holds_at_most_max_buffered_elements():
    # A DirectRunner bundle can be the whole input: the sort must not hold it all.
    dofn = SortBundleByLength(max_buffered=3)
    dofn.start_bundle()
    texts = ["dddd", "a", "ccc", "bb", "eeeee", "f", "gg"]
    emitted = []
    for text in texts:
        emitted += list(dofn.process((text, text)))
        assert len(dofn._buffer) < 3
    assert [e[1] for e in emitted] == ["a", "ccc", "dddd", "f", "bb", "eeeee"]
    assert [wv.value[1] for wv in dofn.finish_bundle()] == ["gg"]
    with pytest.raises(ValueError):
        SortBundleByLength(max_buffered=0)


def test_windowed_input_is_scored_without_the_bundle_sort(tmp_path):
    # SortBundleByLength re-emits into the global window; windowed input must keep its windows.
    sprite = Match("sprite", "untagged", "Sprite", "names")
    posts = [(_mention(f"m{i}", f"Sprite post number {i}"), (sprite,)) for i in range(3)]
    with TestPipeline() as p:
        windowed = (p | beam.Create(posts)
                    | beam.Map(lambda pair: beam.window.TimestampedValue(pair, pair[0].created_at.timestamp()))
                    | beam.WindowInto(beam.window.FixedWindows(3600)))
        out = windowed | ScoreTexts(CountingHandler(tmp_path / "calls.txt"))
        counted = (out["brand_mentions"] | beam.Map(lambda r: ("all", 1)) | beam.CombinePerKey(sum))
        assert_that(counted, equal_to([("all", 3)]))
    names = [t.unique_name for t in p.to_runner_api().components.transforms.values()]
    assert any(n.endswith("/RunInference") for n in names)
    assert not any(n.endswith("/SortByLength") for n in names)


def test_labels_constant_is_unchanged():
    assert LABELS == ("negative", "neutral", "positive")
    assert isinstance(typing.get_type_hints(SortBundleByLength.process), dict)
