"""Hugging Face topic models: a zero-shot NLI checkpoint or a topic classifier, scored on a taxonomy.

Each is a :class:`~models.scorer.TopicModel`: ``names`` (the taxonomy's topics, in column order),
``threshold``, ``model_id`` and ``scores(texts) -> float32 [n, len(names)]`` in [0, 1]:

* :class:`ZeroShotTopicModel`: a natural-language-inference checkpoint (e.g. an XNLI
  model) asked, per topic, whether the post entails "This text is about <phrase>.";
  a topic's score is the entailment probability (against contradiction) of its best
  phrase. One forward pass per (text, phrase): slow, and every topic needs phrases.
* :class:`ClassifierTopicModel`: a sequence-classification checkpoint trained on
  topics; its labels map onto topic names through a declared mapping (``ignore``
  drops a label). Sigmoid scores when the config says ``multi_label_classification``,
  softmax otherwise.

:func:`check_topic_model` tells which one a checkpoint is and checks its label mapping from its
``config.json`` alone, before any weights load. The embedded topic model (the e5 encoder's few-shot
classifier) is :class:`models.embedded_scorer.EmbeddedTopicModel`; :func:`models.loader.load_topic_model`
picks among them.
"""

from __future__ import annotations

import abc
import typing
from collections.abc import Mapping, Sequence

import numpy as np

from models.hf import HFSequenceModel
from models.scorer import TopicModel
from models.taxonomy import DEFAULT_THRESHOLD, OTHER, Topic
from models.text import model_text

IGNORE = "ignore"
HYPOTHESIS = "This text is about {}."


def entailment_index(id2label: Mapping[int | str, str], label_map: Mapping[str, str] | None, model: str) -> int:
    """Finds the entailment class of an NLI model.

    Args:
        id2label: The checkpoint's ``config.id2label``.
        label_map: ``{"entailment": <label>}`` when the model's label is not called so.
        model: Used in error messages.

    Returns:
        The class index.

    Raises:
        ValueError: When no label is (or is mapped to) entailment.
    """
    labels = {str(v): int(k) for k, v in id2label.items()}
    wanted = (label_map or {}).get("entailment")
    if wanted is not None:
        if wanted not in labels:
            raise ValueError(f"topic label map names {wanted!r} as entailment, but {model!r} has labels {list(labels)}")
        return labels[wanted]
    for label, index in labels.items():
        if label.strip().lower() in ("entailment", "entails", "entail"):
            return index
    raise ValueError(
        f"{model!r} has no label called 'entailment' (labels: {list(labels)}); if it is a zero-shot NLI model, "
        f"declare which one is, e.g. --topic_label_map entailment={next(iter(labels))}"
    )


def resolve_topic_labels(
    id2label: Mapping[int | str, str], label_map: Mapping[str, str] | None, names: Sequence[str], model: str
) -> dict[int, str]:
    """Maps a topic classifier's classes onto the taxonomy.

    Each model label maps through ``label_map``, or to the topic of the same name.

    Args:
        id2label: The checkpoint's ``config.id2label``.
        label_map: Model label -> topic name or ``"ignore"``.
        names: The taxonomy's topic names.
        model: Used in error messages.

    Returns:
        Class index -> topic name, for the classes that are not ignored.

    Raises:
        ValueError: On a label with no mapping, a mapping to an unknown topic, or a
            mapping naming a label the model lacks.
    """
    labels = {int(k): str(v) for k, v in id2label.items()}
    label_map = dict(label_map or {})
    unknown = sorted(set(label_map) - set(labels.values()))
    if unknown:
        raise ValueError(f"topic label map names {unknown}, which {model!r} does not have (labels: "
                         f"{sorted(labels.values())})")
    out: dict[int, str] = {}
    unmapped = []
    for index, label in sorted(labels.items()):
        target = label_map.get(label, label if label in names else None)
        if target is None:
            unmapped.append(label)
        elif target == IGNORE:
            continue
        elif target not in names:
            raise ValueError(f"topic label map sends {label!r} to {target!r}, which is not a topic of the taxonomy "
                             f"({list(names)})")
        else:
            out[index] = target
    if unmapped:
        example = ",".join(f"{label}=<topic|ignore>" for label in unmapped[:3])
        raise ValueError(f"{model!r} has label(s) {unmapped} that name no topic of the taxonomy ({list(names)}); "
                         f"declare a mapping, e.g. --topic_label_map '{example}'")
    if not out:
        raise ValueError(f"no label of {model!r} maps to a topic")
    return out


