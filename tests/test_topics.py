"""The few-shot topic classifier on a fake encoder: fit, primary topic, `other`, multi-label, determinism.

The fake encoder is a bag of words: every word has a fixed random vector, a text is the normalised
sum of its words' vectors, so texts sharing words are alike, as with a sentence encoder. The real
encoder is exercised in `test_topics_model.py`; the config's `topics:` errors here go through the
job's command line (`main`), which must exit 2 naming the field before any work.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import numpy as np
import pytest

from models.taxonomy import (
    DEFAULT_FLOOR, DEFAULT_TOPICS, OTHER, MeanCosineTopicScorer, Topic, TopicScorer, fit_one_vs_rest, label_rows,
    merge_taxonomy,
)
from pipelines.run import main

DIM = 48


def _word_vector(word: str) -> np.ndarray:
    seed = int(hashlib.sha1(word.encode("utf-8")).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(DIM)


def bag_of_words(texts):
    """A fake encoder: the unit-norm sum of fixed random word vectors."""
    out = []
    for text in texts:
        vector = sum((_word_vector(w) for w in text.lower().replace(",", " ").split()), np.zeros(DIM))
        out.append(vector / max(np.linalg.norm(vector), 1e-9))
    return np.array(out, dtype=np.float32)


TAXONOMY = (
    Topic("price_promotion", ("price too high", "discount code sale", "cheap price sale", "promo code discount")),
    Topic("purchase_delivery", ("courier parcel late", "delivery late parcel", "tracking parcel courier",
                                "order delivery courier")),
    Topic("customer_service", ("support refund ticket", "refund support agent", "hotline agent ticket",
                               "support hotline refund")),
    Topic(OTHER),
)


@pytest.fixture(scope="module")
def scorer() -> TopicScorer:
    return TopicScorer(TAXONOMY, bag_of_words)


def test_fits_from_phrases_and_classifies_unseen_combinations(scorer):
    posts = ["sale price", "parcel courier", "agent refund", "late delivery tracking"]
    rows = scorer.label(scorer.scores(bag_of_words(posts)))
    assert [row[0] for row in rows] == ["price_promotion", "purchase_delivery", "customer_service",
                                        "purchase_delivery"]
    assert scorer.names == ("price_promotion", "purchase_delivery", "customer_service", OTHER)


def test_other_alone_when_nothing_fits(scorer):
    scores = scorer.scores(bag_of_words(["weather sunny beach", "football match tonight"]))
    assert scorer.label(scores) == [[OTHER], [OTHER]]
    # Without examples of its own, `other` says how far the best topic falls short of the floor.
    assert (scores[:, -1] > 0).all() and (scores[:, :3].max(axis=1) < scorer.floor).all()


def test_other_with_examples_of_its_own_is_a_topic_like_the_others():
    taxonomy = TAXONOMY[:-1] + (Topic(OTHER, ("weather sunny", "football match", "good morning everyone",
                                              "weather rain")),)
    fitted = TopicScorer(taxonomy, bag_of_words)
    rows = fitted.label(fitted.scores(bag_of_words(["sunny weather today", "promo code sale"])))
    assert rows == [[OTHER], ["price_promotion"]]


def test_a_post_about_two_topics_keeps_both_primary_first():
    # One-vs-rest scores of a mixed post are diluted (each topic's examples were the other's
    # negatives), so secondaries need a threshold below the default to show here.
    scorer = TopicScorer(TAXONOMY, bag_of_words, threshold=0.4)
    scores = scorer.scores(bag_of_words(["courier parcel refund agent"]))
    row = scorer.label(scores)[0]
    names = list(scorer.names)
    assert set(row) == {"purchase_delivery", "customer_service"}
    assert scores[0, names.index(row[0])] >= scores[0, names.index(row[1])] >= scorer.threshold
    assert OTHER not in row


def test_fit_is_deterministic_and_named_by_its_inputs(scorer):
    again = TopicScorer(TAXONOMY, bag_of_words)
    posts = bag_of_words(["sale price", "parcel courier", "weather"])
    np.testing.assert_array_equal(again.scores(posts), scorer.scores(posts))
    assert again.fingerprint == scorer.fingerprint
    changed = TopicScorer(TAXONOMY[:1] + (Topic("purchase_delivery", ("courier",)),) + TAXONOMY[2:], bag_of_words)
    assert changed.fingerprint != scorer.fingerprint
    assert TopicScorer(TAXONOMY, bag_of_words, l2=0.1).fingerprint != scorer.fingerprint


def test_balanced_weights_make_a_rare_topic_count_as_much_as_a_common_one():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2, 8)) * 3
    owner = np.array([0] * 30 + [1] * 3)
    features = centres[owner] + rng.standard_normal((33, 8))
    weights, bias = fit_one_vs_rest(features, owner, 2, l2=0.01, steps=400)
    scores = 1 / (1 + np.exp(-(centres @ weights + bias)))
    # Each centre is its own class's, though one class has ten times the examples.
    assert scores[0, 0] > 0.5 > scores[0, 1] and scores[1, 1] > 0.5 > scores[1, 0]


@pytest.mark.parametrize("row, expected", [
    ([0.9, 0.6, 0.1, 0.0], ["a", "b"]),          # primary, then what reaches the threshold
    ([0.3, 0.2, 0.1, 0.0], ["a"]),               # below the threshold, above the floor: still primary
    ([0.2, 0.1, 0.1, 0.0], [OTHER]),             # nothing reaches the floor
    ([0.6, 0.1, 0.1, 0.8], [OTHER]),             # `other` scores higher than the best topic
    ([0.7, 0.65, 0.55, 0.6], ["a", "b", "c"]),   # `other` is never listed beside a topic
])
def test_label_rows(row, expected):
    names = ("a", "b", "c", OTHER)
    assert label_rows(np.array([row]), names, threshold=0.5, floor=0.25) == [expected]


def test_a_threshold_below_the_floor_lowers_the_floor():
    assert label_rows(np.array([[0.2, 0.1, 0.0]]), ("a", "b", OTHER), threshold=0.15, floor=0.25) == [["a"]]
    assert TopicScorer(TAXONOMY, bag_of_words, threshold=0.1).floor == 0.1
    assert TopicScorer(TAXONOMY, bag_of_words).floor == DEFAULT_FLOOR


def test_a_taxonomy_of_one_topic_scores_by_likeness_to_its_examples():
    only = merge_taxonomy([Topic("sustainability", ("recycling plastic waste", "eco packaging recycling"))],
                          replace=True)
    fitted = TopicScorer(only, bag_of_words)
    rows = fitted.label(fitted.scores(bag_of_words(["recycling plastic waste", "football match tonight"])))
    assert rows == [["sustainability"], [OTHER]]


def test_the_previous_scorer_is_kept_for_comparison():
    previous = MeanCosineTopicScorer(TAXONOMY, bag_of_words)
    scores = previous.scores(bag_of_words(["promo code discount"]))
    assert previous.label(scores)[0][0] == "price_promotion"
    np.testing.assert_allclose(scores[:, -1], 1.0 - scores[:, :3].max(axis=1), atol=1e-6)


def test_default_taxonomy_has_examples_in_every_language_and_churn_apart_from_loyalty():
    by_name = {t.name: t.phrases for t in DEFAULT_TOPICS}
    assert {"churn", "loyalty_advocacy", OTHER} <= set(by_name)
    assert all(15 <= len(phrases) <= 30 for phrases in by_name.values())
    cyrillic = {name: sum(any("\u0400" <= c <= "\u04ff" for c in p) for p in phrases)
                for name, phrases in by_name.items()}
    assert all(count >= 6 for count in cyrillic.values()), cyrillic  # ru, uk and Serbian Cyrillic in each
    # Leaving is churn, not loyalty: no loyalty example talks of switching, cancelling or "never".
    leaving = ("switching", "cancelled", "never buy", "больше никогда", "переход", "otkaz", "prelazim", "прелазим",
               "більше ніколи", "nikad više", "više nikad")
    assert not [p for p in by_name["loyalty_advocacy"] if any(w in p.lower() for w in leaving)]
    assert sum(any(w in p.lower() for w in leaving) for p in by_name["churn"]) >= 10


# ----------------------------------------------------------------- config errors at start


@pytest.mark.parametrize("topics, named", [
    ("  taxonomy:\n    sustainability: []\n", "topics.taxonomy.sustainability: give at least one"),
    ("  taxonomy:\n    Bad Name: [x]\n", "topics.taxonomy: 'Bad Name' is not a valid topic name"),
    ("  threshold: 1.5\n", "topics.threshold"),
    ("  replace_defaults: true\n", "topics.replace_defaults: true needs topics with phrases"),
    ("  taxonomy:\n    churn: [\"\"]\n", "topics.taxonomy.churn[0]: empty string"),
])
def test_topic_misconfigurations_exit_2_naming_the_field(tmp_path: pathlib.Path, no_work, capsys, topics, named):
    config = tmp_path / "brands.yaml"
    config.write_text("brands:\n  - id: sprite\n    names: [Sprite]\ntopics:\n" + topics, encoding="utf-8")
    posts = tmp_path / "in.jsonl"
    posts.write_text(json.dumps({"id": "1", "text": "Sprite", "created_at": "2026-09-07T10:00:00Z",
                                 "platform": "x"}) + "\n", encoding="utf-8")
    assert main(["--config", str(config), "--input", str(posts), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err
