"""The ONNX Runtime backend, CPU-feature choice, backend resolution and progress lines.

The model is a tiny two-layer BERT with a fine-tuned top layer and a head, built and saved
here and loaded through the same code as the embedded model (`EmbeddedScorer`
with `checkpoint_dir`/`head_path`); the export goes to a cache under `tmp_path`.
"""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
import torch
from apache_beam.options.pipeline_options import PipelineOptions
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from models import onnx_backend
from models.head import EmbeddingHead, save_head
from models.onnx_backend import cpu_arithmetic, cpu_flags, int8_full_range, resolve_backend
from models.embedded_scorer import EmbeddedScorer
from models.scorer import LABELS
from models.taxonomy import OTHER, Topic
from pipelines.options import validate
from pipelines.run import run
from schemas.config import ConfigError
from tests.support.fake_model import FakeSentimentHandler
from tests.support.tiny_model import save_tiny_hf_model
from transforms.progress import POSTS_MATCHED, POSTS_READ, POSTS_SCORED, PROGRESS, TEXTS_SCORED, Progress

TEXTS = ["the delivery was late and the box broken", "great price, love it", "price", "support refund",
         "nothing to see here at all, just words and more words about the weather today", "late late late"]
TAXONOMY = (Topic("price_promotion", ("price", "discount")), Topic("purchase_delivery", ("delivery", "late")),
            Topic(OTHER))


def _tiny_embedded(root: pathlib.Path, seed: int = 0) -> tuple[pathlib.Path, pathlib.Path]:
    """Saves a 2-layer BERT checkpoint, a fine-tuned copy of its top layer and a head; returns (checkpoint, head)."""
    checkpoint = save_tiny_hf_model(root / "encoder", list(LABELS))  # for its tokenizer
    vocab = json.loads((checkpoint / "tokenizer.json").read_text())["model"]["vocab"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, hidden_act="gelu")
    torch.manual_seed(seed)
    BertModel(config, add_pooling_layer=False).eval().save_pretrained(checkpoint)
    heads = root / "heads"
    heads.mkdir()
    generator = torch.Generator().manual_seed(seed + 1)
    base = BertModel.from_pretrained(checkpoint, add_pooling_layer=False).state_dict()
    tuned = {name: tensor + 0.2 * torch.randn(tensor.shape, generator=generator)
             for name, tensor in base.items() if name.startswith("encoder.layer.1.")}
    save_file({k: v.contiguous() for k, v in tuned.items()}, str(heads / "layers.safetensors"))
    head = EmbeddingHead(32, 3)
    with torch.no_grad():
        head.out.weight.normal_(0.0, 8.0, generator=generator)
    metadata = {"labels": list(LABELS), "encoder": {
        "prefix": "query: ", "head_layer": -1,
        "fine_tuned": {"file": "layers.safetensors", "layers": [1]}}}
    save_head(head, heads / "head.safetensors", metadata)
    return checkpoint, heads / "head.safetensors"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    checkpoint, head = _tiny_embedded(root)
    return checkpoint, head, root / "cache"


def _classifier(tiny, backend: str, precision: str = "fp32") -> EmbeddedScorer:
    checkpoint, head, cache = tiny
    return EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, topics=TAXONOMY,
                                       backend=backend, precision=precision, batch_size=4)


def test_onnx_fp32_gives_torch_fp32_labels_and_scores(tiny):
    reference = _classifier(tiny, "torch").score(TEXTS)
    onnx = _classifier(tiny, "onnx")
    scores = onnx.score(TEXTS)
    assert (scores.probs.argmax(axis=1) == reference.probs.argmax(axis=1)).all()
    np.testing.assert_allclose(scores.probs, reference.probs, atol=1e-4)
    # Topics are scored on the original top layer, run beside the fine-tuned one: one graph, two outputs.
    np.testing.assert_allclose(scores.topic_scores, reference.topic_scores, atol=1e-4)
    assert len(onnx.encoder.session.get_outputs()) == 2
    assert f"-ort-fp32-{cpu_arithmetic()}" in onnx.model_id
    # The export was fused for ONNX Runtime's kernels: attention and layer norms as single ops.
    marker = json.loads((onnx.encoder.model_path.parent / "onnx_source.json").read_text())
    assert marker["fused"].get("Attention", 0) >= 2 and marker["fused"].get("SkipLayerNormalization", 0) >= 2


def test_without_topics_or_relevance_the_graph_runs_no_second_branch(tiny):
    checkpoint, head, cache = tiny
    plain = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, topics=(), backend="onnx",
                           precision="fp32", batch_size=4)
    assert len(plain.encoder.session.get_outputs()) == 1
    np.testing.assert_allclose(plain.score(TEXTS).probs, _classifier(tiny, "onnx").score(TEXTS).probs, atol=1e-5)


