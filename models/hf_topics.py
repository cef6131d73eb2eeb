"""Topic models other than the embedded default's same-pass scoring.

Each has ``names`` (the taxonomy's topics, in column order), ``threshold``, ``model_id``
and ``scores(texts) -> float32 [n, len(names)]`` in [0, 1]:

* :class:`EmbeddedTopicModel`: the e5 encoder and the few-shot :class:`~models.topics.TopicScorer`
  alone, for a Hugging Face sentiment model that has no topics of its own (a second
  encoder pass; the embedded sentiment model shares its pass instead).
* :class:`ZeroShotTopicModel`: a natural-language-inference checkpoint (e.g. an XNLI
  model) asked, per topic, whether the post entails "This text is about <phrase>.";
  a topic's score is the entailment probability (against contradiction) of its best
  phrase. One forward pass per (text, phrase): slow, and every topic needs phrases.
* :class:`ClassifierTopicModel`: a sequence-classification checkpoint trained on
  topics; its labels map onto topic names through a declared mapping (``ignore``
  drops a label). Sigmoid scores when the config says ``multi_label_classification``,
  softmax otherwise.

:func:`load_topic_model` picks one and checks the label mapping before any weights load.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from models.text import model_text
from models.topics import DEFAULT_THRESHOLD, OTHER, Topic

EMBEDDED = "embedded"
IGNORE = "ignore"
HYPOTHESIS = "This text is about {}."


class EmbeddedTopicModel:
    """The e5 encoder and the few-shot topic classifier, run as a model of its own."""

    def __init__(
        self,
        topics: Sequence[Topic],
        threshold: float = DEFAULT_THRESHOLD,
        max_length: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        from models.sentiment import EmbeddedSentimentClassifier

        self._classifier = EmbeddedSentimentClassifier(
            cache_dir=cache_dir, max_length=max_length, precision=precision, num_threads=num_threads,
            topics=topics, topic_threshold=threshold, topics_only=True,
        )
        scorer = self._classifier.topic_scorer
        assert scorer is not None
        self.names = scorer.names
        self.threshold = scorer.threshold
        self.floor = scorer.floor
        self.model_id = f"embedded-{scorer.fingerprint}"

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``[len(texts), len(names)]`` scores."""
        scores = self._classifier.score(texts).topic_scores
        assert scores is not None
        return scores


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


class ZeroShotTopicModel:
    """Zero-shot topics with an NLI cross-encoder (one pass per text and phrase)."""

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
        from transformers import AutoConfig

        from models.sentiment import HFSequenceModel

        config = config or AutoConfig.from_pretrained(name_or_path)
        self.entailment = entailment_index(config.id2label, label_map, str(name_or_path))
        contradiction = [int(k) for k, v in config.id2label.items() if str(v).strip().lower() == "contradiction"]
        self.contradiction = contradiction[0] if contradiction else None
        self.names = tuple(t.name for t in topics)
        self._phrases = [(j, phrase) for j, t in enumerate(topics) for phrase in t.phrases]
        self._other = OTHER in self.names and not topics[self.names.index(OTHER)].phrases
        self.threshold = float(threshold)
        self.model_id = str(name_or_path)
        self._model = HFSequenceModel(name_or_path, config, max_length, 32, precision, num_threads)

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


class ClassifierTopicModel:
    """A topic classifier checkpoint whose labels map onto the taxonomy."""

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
        from transformers import AutoConfig

        from models.sentiment import HFSequenceModel

        config = config or AutoConfig.from_pretrained(name_or_path)
        self.names = tuple(t.name for t in topics)
        self.columns = resolve_topic_labels(config.id2label, label_map, self.names, str(name_or_path))
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        self.threshold = float(threshold)
        self.model_id = str(name_or_path)
        self._model = HFSequenceModel(name_or_path, config, max_length, 32, precision, num_threads)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``[len(texts), len(names)]`` scores."""
        out = np.zeros((len(texts), len(self.names)), dtype=np.float32)
        if not len(texts):
            return out
        clean = [model_text(t) for t in texts]
        if self.multi_label:
            logits = self._logits(clean)
            probs = 1.0 / (1.0 + np.exp(-logits))
        else:
            probs = self._model.softmax(clean)
        for index, name in self.columns.items():
            column = self.names.index(name)
            out[:, column] = np.maximum(out[:, column], probs[:, index])
        return out

    def _logits(self, texts: Sequence[str]) -> np.ndarray:
        model = self._model
        with torch.inference_mode():
            batch = model.tokenizer(list(texts), padding=True, truncation=True, max_length=model.max_length,
                                    return_tensors="pt")
            return model.model(**batch).logits.float().numpy()


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


def load_topic_model(
    spec: str,
    topics: Sequence[Topic],
    label_map: Mapping[str, str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_length: int = 256,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    num_threads: int | None = None,
) -> EmbeddedTopicModel | ZeroShotTopicModel | ClassifierTopicModel:
    """Builds a topic model from a spec: ``"embedded"`` or a Hugging Face checkpoint.

    Raises:
        ValueError: When a Hugging Face model's labels cannot be mapped.
    """
    if spec == EMBEDDED:
        return EmbeddedTopicModel(topics, threshold, max_length, cache_dir, precision, num_threads)
    from transformers import AutoConfig

    kind = check_topic_model(spec, topics, label_map)
    config = AutoConfig.from_pretrained(spec)
    cls = ZeroShotTopicModel if kind == "nli" else ClassifierTopicModel
    return cls(spec, topics, label_map, threshold, max_length, precision, num_threads, config=config)
