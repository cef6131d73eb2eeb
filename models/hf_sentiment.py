"""A Hugging Face sentiment checkpoint as a :class:`~models.scorer.TextScorer`, its labels mapped onto ours.

:class:`HFSentimentScorer` runs any Hugging Face sequence-classification checkpoint (a local
directory, or a hub id where a hub is reachable); :func:`resolve_label_mapping` folds its labels
onto :data:`~models.scorer.LABELS` (aliases, star ratings, an explicit ``label_map``) and is checked
before any weights load. It scores no topics: :func:`models.loader.load_scorer` pairs it with a topic
model where topics are asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from models.hf import HFSequenceModel
from models.scorer import LABELS, Scores, TextScorer
from models.text import model_text

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


class HFSentimentScorer(TextScorer):
    """Any Hugging Face sequence-classification checkpoint, labels mapped onto ours."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        label_map: Mapping[str, str] | None = None,
        max_length: int = 256,
        batch_size: int = 32,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        """Resolves the label mapping, then loads tokenizer and model.

        Args:
            name_or_path: Local checkpoint directory or hub model id.
            label_map: Model label -> one of :data:`LABELS`, for labels the alias
                table does not know.
            max_length, batch_size, precision, num_threads: As :class:`models.hf.HFSequenceModel` takes them.

        Raises:
            ValueError: If the labels cannot be mapped (before any weights load).
        """
        from transformers import AutoConfig

        self.model_id = str(name_or_path)
        config = AutoConfig.from_pretrained(name_or_path)
        self.label_matrix = resolve_label_mapping(config.id2label, label_map, model_name=self.model_id)
        self._model = HFSequenceModel(name_or_path, config, max_length, batch_size, precision, num_threads)

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities ``[len(texts), 3]`` in :data:`LABELS` order; no topics."""
        probs = self._model.softmax([model_text(t) for t in texts])
        return Scores((probs @ self.label_matrix).astype(np.float32))