def test_cached_graph_keeps_its_weights_beside_it(tiny):
    """The weights live in a file of their own (ONNX Runtime memory-maps it), readable by every user of the cache."""
    onnx = _classifier(tiny, "onnx")
    graph = onnx.encoder.model_path
    weights = graph.parent / "model.onnx.data"
    assert weights.stat().st_size > 4 * graph.stat().st_size  # the graph file holds the structure only
    assert all(path.stat().st_mode & 0o044 == 0o044 for path in (graph, weights))
    import onnx as onnx_lib

    proto = onnx_lib.load(str(graph), load_external_data=False)
    external = [t.name for t in proto.graph.initializer if t.data_location == onnx_lib.TensorProto.EXTERNAL]
    assert any("word_embeddings" in name for name in external)


def _layers_file(path: pathlib.Path, checkpoint: pathlib.Path, layers: list[int], seed: int) -> pathlib.Path:
    """Saves a perturbed copy of the checkpoint's `layers` (whole tensors) in the fine-tuned layers' format."""
    base = BertModel.from_pretrained(checkpoint, add_pooling_layer=False).state_dict()
    generator = torch.Generator().manual_seed(seed)
    tuned = {name: tensor + 0.2 * torch.randn(tensor.shape, generator=generator) for name, tensor in base.items()
             if any(name.startswith(f"encoder.layer.{i}.") for i in layers)}
    save_file({k: v.contiguous() for k, v in tuned.items()}, str(path))
    return path


@pytest.mark.parametrize("sentiment_layers, relevance_layers", [([1], [1]), ([1], [0, 1]), ([0, 1], [1])])
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_relevance_layers_run_as_a_third_branch_from_the_original_states(tmp_path, backend, sentiment_layers,
                                                                         relevance_layers):
    """Posts get the relevance layers' output: the original encoder with those layers, whatever the
    sentiment layers fine-tune (from the same, a higher or a lower layer); phrases and sentiment stay."""
    from models.encoder import E5Encoder
    from models.finetune import load_layers_file
    from models.text import model_text

    checkpoint, head = _tiny_embedded(tmp_path)
    if sentiment_layers != [1]:
        _layers_file(head.parent / "layers.safetensors", checkpoint, sentiment_layers, seed=3)
    relevance = _layers_file(tmp_path / "relevance.safetensors", checkpoint, relevance_layers, seed=5)
    kwargs = dict(checkpoint_dir=checkpoint, head_path=head, cache_dir=tmp_path / "cache", topics=TAXONOMY,
                  backend=backend, precision="fp32", batch_size=4, context_embedding=True)
    plain, judged = EmbeddedScorer(**kwargs), EmbeddedScorer(**kwargs, relevance_layers=relevance)
    texts = [model_text(t) for t in TEXTS]
    expected = E5Encoder(checkpoint, state_overrides=load_layers_file(relevance, checkpoint)[0]).embed(texts)
    original = E5Encoder(checkpoint).embed(texts)
    scores, before = judged.score(TEXTS), plain.score(TEXTS)
    np.testing.assert_allclose(scores.embeddings, expected, atol=1e-4)
    assert np.abs(scores.embeddings - original).max() > 0.05  # the layers changed something
    np.testing.assert_allclose(before.embeddings, original, atol=1e-4)
    np.testing.assert_allclose(judged.embed_for_relevance(TEXTS), original, atol=1e-4)
    np.testing.assert_allclose(scores.probs, before.probs, atol=1e-5)
    np.testing.assert_allclose(scores.topic_scores, before.topic_scores, atol=1e-5)
    # Only the texts whose relevance is read run the relevance layers; the rest read as without them.
    mask = np.array([True, False, True, False, False, True])
    part = judged.score_judged(TEXTS, mask)
    np.testing.assert_allclose(part.embeddings[mask], expected[mask], atol=1e-4)
    np.testing.assert_allclose(part.embeddings[~mask], original[~mask], atol=1e-4)
    np.testing.assert_allclose(part.probs, before.probs, atol=1e-5)
    np.testing.assert_allclose(part.topic_scores, before.topic_scores, atol=1e-5)
    if backend == "onnx":
        assert len(judged._plain.session.get_outputs()) == 2  # a graph without the relevance layers
        assert len(judged.encoder.session.get_outputs()) == 3
        assert judged.encoder.model_path != plain.encoder.model_path


def test_a_changed_relevance_layers_file_gets_a_graph_of_its_own(tmp_path):
    checkpoint, head = _tiny_embedded(tmp_path)
    relevance = _layers_file(tmp_path / "relevance.safetensors", checkpoint, [1], seed=5)
    kwargs = dict(checkpoint_dir=checkpoint, head_path=head, cache_dir=tmp_path / "cache", backend="onnx",
                  precision="fp32", batch_size=4, context_embedding=True, relevance_layers=relevance)
    first = EmbeddedScorer(**kwargs)
    before = first.score(TEXTS).embeddings
    _layers_file(relevance, checkpoint, [1], seed=6)
    second = EmbeddedScorer(**kwargs)
    assert second.encoder.model_path != first.encoder.model_path
    assert np.abs(second.score(TEXTS).embeddings - before).max() > 0.05


