"""Fine-tuned top encoder layers, stored small: low-rank weight updates.

The shipped sentiment model fine-tunes the encoder's top layers. Storing those layers
whole would take ~3.5 MB each in fp16; instead each of their linear layers ``W`` is
stored as a low-rank update ``W + B @ A`` (``A``: ``r x in``, ``B``: ``out x r``) plus
the layers' biases and LayerNorm parameters, stored whole. The update comes either from
training low-rank adapters directly (LoRA, :func:`add_lora` / :func:`export_lora`) or
from fully fine-tuned layers whose weight changes are cut to their top singular
directions (:func:`export_low_rank`; rank 64 keeps bucket-8 macro-F1 within 0.1 point of
the uncut layers, but cost up to 4 points of one language's hand-written validation accuracy,
so the models shipped since December 7 store rank 128: 7.1 MB for 4 layers, 14.3 MB for the 8 of
the model shipped now). At load the updates are merged into the weights, so inference costs exactly
what the original encoder costs.

File format (safetensors, fp16): ``<param>.lora_A`` / ``<param>.lora_B`` for each
adapted weight (``<param>`` the ``BertModel`` parameter name without ``.weight``), and
the plain parameter name for a replaced bias or LayerNorm tensor. The head's JSON
names the file under ``encoder.fine_tuned``.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

LORA_A = ".lora_A"
LORA_B = ".lora_B"
# Linear layers of a BertLayer that get a low-rank update.
ADAPTED_LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


class LoRALinear(nn.Module):
    """``nn.Linear`` plus a trainable low-rank update (the base weight frozen)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.rank = rank
        self.scaling = (alpha or rank) / rank
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.t()) @ (self.lora_B.t() * self.scaling)

    def delta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(A, B * scaling)``: the update is their product."""
        return self.lora_A.detach(), (self.lora_B * self.scaling).detach()


def add_lora(layer: nn.Module, rank: int) -> list[nn.Parameter]:
    """Wraps a ``BertLayer``'s linear layers with :class:`LoRALinear`; biases and LayerNorms stay trainable.

    Returns:
        The trainable parameters.
    """
    for param in layer.parameters():
        param.requires_grad_(False)
    for path in ADAPTED_LINEARS:
        parent_path, name = path.rsplit(".", 1)
        parent = layer.get_submodule(parent_path)
        setattr(parent, name, LoRALinear(getattr(parent, name), rank))
    trainable = []
    for name, param in layer.named_parameters():
        if "lora_" in name or "LayerNorm" in name or name.endswith(".bias"):
            param.requires_grad_(True)
            trainable.append(param)
    return trainable


def export_lora(layers: Mapping[int, nn.Module]) -> dict[str, torch.Tensor]:
    """Collects the updates of LoRA-wrapped ``BertLayer``s under ``BertModel`` names (fp16).

    Args:
        layers: Encoder layer index -> the wrapped layer.

    Returns:
        Tensors for :func:`save_file`.
    """
    out: dict[str, torch.Tensor] = {}
    for index, layer in layers.items():
        prefix = f"encoder.layer.{index}."
        for path in ADAPTED_LINEARS:
            module = layer.get_submodule(path)
            a, b = module.delta()
            out[prefix + path + LORA_A] = a.half().contiguous()
            out[prefix + path + LORA_B] = b.half().contiguous()
            out[prefix + path + ".bias"] = module.base.bias.detach().half().contiguous()
        for name, param in layer.named_parameters():
            if "LayerNorm" in name:
                out[prefix + name] = param.detach().half().contiguous()
    return out


def merge_lora(base_state: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Returns the parameters a LoRA file changes, merged onto ``base_state`` (fp32).

    Args:
        base_state: The encoder's ``state_dict()``.
        tensors: The file's tensors (see the module docstring).

    Raises:
        ValueError: On tensors that name no encoder parameter or unpaired updates.
    """
    merged: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name.endswith(LORA_A):
            stem = name[: -len(LORA_A)]
            if stem + LORA_B not in tensors or stem + ".weight" not in base_state:
                raise ValueError(f"fine-tuned weights: {name} has no partner or no encoder weight")
            update = tensors[stem + LORA_B].float() @ tensor.float()
            merged[stem + ".weight"] = base_state[stem + ".weight"].float() + update
        elif name.endswith(LORA_B):
            continue
        else:
            if name not in base_state:
                raise ValueError(f"fine-tuned weights name {name!r}, which the encoder does not have")
            merged[name] = tensor.float()
    return merged


