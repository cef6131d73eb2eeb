"""A Hugging Face sequence-classification checkpoint run in length-sorted batches.

What the Hugging Face sentiment scorer (:mod:`models.hf_sentiment`) and topic models
(:mod:`models.hf_topics`) share: tokenizer and model loading, the precision and thread settings,
and batched forward passes that return rows in input order.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Sequence

import numpy as np
import torch

from models.encoder import set_precision, set_threads


class HFSequenceModel:
    """A Hugging Face sequence-classification checkpoint run in length-sorted batches."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        config: typing.Any,
        max_length: int = 256,
        batch_size: int = 32,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        """Loads tokenizer and model.

        Args:
            name_or_path: Local checkpoint directory or hub model id.
            config: The checkpoint's ``AutoConfig`` (read once by the caller, to check its labels first).
            max_length: Maximum tokens per text.
            batch_size: Texts per forward pass.
            precision: ``fp32``, ``bf16`` or ``int8``.
            num_threads: Torch intra-op threads; by default every CPU the process may use.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        set_threads(num_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config)
        model.eval()
        self.model = set_precision(model, precision)
        self.max_length = max_length
        self.batch_size = batch_size

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Returns the model's logits ``[len(texts), num_labels]`` (``pairs``: second segments)."""
        out = np.zeros((len(texts), int(self.model.config.num_labels)), dtype=np.float32)
        # Length-sorted batches pad less; rows go back to input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(pairs[i]) if pairs else 0))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    [pairs[i] for i in rows] if pairs else None,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                out[rows] = self.model(**batch).logits.float().numpy()
        return out

    def softmax(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Returns the model's class probabilities ``[len(texts), num_labels]`` (``pairs``: second segments)."""
        logits = self.logits(texts, pairs)
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