def test_onnx_int8_runs_close_to_fp32(tiny):
    reference = _classifier(tiny, "torch").score(TEXTS)
    int8 = _classifier(tiny, "onnx", "int8")
    scores = int8.score(TEXTS)
    assert scores.probs.shape == (len(TEXTS), 3)
    assert np.abs(scores.probs - reference.probs).max() < 0.1
    assert f"-ort-int8-{cpu_arithmetic()}" in int8.model_id
    ops = {node.op_type for node in __import__("onnx").load(str(int8.encoder.model_path)).graph.node}
    assert ops & {"QAttention", "MatMulInteger", "DynamicQuantizeMatMul"}


def test_int8_mixed_keeps_embeddings_and_feed_forward_outputs_in_fp32(tiny):
    import onnx as onnx_lib

    reference = _classifier(tiny, "onnx").score(TEXTS)
    mixed = _classifier(tiny, "onnx", "int8-mixed")
    scores = mixed.score(TEXTS)
    assert np.abs(scores.probs - reference.probs).max() < 0.1
    assert f"-ort-int8-mixed-{cpu_arithmetic()}" in mixed.model_id
    graph = onnx_lib.load(str(mixed.encoder.model_path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    ops = [node.op_type for node in graph.node]
    # Attention and the other projections run int8; the feed-forward outputs of the three layers (the shared
    # one, the fine-tuned top one and the original beside it, which topics read) and the embeddings do not.
    assert ops.count("QAttention") == 3 and "EmbedLayerNormalization" in ops
    float_matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    assert len(float_matmuls) == 3 and all(producer[node.input[0]].op_type == "BiasGelu" for node in float_matmuls)
    marker = json.loads((mixed.encoder.model_path.parent / "onnx_source.json").read_text())
    assert marker["kept_fp32"] == [node.name for node in float_matmuls]


def test_precision_auto_names_the_default_arithmetic(tiny):
    assert onnx_backend.resolve_precision("auto", "onnx") == onnx_backend.DEFAULT_ONNX_PRECISION == "fp32"
    assert onnx_backend.resolve_precision("auto", "torch") == "fp32"
    assert onnx_backend.resolve_precision("fp32", "onnx") == "fp32"
    auto = _classifier(tiny, "auto", "auto")
    assert auto.backend == "onnx" and auto.precision == "fp32" and f"-ort-fp32-{cpu_arithmetic()}" in auto.model_id
    assert _classifier(tiny, "torch", "auto").precision == "fp32"


def test_export_is_cached_and_rebuilt_when_the_model_changes(tmp_path):
    checkpoint, head = _tiny_embedded(tmp_path / "m")
    cache = tmp_path / "cache"
    first = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, backend="onnx")
    path = first.encoder.model_path
    stamp = path.stat().st_mtime_ns
    again = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, backend="onnx")
    assert again.encoder.model_path == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    before = again.predict_proba(TEXTS)
    # New fine-tuned weights: a new graph in a new directory, computing the new model.
    layers = head.parent / "layers.safetensors"
    from safetensors.torch import load_file

    changed = {k: v * 1.5 for k, v in load_file(str(layers)).items()}
    save_file(changed, str(layers))
    rebuilt = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, backend="onnx")
    assert rebuilt.encoder.model_path != path
    assert rebuilt.model_id != first.model_id
    torch_now = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, backend="torch")
    np.testing.assert_allclose(rebuilt.predict_proba(TEXTS), torch_now.predict_proba(TEXTS), atol=1e-4)
    assert np.abs(rebuilt.predict_proba(TEXTS) - before).max() > 1e-3
    # The encoder's own weights are part of the key too.
    torch.manual_seed(7)
    BertModel(BertConfig.from_pretrained(checkpoint), add_pooling_layer=False).save_pretrained(checkpoint)
    other = EmbeddedScorer(checkpoint_dir=checkpoint, head_path=head, cache_dir=cache, backend="onnx")
    assert other.encoder.model_path not in (path, rebuilt.encoder.model_path)
    assert len(list(cache.glob("onnx-e5-*/model.onnx"))) == 3


ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16\n"
SKYLAKE = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512dq\n"
ALDER = "flags\t\t: fpu sse2 avx avx2 fma avx_vnni\n"
EPYC_AVX2 = "flags\t\t: fpu sse2 avx avx2 fma\n"
GRAVITON = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp i8mm bf16\n"


