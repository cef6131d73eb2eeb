"""Small classification heads over sentence embeddings, stored as safetensors + JSON.

A head is a linear layer (multinomial logistic regression) or a one-hidden-layer
MLP on top of standardised embeddings. The standardisation (training-set mean and
standard deviation) lives in the head as buffers, so a saved head is
self-contained. The weights go to ``<name>.safetensors`` and everything a reader
needs to rebuild and judge the head (architecture, labels, training data,
validation metrics) to ``<name>.json`` beside it.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

HEAD_FORMAT_VERSION = 1
LINEAR = "linear"
MLP = "mlp"


class EmbeddingHead(nn.Module):
    """Maps embeddings ``[n, input_dim]`` to label logits ``[n, num_labels]``."""

    def __init__(self, input_dim: int, num_labels: int, hidden_dim: int | None = None, dropout: float = 0.0) -> None:
        """Builds the layers.

        Args:
            input_dim: Embedding size.
            num_labels: Number of output classes.
            hidden_dim: Width of the hidden layer; ``None`` for a linear head.
            dropout: Dropout before each linear layer while training.
        """
        super().__init__()
        self.input_dim = input_dim
        self.num_labels = num_labels
        self.hidden_dim = hidden_dim
        self.dropout_p = dropout
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))
        self.dropout = nn.Dropout(dropout)
        if hidden_dim:
            self.hidden = nn.Linear(input_dim, hidden_dim)
            self.activation = nn.GELU()
        self.out = nn.Linear(hidden_dim or input_dim, num_labels)

    @property
    def architecture(self) -> dict[str, Any]:
        """JSON-serialisable description sufficient to rebuild the module."""
        return {
            "type": MLP if self.hidden_dim else LINEAR,
            "input_dim": self.input_dim,
            "hidden_dim": self.hidden_dim,
            "num_labels": self.num_labels,
            "activation": "gelu" if self.hidden_dim else None,
            "dropout": self.dropout_p,
            "input_standardization": "(x - input_mean) / input_std",
        }

    @classmethod
    def from_architecture(cls, architecture: dict[str, Any]) -> EmbeddingHead:
        """Rebuilds an (untrained) head from :attr:`architecture`."""
        if architecture.get("type") not in (LINEAR, MLP):
            raise ValueError(f"Unknown head type {architecture.get('type')!r}.")
        return cls(
            input_dim=int(architecture["input_dim"]),
            num_labels=int(architecture["num_labels"]),
            hidden_dim=int(architecture["hidden_dim"]) if architecture["type"] == MLP else None,
            dropout=float(architecture.get("dropout", 0.0)),
        )

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Stores the training-set feature statistics used to standardise inputs."""
        self.input_mean.copy_(mean)
        # Guards against constant features dividing by zero.
        self.input_std.copy_(std.clamp(min=1e-6))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Returns logits for a batch of embeddings."""
        x = (embeddings - self.input_mean) / self.input_std
        if self.hidden_dim:
            x = self.activation(self.hidden(self.dropout(x)))
        return self.out(self.dropout(x))


def head_metadata_path(weights_path: str | os.PathLike[str]) -> pathlib.Path:
    """Returns the JSON path that accompanies a head's safetensors file."""
    return pathlib.Path(weights_path).with_suffix(".json")


def save_head(head: EmbeddingHead, weights_path: str | os.PathLike[str], metadata: dict[str, Any]) -> pathlib.Path:
    """Writes a head's weights and its JSON description.

    Args:
        head: Trained head.
        weights_path: Target ``.safetensors`` file.
        metadata: Labels, training data, metrics and anything else to record; the
            architecture and format version are added here.

    Returns:
        The JSON path.
    """
    weights_path = pathlib.Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in head.state_dict().items()}
    save_file(tensors, str(weights_path), metadata={"format": "pt"})
    document = {"format_version": HEAD_FORMAT_VERSION, "architecture": head.architecture, **metadata}
    json_path = head_metadata_path(weights_path)
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return json_path


def load_head(weights_path: str | os.PathLike[str]) -> tuple[EmbeddingHead, dict[str, Any]]:
    """Loads a head saved by :func:`save_head`, in eval mode.

    Args:
        weights_path: The ``.safetensors`` file (its ``.json`` must sit beside it).

    Returns:
        ``(head, metadata)``.
    """
    weights_path = pathlib.Path(weights_path)
    metadata = json.loads(head_metadata_path(weights_path).read_text(encoding="utf-8"))
    if metadata.get("format_version") != HEAD_FORMAT_VERSION:
        raise ValueError(f"{weights_path}: unsupported head format {metadata.get('format_version')!r}.")
    head = EmbeddingHead.from_architecture(metadata["architecture"])
    head.load_state_dict(load_file(str(weights_path)), strict=True)
    head.eval()
    return head, metadata
