"""The few-shot topic classifier on the shipped encoder: realistic posts per language, `other`, one pass.

The posts here were written for this test (in none of the taxonomy's examples or the
validation and test sets of `data/handwritten/topics/`), one clear case per line; the
accuracy over many posts is `make eval-topics`'s job. The classifier is fitted when the
model loads, from `DEFAULT_TOPICS`, as a worker does.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.embedded_scorer import EmbeddedScorer
from models.encoder import BASE_LAST
from models.taxonomy import DEFAULT_TOPICS, OTHER

CASES = [
    ("en", "The courier left my parcel at the wrong address and tracking says delivered", "purchase_delivery"),
    ("en", "20% off all sneakers this weekend with the code RUN20", "price_promotion"),
    ("en", "cancelled my gym membership today, moving to the one across the street", "churn"),
    ("en", "what a lovely morning, off to walk the dog", OTHER),
    ("ru", "заказ с Озона опаздывает на неделю, курьер не берёт трубку", "purchase_delivery"),
    ("ru", "служба поддержки банка вернула деньги за ошибочное списание за один день", "customer_service"),
    ("ru", "ушёл от этого провайдера к конкуренту, хватит", "churn"),
    ("ru", "всем хороших выходных, у нас сегодня солнце", OTHER),
    ("uk", "посилка їде вже два тижні, трекінг не оновлюється", "purchase_delivery"),
    ("uk", "знижка 40% на всі куртки до кінця тижня", "price_promotion"),
    ("uk", "нова реклама цього бренду з футболістами дуже смішна", "marketing_content"),
    ("uk", "у нас вдома сьогодні свято, печемо пиріг", OTHER),
    ("hr", "paket kasni već dva tjedna, dostavljač se ne javlja", "purchase_delivery"),
    ("hr", "ovaj sir ima grozan okus, kao guma", "product_experience"),
    ("hr", "preporučujem ovu pekaru svima, kupujem kod njih godinama", "loyalty_advocacy"),
    ("hr", "sutra idem na more, jedva čekam", OTHER),
    ("sr", "пакет касни већ две недеље, курир се не јавља", "purchase_delivery"),
    ("sr", "popust 30% na sve patike do nedelje", "price_promotion"),
    ("sr", "otkazao sam pretplatu i prešao kod konkurencije", "churn"),
    ("sr", "сутра идем на море, једва чекам", OTHER),
]


@pytest.fixture(scope="module")
def classifier() -> EmbeddedScorer:
    return EmbeddedScorer(topics=DEFAULT_TOPICS, backend="torch")


@pytest.fixture(scope="module")
def labelled(classifier):
    scores = classifier.score([text for _, text, _ in CASES])
    return scores, classifier.topic_labels(scores.topic_scores)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{lang}-{topic}" for lang, _, topic in CASES])
def test_primary_topic_of_realistic_posts_per_language(labelled, index):
    _, rows = labelled
    lang, text, topic = CASES[index]
    assert rows[index][0] == topic, (lang, text, rows[index])


def test_other_is_alone_and_never_beside_a_topic(labelled):
    _, rows = labelled
    for (_, _, topic), row in zip(CASES, rows, strict=True):
        assert (row == [OTHER]) == (topic == OTHER), row


def test_leaving_is_churn_not_loyalty(labelled):
    # The former taxonomy put "switching to a competitor" under loyalty_advocacy, which pulled complaints in.
    _, rows = labelled
    for (_, _, topic), row in zip(CASES, rows, strict=True):
        if topic == "churn":
            assert "loyalty_advocacy" not in row, row


def test_topics_are_scored_on_the_original_top_layers_in_the_same_pass(classifier, labelled):
    scores, _ = labelled
    # The fine-tuned layers and the original ones beside them, from shared lower layers: one pass.
    assert classifier.encoder.base_top is not None
    assert classifier.context_layer == BASE_LAST
    assert scores.topic_scores.shape == (len(CASES), len(DEFAULT_TOPICS))
    assert scores.topic_scores.min() >= 0.0 and scores.topic_scores.max() <= 1.0
    assert classifier.topic_floor == classifier.topic_scorer.floor
    assert "+topics-" in classifier.model_id
    again = classifier.score([CASES[0][1]])
    np.testing.assert_allclose(again.topic_scores[0], scores.topic_scores[0], atol=1e-5)
    # The same topics as the original encoder alone gives (what a Hugging Face sentiment model is paired with).
    original = EmbeddedScorer(topics=DEFAULT_TOPICS, backend="torch", topics_only=True)
    np.testing.assert_allclose(original.score([t for _, t, _ in CASES]).topic_scores, scores.topic_scores, atol=1e-4)
