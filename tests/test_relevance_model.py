"""The relevance scorer with the real embedded model, through the job's handler, on trap posts.

Posts from the trap set's validation split (data/handwritten/ambiguity/); the brands as configured
there (description, category, products, competitors; no exclusions).
"""

from __future__ import annotations

import pathlib
import types

import pytest

from models.handler import ScorerModelHandler
from models.relevance import OTHER_SENSES, Profile, RelevanceScorer
from schemas.config import load_config
from transforms.inflection import fold
from transforms.relevance import RelevanceJudge, relevance_plan

TRAPS = pathlib.Path(__file__).resolve().parent.parent / "data" / "handwritten" / "ambiguity"

# (brand, post, about the brand)
POSTS = [
    ("shell", "Shell posted record profits again while we pay this much at the pump", True),
    ("shell", "wrote a shell script to rename 4000 photos, felt like a wizard", False),
    ("magnit", "кассир в Магните нахамила из-за пакета, больше туда не пойду", True),
    ("magnit", "на уроке физики сегодня опыт с магнитом и железными опилками", False),
    ("mars", "ate a Mars bar on the hike and it saved my life on the last climb", True),
    ("mars", "the rover sent back new photos of the Mars surface, the dust looks blue at sunset", False),
    ("rozetka", "Розетка знову скасувала моє замовлення без пояснень", True),
    ("rozetka", "розетка на кухні іскрить, треба викликати електрика", False),
]


@pytest.fixture(scope="module")
def judged():
    config = load_config(str(TRAPS / "brands.yaml"))
    ambiguous, profiles = relevance_plan(config)
    # The profiles of the brands the posts are about only: each profile's phrases and other senses are
    # embedded at load, and the trap set's other 13 brands would be most of this module's time.
    brands = {brand for brand, _, _ in POSTS}
    profiles = tuple(p for p in profiles if p.name in brands)
    assert {p.name for p in profiles} == brands
    handler = ScorerModelHandler().with_profiles(profiles)
    model = handler.load_model()
    results = handler.run_inference([text for _, text, _ in POSTS], model)
    return RelevanceJudge(config, ambiguous), [r.inference for r in results]


def test_every_post_gets_a_relevance_per_profile_beside_its_sentiment(judged):
    _judge, inferences = judged
    for inference in inferences:
        assert inference["sentiment"] in ("negative", "neutral", "positive")
        assert {"shell", "magnit", "mars", "rozetka"} <= set(inference["relevance"])
        assert all(0.0 <= v <= 1.0 for v in inference["relevance"].values())


@pytest.mark.parametrize("index", range(len(POSTS)))
def test_the_brand_sense_is_kept_and_the_other_sense_rejected(judged, index):
    judge, inferences = judged
    brand, text, about = POSTS[index]
    row = types.SimpleNamespace(brand_id=brand, match_kind="untagged", text=text,
                                relevance=inferences[index]["relevance"][brand])
    relevance, why = judge.judge(row)
    assert why == "model"
    assert judge.kept(relevance) is about, (text, relevance)


def test_the_brand_sense_scores_above_the_other_sense_for_each_brand(judged):
    _judge, inferences = judged
    for k in range(0, len(POSTS), 2):
        brand = POSTS[k][0]
        assert inferences[k]["relevance"][brand] > inferences[k + 1]["relevance"][brand], POSTS[k][0]


def test_the_other_senses_name_no_brand_of_the_trap_set():
    # The bank must hold everyday subjects only: a trap brand's name in it would be the answer written in.
    config = load_config(str(TRAPS / "brands.yaml"))
    bank = fold(" ".join(p for cluster in OTHER_SENSES.values() for p in cluster))
    named = [n for b in config.brands for n in b.names if len(n) > 2 and fold(n) in bank.split()]
    assert named == []


def test_a_scorer_with_a_toy_encoder_follows_the_margin():
    # Two-dimensional "embeddings": the profile points one way, every other sense the other.
    def embed(texts):
        import numpy as np

        return np.array([[0.0, 1.0] if t.startswith("X:") else [1.0, 0.0] for t in texts], dtype="float32")

    scorer = RelevanceScorer([Profile("x", ("a subject",), "X")], embed, scale=10.0, offset=0.0)
    import numpy as np

    near, far = scorer.scores(np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32"))[:, 0]
    assert near > 0.99 and far < 0.01