@pytest.mark.parametrize(("cpuinfo", "arithmetic", "full_range"), [
    (ZEN4, "avx512vnni", True), (SKYLAKE, "avx512", False), (ALDER, "avxvnni", True), (EPYC_AVX2, "avx2", False),
    (GRAVITON, "neon-i8mm", True), ("", "generic", False),
])
def test_cpu_arithmetic_from_cpuinfo(cpuinfo, arithmetic, full_range):
    assert cpu_arithmetic(cpu_flags(cpuinfo)) == arithmetic
    assert int8_full_range(arithmetic) is full_range


def test_backend_resolution_and_fallback(monkeypatch, brands_file, mixed_jsonl, tmp_path):
    def flags(*extra: str):
        return validate(PipelineOptions(["--config", str(brands_file), "--input", str(mixed_jsonl),
                                         "--output_dir", str(tmp_path / "out"), *extra]))

    assert resolve_backend("auto", "fp32") == "onnx"
    assert resolve_backend("auto", "bf16") == "torch"  # ONNX Runtime has no bf16 CPU kernels
    assert resolve_backend("torch", "int8") == "torch"
    with pytest.raises(ValueError, match="bfloat16"):
        resolve_backend("onnx", "bf16")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tensorrt", "fp32")
    # The flags are checked once, at start, by `pipelines.options.validate`, naming the flag.
    assert flags("--backend", "onnx", "--precision", "int8").model.backend == "onnx"
    assert flags("--precision", "bf16").model.backend == "auto"  # auto falls back to torch for bf16
    assert flags().model.precision == "auto"  # the default: fp32, in ONNX Runtime where it runs
    assert resolve_backend("auto", "auto") == "onnx"
    with pytest.raises(ConfigError, match="--backend / --precision: precision int8-mixed is an ONNX Runtime graph"):
        flags("--backend", "torch", "--precision", "int8-mixed")
    with pytest.raises(ConfigError, match="--precision int8-mixed is a graph of the embedded model"):
        flags("--model", "some/checkpoint", "--precision", "int8-mixed")
    with pytest.raises(ConfigError, match="--backend onnx runs the embedded model; Hugging Face checkpoints"):
        flags("--model", "some/checkpoint", "--backend", "onnx")
    with pytest.raises(ConfigError, match="--backend / --precision: .*bfloat16"):
        flags("--backend", "onnx", "--precision", "bf16")
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto", "fp32") == "torch"  # the safe fallback
    assert resolve_backend("auto", "auto") == "torch" and onnx_backend.resolve_precision("auto", "torch") == "fp32"
    with pytest.raises(ConfigError, match="--backend / --precision: backend onnx needs the packages onnxruntime"):
        flags("--backend", "onnx")


def test_unreadable_cpuinfo_means_no_flags(tmp_path, monkeypatch):
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")))
    assert cpu_flags() == frozenset() and cpu_arithmetic(frozenset()) == "generic"


# --------------------------------------------------------------------------- progress


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_line_has_counts_rate_and_eta():
    clock = _Clock()
    progress = Progress(interval=3600, clock=clock)
    stream = io.StringIO()
    progress.configure(True, stream=stream)
    progress.add(POSTS_READ, 10_000)
    progress.add(POSTS_MATCHED, 400)
    clock.now += 30  # the model loads, the first batch runs: its texts arrive at once
    progress.add(TEXTS_SCORED, 90)
    progress.add(POSTS_SCORED, 100)
    assert progress.report()
    first = stream.getvalue()
    assert "10,000 posts read, 400 matched" in first and "scored 90 texts (100/400 posts, 25%)" in first
    assert "texts/s" not in first  # one batch gives no rate yet
    clock.now += 10
    progress.add(TEXTS_SCORED, 45)
    progress.add(POSTS_SCORED, 100)  # 100 posts in 10 s: the other 200 take 20 s
    assert progress.report()
    line = stream.getvalue().splitlines()[-1]
    assert "scored 135 texts (200/400 posts, 50%) 4.5 texts/s, ETA 0:20" in line
    assert not progress.report()  # nothing moved: no new line
    progress.add(POSTS_SCORED, 200)  # scoring done: a last line at once
    assert stream.getvalue().count("\n") == 3 and "(400/400 posts, 100%)" in stream.getvalue()
    progress.configure(False, stream=stream)
    progress.add(POSTS_READ)
    assert not progress.report()


def test_a_run_prints_progress_and_quiet_silences_it(brands_file, mixed_jsonl, tmp_path, capsys):
    run(["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(tmp_path / "a")],
        model_handler=FakeSentimentHandler())
    err = capsys.readouterr().err
    assert "progress:" in err and "matched | scored 4 texts (4/4 posts, 100%)" in err
    run(["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(tmp_path / "b"), "--quiet"],
        model_handler=FakeSentimentHandler())
    assert "progress:" not in capsys.readouterr().err
    PROGRESS.configure(False)
