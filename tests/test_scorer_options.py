"""The scorer's options mean one thing wherever they are read, and the Hugging Face topic models score in order.

`topic_model=None` once meant "embedded" in the Beam handler and "none" in the loader; now None is
refused by both, the default is "embedded" in both, and "none" scores no topics in both. Models are
tiny Hugging Face checkpoints the tests build themselves (`tests/support/tiny_model.py`).
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from models.handler import ScorerModelHandler
from models.hf_sentiment import HFSentimentScorer
from models.hf_topics import ClassifierTopicModel
from models.loader import load_scorer
from models.scorer import EMBEDDED, NONE, topic_model_spec
from models.taxonomy import DEFAULT_TOPICS, merge_taxonomy
from tests.support.tiny_model import save_tiny_hf_model


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_topic_model_is_refused_by_the_handler_and_the_loader(tmp_path, value):
    with pytest.raises(ValueError, match="topic_model must be 'embedded', 'none'"):
        ScorerModelHandler(topic_model=value)
    # Refused before anything loads: the checkpoint does not even exist.
    with pytest.raises(ValueError, match="topic_model must be 'embedded', 'none'"):
        load_scorer(str(tmp_path / "absent"), topics=DEFAULT_TOPICS, topic_model=value)


def test_handler_and_loader_default_to_the_embedded_topic_model():
    defaults = {inspect.signature(f).parameters["topic_model"].default for f in (ScorerModelHandler, load_scorer)}
    assert defaults == {EMBEDDED}
    assert ScorerModelHandler().topic_names == tuple(t.name for t in DEFAULT_TOPICS)
    assert topic_model_spec(" none ") == NONE


def test_none_scores_no_topics_in_the_handler_and_the_loader(tmp_path):
    save_tiny_hf_model(tmp_path, ["negative", "neutral", "positive"], seed=4)
    handler = ScorerModelHandler(str(tmp_path), topics=merge_taxonomy(), topic_model=NONE)
    assert handler.topic_names == ()
    scorer = load_scorer(str(tmp_path), topics=merge_taxonomy(), topic_model=NONE)
    assert isinstance(scorer, HFSentimentScorer) and scorer.topic_names == ()
    scores = scorer.score(["good movie", "awful service"])
    assert scores.topic_scores is None and scores.probs.shape == (2, 3)
    (result,) = handler.run_inference(["good movie"], handler.load_model())
    assert "topics" not in result.inference and result.inference["sentiment"] in ("negative", "neutral", "positive")


def test_a_multi_label_topic_classifier_scores_sigmoids_in_input_order(tmp_path):
    save_tiny_hf_model(tmp_path, ["price_promotion", "purchase_delivery"], seed=6)
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    config["problem_type"] = "multi_label_classification"
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    topics = merge_taxonomy()
    model = ClassifierTopicModel(str(tmp_path), topics)
    assert model.multi_label
    # More texts than one batch (32), of different lengths, so the batches are sorted and put back.
    texts = [" ".join(["good", "bad", "movie", "not very", "service was ok"][: 1 + i % 5]) + " " * (i % 3)
             for i in range(40)]
    together = model.scores(texts)
    one_by_one = np.vstack([model.scores([text]) for text in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    columns = [t.name for t in topics]
    price = together[:, columns.index("price_promotion")]
    delivery = together[:, columns.index("purchase_delivery")]
    assert ((price > 0) & (price < 1)).all() and len(set(np.round(price, 4))) > 1
    # Sigmoids, not a softmax: the two labels' scores need not add up to 1.
    assert np.abs(price + delivery - 1.0).max() > 1e-3
    unmapped = [j for j, name in enumerate(columns) if name not in ("price_promotion", "purchase_delivery")]
    assert not together[:, unmapped].any()