def load_encoder_overrides(
    head_file: pathlib.Path, metadata: Mapping[str, Any], checkpoint_dir: str | os.PathLike[str]
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Reads the fine-tuned layers a head names, merged onto the checkpoint's weights.

    Args:
        head_file: The head's safetensors (the layers file sits beside it).
        metadata: The head's JSON.
        checkpoint_dir: The encoder checkpoint the updates apply to.

    Returns:
        ``(parameters to override or None, suffix for the model id)``.
    """
    spec = metadata.get("encoder", {}).get("fine_tuned")
    if not spec:
        return None, ""
    return load_layers_file(head_file.parent / spec["file"], checkpoint_dir)


def load_layers_file(path: pathlib.Path, checkpoint_dir: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """Reads a file of fine-tuned layers (the module docstring's format), merged onto the checkpoint's weights.

    Returns:
        ``(parameters to override, "+layers-<first 8 hex of the file's sha1>")``.
    """
    import hashlib

    tensors = load_file(str(path))
    wanted = _base_names(tensors)
    with safe_open_state(pathlib.Path(checkpoint_dir) / "model.safetensors", wanted) as base:
        merged = merge_lora(base, tensors)
    return merged, f"+layers-{hashlib.sha1(pathlib.Path(path).read_bytes()).hexdigest()[:8]}"


def _base_names(tensors: Iterable[str]) -> set[str]:
    names = set()
    for name in tensors:
        if name.endswith(LORA_A):
            names.add(name[: -len(LORA_A)] + ".weight")
        elif not name.endswith(LORA_B):
            names.add(name)
    return names


class safe_open_state:  # noqa: N801 - used as a context manager, like safetensors' safe_open
    """Reads only the named tensors of a safetensors checkpoint (not the 470 MB whole)."""

    def __init__(self, path: pathlib.Path, names: set[str]) -> None:
        self._path = path
        self._names = names

    def __enter__(self) -> dict[str, torch.Tensor]:
        from safetensors import safe_open

        out = {}
        with safe_open(str(self._path), framework="pt") as handle:
            keys = set(handle.keys())
            for name in self._names:
                if name in keys:
                    out[name] = handle.get_tensor(name)
        return out

    def __exit__(self, *exc: object) -> None:
        return None


# ------------------------------------------------------------------------------------------ training


class LayerStates:
    """Token-level hidden states of many texts at one encoder layer, stored ragged in fp16.

    Attributes:
        states: ``[total_tokens, dim]`` fp16.
        offsets: ``[n + 1]``: text ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
    """

    def __init__(self, states: torch.Tensor, offsets: torch.Tensor) -> None:
        self.states = states
        self.offsets = offsets
        self.lengths = (offsets[1:] - offsets[:-1]).long()

    def batch(self, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns padded fp32 states ``[b, L, dim]`` and the attention mask ``[b, L]``."""
        longest = int(self.lengths[list(ids)].max())
        x = torch.zeros(len(ids), longest, self.states.shape[1])
        mask = torch.zeros(len(ids), longest)
        for row, i in enumerate(ids):
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            x[row, : end - start] = self.states[start:end].float()
            mask[row, : end - start] = 1.0
        return x, mask


def compute_layer_states(encoder: Any, texts: Sequence[str], layer: int, prefix: str, max_length: int,
                         batch_size: int = 64, progress: Any = None) -> LayerStates:
    """Runs the frozen lower layers once and keeps the hidden states entering ``layer``.

    Args:
        encoder: An :class:`~models.encoder.E5Encoder` (fp32).
        texts: Texts (normalised already).
        layer: Index of the first fine-tuned layer (its input is kept).
        prefix: E5 prefix.
        max_length: Maximum tokens per text.
        batch_size: Texts per forward pass.
        progress: Called with the number of texts done, now and then.
    """
    ids = encoder.token_ids(texts, prefix=prefix, max_length=max_length)
    lengths = torch.tensor([len(i) for i in ids])
    offsets = torch.zeros(len(ids) + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(lengths, 0)
    states = torch.zeros(int(offsets[-1]), encoder.dim, dtype=torch.float16)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    model = encoder.model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = encoder.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            hidden = model.embeddings(input_ids=batch["input_ids"])
            mask = batch["attention_mask"].to(torch.float32)
            ext = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
            for block in model.encoder.layer[:layer]:
                out = block(hidden, attention_mask=ext)
                hidden = out[0] if isinstance(out, tuple) else out
            for k, i in enumerate(rows):
                n = int(lengths[i])
                states[int(offsets[i]) : int(offsets[i]) + n] = hidden[k, :n].half()
            if progress is not None and (start // batch_size) % 50 == 0:
                progress(start + len(rows))
    return LayerStates(states, offsets)


def top_forward(layers: Sequence[nn.Module], x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Runs the top layers on cached states; returns the mean-pooled, L2-normalised output."""
    ext = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
    for block in layers:
        out = block(x, attention_mask=ext)
        x = out[0] if isinstance(out, tuple) else out
    m = mask.unsqueeze(-1)
    pooled = (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def export_low_rank(
    layers: Mapping[int, nn.Module], base_layers: Mapping[int, nn.Module], rank: int
) -> dict[str, torch.Tensor]:
    """Stores fully fine-tuned ``BertLayer``s as low-rank updates of their base weights (fp16).

    Each adapted weight's change ``W_tuned - W_base`` is cut to its top ``rank`` singular
    directions (``B @ A`` with ``A = S Vh``, ``B = U``); biases and LayerNorms are stored whole.
    The result loads like :func:`export_lora`'s.

    Args:
        layers: Encoder layer index -> fine-tuned layer.
        base_layers: Encoder layer index -> the same layer before fine-tuning.
        rank: Singular directions kept per weight.
    """
    out: dict[str, torch.Tensor] = {}
    for index, layer in layers.items():
        prefix = f"encoder.layer.{index}."
        base = base_layers[index]
        for path in ADAPTED_LINEARS:
            tuned = layer.get_submodule(path)
            delta = (tuned.weight.detach() - base.get_submodule(path).weight.detach()).float()
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            out[prefix + path + LORA_A] = (vh[:rank] * s[:rank, None]).half().contiguous()
            out[prefix + path + LORA_B] = u[:, :rank].half().contiguous()
            out[prefix + path + ".bias"] = tuned.bias.detach().half().contiguous()
        for name, param in layer.named_parameters():
            if "LayerNorm" in name:
                out[prefix + name] = param.detach().half().contiguous()
    return out
