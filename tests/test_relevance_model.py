"""The relevance scorer with the real embedded model, through the job's handler, on trap posts.

Posts from the trap set's validation split (data/handwritten/ambiguity/); the brands as configured
there (description, category, products, competitors; no exclusions).
"""

from __future__ import annotations

import copy
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
def loaded():
    config = load_config(str(TRAPS / "brands.yaml"))
    ambiguous, profiles = relevance_plan(config)
    # The profiles of the brands the posts are about only: each profile's phrases and other senses are
    # embedded at load, and the trap set's other 13 brands would be most of this module's time.
    brands = {brand for brand, _, _ in POSTS}
    profiles = tuple(p for p in profiles if p.name in brands)
    assert {p.name for p in profiles} == brands
    handler = ScorerModelHandler().with_profiles(profiles)
    return config, ambiguous, handler, handler.load_model()


@pytest.fixture(scope="module")
def judged(loaded):
    config, ambiguous, handler, model = loaded
    results = handler.run_inference([text for _, text, _ in POSTS], model)
    return RelevanceJudge(config, ambiguous), [r.inference for r in results]


def test_relevance_is_scored_for_the_texts_that_are_judged_only(loaded, judged):
    """A JudgedText whose relevance is not read gets none; the judged ones get what plain texts get."""
    from models.scorer import JudgedText

    _config, _ambiguous, handler, model = loaded
    texts = [text for _, text, _ in POSTS]
    flags = [i % 2 == 0 for i in range(len(texts))]
    results = list(handler.run_inference([JudgedText(t, f) for t, f in zip(texts, flags)], model))
    for result, flag, text, before in zip(results, flags, texts, judged[1]):
        assert result.example == text
        assert result.model_id.endswith(f"+relevance-{model.relevance_scorer.fingerprint}")
        assert ("relevance" in result.inference) == flag
        if flag:
            assert result.inference["relevance"] == pytest.approx(before["relevance"], abs=1e-4)
        assert result.inference["p_negative"] == pytest.approx(before["p_negative"], abs=1e-5)
        assert result.inference["topics"] == before["topics"]


def test_every_post_gets_a_relevance_per_profile_beside_its_sentiment(judged):
    _judge, inferences = judged
    for inference in inferences:
        assert inference["sentiment"] in ("negative", "neutral", "positive")
        assert {"shell", "magnit", "mars", "rozetka"} <= set(inference["relevance"])
        assert all(0.0 <= v <= 1.0 for v in inference["relevance"].values())


def test_the_judge_lets_no_other_sense_through_and_keeps_most_brand_posts(judged):
    # Per post, a retrained model moves single decisions (the shipped one scores "ate a Mars bar on the
    # hike" 0.43, below the threshold: docs/relevance.md); the figures live in tools.eval_matching.
    # Here: no other-sense post is kept, and at most one brand post is lost.
    judge, inferences = judged
    decisions = []
    for (brand, text, about), inference in zip(POSTS, inferences):
        row = types.SimpleNamespace(brand_id=brand, match_kind="untagged", text=text,
                                    relevance=inference["relevance"][brand])
        relevance, why = judge.judge(row)
        assert why == "model"
        decisions.append((about, judge.kept(relevance), text))
    assert not [text for about, kept, text in decisions if kept and not about]
    assert len([text for about, kept, text in decisions if about and not kept]) <= 1


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


# ---- the learnt projection ---------------------------------------------------------------------------

def _toy_embed(texts):
    """Deterministic unit vectors in 16 dimensions, one per text (a stand-in for the encoder)."""
    import hashlib

    import numpy as np

    rows = [np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)).normal(size=16) for t in texts]
    rows = np.array(rows, dtype="float32")
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_projection_that_changes_nothing_scores_as_none_and_one_that_does_moves_the_scores(tmp_path):
    import numpy as np

    from models.relevance import Projection, load_projection, save_projection

    profiles = [Profile("orange", ("Orange, the mobile operator: SIM, tariffs", "Orange: mobile network"), "Orange")]
    posts = _toy_embed(["orange network down again", "orange juice for breakfast"])
    plain = RelevanceScorer(profiles, _toy_embed)
    zero = np.zeros((16, 2), dtype="float32")
    identity = RelevanceScorer(profiles, _toy_embed, projection=Projection(zero, np.ones((16, 2), "float32"), "0"))
    assert np.allclose(plain.scores(posts), identity.scores(posts), atol=1e-6)
    save_projection(tmp_path / "p.safetensors", np.eye(16, 2, dtype="float32") * 3, np.eye(16, 2, dtype="float32"),
                    {"note": "test"})
    loaded = load_projection(tmp_path / "p.safetensors")
    assert loaded.metadata["note"] == "test" and loaded.u.shape == (16, 2) and len(loaded.sha1) == 8
    moved = RelevanceScorer(profiles, _toy_embed, projection=loaded)
    assert not np.allclose(plain.scores(posts), moved.scores(posts), atol=1e-3)
    assert moved.fingerprint != plain.fingerprint != identity.fingerprint
    projected = loaded(posts)
    assert np.allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-5)


def test_a_projection_file_of_another_format_is_refused(tmp_path):
    import json

    import numpy as np

    from models.relevance import load_projection, projection_metadata_path, save_projection

    path = tmp_path / "p.safetensors"
    save_projection(path, np.zeros((8, 2), "float32"), np.zeros((8, 2), "float32"), {})
    projection_metadata_path(path).write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported projection format 99"):
        load_projection(path)