class _HFTopicModel(TopicModel):
    """What both Hugging Face topic models hold: the taxonomy's names, the threshold and the checkpoint."""

    def __init__(
        self,
        name_or_path: str,
        topics: Sequence[Topic],
        label_map: Mapping[str, str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        max_length: int = 256,
        precision: str = "fp32",
        num_threads: int | None = None,
        config: typing.Any = None,
    ) -> None:
        """Reads the checkpoint's config (unless given), checks its labels, then loads its weights.

        Args:
            name_or_path: Checkpoint directory or hub id.
            topics: The taxonomy.
            label_map: The declared label mapping (see :func:`check_topic_model`).
            threshold: Score at or above which a topic is kept on a row.
            max_length: Maximum tokens per text (or text and hypothesis).
            precision: ``fp32``, ``bf16`` or ``int8``.
            num_threads: Torch intra-op threads; by default every CPU the process may use.
            config: The checkpoint's ``AutoConfig``, where the caller has read it already.

        Raises:
            ValueError: When the labels do not fit the taxonomy (before any weights load).
        """
        from transformers import AutoConfig

        config = config or AutoConfig.from_pretrained(name_or_path)
        self.names = tuple(t.name for t in topics)
        self.threshold = float(threshold)
        self.model_id = str(name_or_path)
        self._read_labels(config, topics, label_map)
        self._model = HFSequenceModel(name_or_path, config, max_length, 32, precision, num_threads)

    @abc.abstractmethod
    def _read_labels(self, config: typing.Any, topics: Sequence[Topic], label_map: Mapping[str, str] | None) -> None:
        """Maps the checkpoint's classes onto the taxonomy (raises ValueError when they do not fit)."""


class ZeroShotTopicModel(_HFTopicModel):
    """Zero-shot topics with an NLI cross-encoder (one pass per text and phrase)."""

    def _read_labels(self, config: typing.Any, topics: Sequence[Topic], label_map: Mapping[str, str] | None) -> None:
        self.entailment = entailment_index(config.id2label, label_map, self.model_id)
        contradiction = [int(k) for k, v in config.id2label.items() if str(v).strip().lower() == "contradiction"]
        self.contradiction = contradiction[0] if contradiction else None
        self._phrases = [(j, phrase) for j, t in enumerate(topics) for phrase in t.phrases]
        self._other = OTHER in self.names and not topics[self.names.index(OTHER)].phrases

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``[len(texts), len(names)]`` scores."""
        out = np.zeros((len(texts), len(self.names)), dtype=np.float32)
        clean = [model_text(t) for t in texts]
        premises = [text for text in clean for _ in self._phrases]
        hypotheses = [HYPOTHESIS.format(phrase) for _ in clean for _, phrase in self._phrases]
        probs = self._model.softmax(premises, hypotheses).reshape(len(texts), len(self._phrases), -1)
        if self.contradiction is not None:
            # Entailment against contradiction only, as zero-shot pipelines do for multi-label.
            pair = probs[..., [self.entailment, self.contradiction]]
            entail = pair[..., 0] / np.clip(pair.sum(axis=-1), 1e-9, None)
        else:
            entail = probs[..., self.entailment]
        for k, (j, _) in enumerate(self._phrases):
            out[:, j] = np.maximum(out[:, j], entail[:, k])
        if self._other:
            scored = [j for j, name in enumerate(self.names) if name != OTHER]
            out[:, self.names.index(OTHER)] = 1.0 - out[:, scored].max(axis=1)
        return out


class ClassifierTopicModel(_HFTopicModel):
    """A topic classifier checkpoint whose labels map onto the taxonomy."""

    def _read_labels(self, config: typing.Any, topics: Sequence[Topic], label_map: Mapping[str, str] | None) -> None:
        self.columns = resolve_topic_labels(config.id2label, label_map, self.names, self.model_id)
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``[len(texts), len(names)]`` scores."""
        out = np.zeros((len(texts), len(self.names)), dtype=np.float32)
        clean = [model_text(t) for t in texts]
        if self.multi_label:
            probs = 1.0 / (1.0 + np.exp(-self._model.logits(clean)))
        else:
            probs = self._model.softmax(clean)
        for index, name in self.columns.items():
            column = self.names.index(name)
            out[:, column] = np.maximum(out[:, column], probs[:, index])
        return out


def is_nli_config(config: typing.Any, label_map: Mapping[str, str] | None) -> bool:
    """Whether a checkpoint's labels (or the declared mapping) make it a zero-shot NLI model."""
    if label_map and set(label_map) == {"entailment"}:
        return True
    return any(str(v).strip().lower() in ("entailment", "entails") for v in config.id2label.values())


def check_topic_model(spec: str, topics: Sequence[Topic], label_map: Mapping[str, str] | None = None) -> str:
    """Checks a Hugging Face topic model's labels against the taxonomy without loading weights.

    Args:
        spec: Checkpoint directory or hub id.
        topics: The taxonomy.
        label_map: The declared mapping.

    Returns:
        ``"nli"`` or ``"classifier"``.

    Raises:
        ValueError: With a message naming what to declare.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec)
    except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot use it"
        raise ValueError(f"cannot load the topic model {spec!r}: {exc}") from None
    names = [t.name for t in topics]
    if is_nli_config(config, label_map):
        entailment_index(config.id2label, label_map, spec)
        missing = [t.name for t in topics if not t.phrases and t.name != OTHER]
        if missing:
            raise ValueError(f"zero-shot topics need phrases; {missing} have none")
        return "nli"
    resolve_topic_labels(config.id2label, label_map, names, spec)
    return "classifier"