def test_training_learns_a_direction_the_raw_margin_misses():
    """The phrases of a brand and of its other senses differ along one direction, its posts along another,
    which the raw margin does not read (chance); trained on some brands, the projection maps one onto the
    other and separates the posts of brands it never saw."""
    import numpy as np

    from tools.train_relevance import Judged, Phrases, Recipe, margins_with, train

    rng = np.random.default_rng(0)
    dim, brands = 24, 12
    hidden, shown = np.eye(dim)[0], np.eye(dim)[1]

    def unit(x):
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")

    # Each brand: one profile phrase and one other-sense phrase, apart along the direction the phrases show.
    topics = rng.normal(size=(brands, dim)) * 0.5
    profile = unit(topics + 0.3 * shown)
    sense = unit(topics - 0.3 * shown)
    phrases = Phrases(profile, np.arange(brands), sense, np.arange(brands))

    def posts(which, n):
        columns = np.repeat(which, n)
        truth = np.tile(np.array([True, False]), len(columns) // 2)
        noise = rng.normal(size=(len(columns), dim)) * 0.3
        x = unit(topics[columns] + noise + np.where(truth, 0.5, -0.5)[:, None] * hidden)
        return Judged(x, columns, np.zeros(len(columns), "float32"), truth)

    seen, unseen = posts(np.arange(8), 40), posts(np.arange(8, 12), 40)

    def auc(judged, u, v):
        m = margins_with(u, v, judged.embeddings, judged.columns, phrases)
        return (m[judged.truth][:, None] > m[~judged.truth][None, :]).mean()

    u, v = train(seen, phrases, Recipe(rank=2, epochs=20, seeds=2))
    assert u.shape == (dim, 4) and v.shape == (dim, 4)
    assert auc(unseen, None, None) < 0.65 and auc(unseen, u, v) > 0.85


def test_a_projection_names_its_relevance_layers_and_its_hash_covers_them(tmp_path):
    """The layers fine-tuned for relevance go with the projection: named in its JSON, part of its hash."""
    import numpy as np

    from models.relevance import load_projection, save_projection

    path = tmp_path / "p.safetensors"
    u, v = np.eye(8, 2, dtype="float32"), np.eye(8, 2, dtype="float32")
    save_projection(path, u, v, {})
    alone = load_projection(path)
    assert alone.layers_path is None
    save_projection(path, u, v, {"fine_tuned": {"file": "relevance_layers.safetensors", "layers": [4]}})
    with pytest.raises(ValueError, match="relevance layers relevance_layers.safetensors are missing"):
        load_projection(path)
    (tmp_path / "relevance_layers.safetensors").write_bytes(b"first")
    first = load_projection(path)
    assert first.layers_path == tmp_path / "relevance_layers.safetensors"
    (tmp_path / "relevance_layers.safetensors").write_bytes(b"second")
    second = load_projection(path)
    assert len({alone.sha1, first.sha1, second.sha1}) == 3



def test_relevance_layers_learn_what_the_original_layers_do_not_separate(tmp_path):
    """tools/train_relevance_layers.py on a tiny encoder: posts about a brand ("good", "great") and in
    another sense ("bad", "awful") get margins that part after training, and the stored low-rank file
    loads back to the trained layers."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel

    from models.encoder import E5Encoder
    from models.relevance import Projection
    from tests.support.tiny_model import WORDS, save_tiny_hf_model
    from tools.train_relevance import Phrases
    from tools.train_relevance_layers import Recipe, cut, embed, states_of, train

    checkpoint = save_tiny_hf_model(tmp_path / "encoder", ["negative", "neutral", "positive"])
    config = BertConfig(vocab_size=4 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).eval().save_pretrained(checkpoint)
    encoder = E5Encoder(checkpoint)
    rng = np.random.default_rng(0)
    fillers = ["the", "movie", "service", "is", "was", "very", "not", "ok"]
    texts, truth = [], []
    for i in range(96):
        about = i % 2 == 0
        words = [str(w) for w in rng.choice(fillers, size=4)]
        words.append((("good", "great") if about else ("bad", "awful"))[i % 4 // 2])
        rng.shuffle(words)
        texts.append(" ".join(words))
        truth.append(about)
    truth = np.array(truth)
    columns = np.arange(96) % 3  # three brands, each with one profile phrase and one other sense
    vectors = rng.standard_normal((6, 32)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    phrases = Phrases(vectors[:3], np.arange(3), vectors[3:], np.arange(3))
    identity = Projection(np.zeros((32, 1), "float32"), np.zeros((32, 1), "float32"), "identity")

    def auc(embeddings):
        rows = np.arange(96)
        margin = (embeddings @ phrases.profile.T)[rows, columns] - (embeddings @ phrases.sense.T)[rows, columns]
        pos, neg = margin[truth], margin[~truth]
        return float((pos[:, None] > neg[None, :]).mean())

    start = 1
    base = [copy.deepcopy(b).eval() for b in encoder.model.encoder.layer[start:]]
    layers = torch.nn.ModuleList(copy.deepcopy(base))
    states = states_of(encoder, texts, start, 32)
    before = auc(embed(layers, states))
    train(layers, states, columns, np.zeros(96, "float32"), truth, phrases, identity,
          Recipe(layers=1, epochs=40, learning_rate=2e-3, batch_size=16, weight_decay=0.0))
    trained = embed(layers, states)
    assert auc(trained) > 0.95 and auc(trained) > before + 0.2
    tensors, stored = cut(layers, base, start, 32, encoder)  # full rank: only the fp16 storage differs
    assert set(tensors) >= {"encoder.layer.1.attention.self.query.lora_A", "encoder.layer.1.output.LayerNorm.weight"}
    np.testing.assert_allclose(embed(stored, states), trained, atol=5e-3)
