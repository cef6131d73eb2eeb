"""Beam ``ModelHandler`` that scores texts with a :class:`~models.sentiment.SentimentClassifier`.

Used keyed, so scores join back to their mention::

    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    scored = (
        mentions_text  # PCollection of (mention_id, text)
        | RunInference(KeyedModelHandler(SentimentModelHandler("embedded")))
    )  # -> (mention_id, PredictionResult(example=text, inference={...}, model_id=...))

The constructor only records configuration, validated by the job's options
(`pipelines.options.validate`; the handler is pickled to workers); ``load_model``
builds the classifier, which ``RunInference`` does once per worker process and
shares between its threads. Beam's own Hugging Face handler is not
used because importing it imports TensorFlow.

Batching: each batch is sorted by token count inside the classifier; in streaming
(``max_batch_duration_secs`` set) Beam's ``BatchElements`` also buckets elements by
length (``batch_length_fn``) so a batch holds texts of similar length. In batch jobs
:class:`transforms.sentiment.ScoreSentiment` sorts each bundle by length before
``RunInference``, which does the same job for the batch path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.relevance import Profile
from models.sentiment import EMBEDDED, LABELS, NONE, SentimentClassifier, load_sentiment_classifier
from models.topics import DEFAULT_THRESHOLD, DEFAULT_TOPICS, Topic

METRICS_NAMESPACE = "SentimentModelHandler"
# Characters, a cheap stand-in for tokens (about 3-4 characters a token in these languages).
LENGTH_BUCKETS = [64, 128, 256, 512, 1024]


def text_length(element: Any) -> int:
    """Length of a text, or of the text of a ``(key, text)`` pair (what keyed batching sees)."""
    if isinstance(element, tuple):
        element = element[-1]
    return len(element) if isinstance(element, str) else 0


class SentimentModelHandler(ModelHandler[str, PredictionResult, SentimentClassifier]):
    """Scores batches of texts; one ``PredictionResult`` per text, in order.

    Each inference is ``{'sentiment': label, 'p_negative': float, 'p_neutral': float,
    'p_positive': float}``, plus ``'topics'`` (names at or above the threshold, best
    first) and ``'topic_scores'`` (name -> score) when topics are scored, and ``'relevance'``
    (profile name -> relevance in [0, 1], :mod:`models.relevance`) when it was given profiles
    (:meth:`with_profiles`) and the model embeds; ``model_id`` names the model (and taxonomy)
    that produced it.
    """

    def __init__(
        self,
        model: str = EMBEDDED,
        label_map: Mapping[str, str] | None = None,
        min_batch_size: int = 1,
        max_batch_size: int = 64,
        max_length: int = 256,
        max_batch_duration_secs: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
        topics: Sequence[Topic] | None = None,
        topic_model: str | None = None,
        topic_label_map: Mapping[str, str] | None = None,
        topic_threshold: float = DEFAULT_THRESHOLD,
        backend: str = "auto",
    ) -> None:
        """Stores the configuration; loads nothing.

        The values come validated: the job's flags are checked once, with messages that
        name the flag, by :func:`pipelines.options.validate`; what can only be checked
        against a checkpoint's ``config.json`` is :meth:`check`.

        Args:
            model: ``"embedded"`` or a Hugging Face sequence-classification checkpoint.
            label_map: Label mapping for a Hugging Face model.
            min_batch_size: Smallest batch ``RunInference`` forms.
            max_batch_size: Largest batch ``RunInference`` forms (and texts per forward pass).
            max_length: Maximum tokens per text; longer texts are truncated.
            max_batch_duration_secs: Longest a streaming batch waits to fill up.
            cache_dir: Cache root for the embedded model's conversion.
            precision: ``fp32``, ``bf16`` or ``int8``.
            num_threads: Torch intra-op threads per worker process; by default every CPU
                the process may use.
            topics: Taxonomy; None for :data:`~models.topics.DEFAULT_TOPICS`.
            topic_model: ``"embedded"`` (default: the e5 encoder, in the same pass as the
                embedded sentiment model), ``"none"``, or a Hugging Face zero-shot NLI model
                or topic classifier.
            topic_label_map: For a Hugging Face topic model (see
                :func:`models.sentiment.load_sentiment_classifier`).
            topic_threshold: Score at or above which a topic is kept on a row.
            backend: For the embedded model: ``auto`` (ONNX Runtime, fused graph, where it is
                installed and has the precision: fp32, int8; else torch), ``onnx`` or ``torch``.
        """
        topic_model = str(topic_model).strip() if topic_model else EMBEDDED
        taxonomy = tuple(DEFAULT_TOPICS if topics is None else topics)
        batching: dict[str, Any] = {}
        if max_batch_duration_secs is not None:
            # Only Beam's stateful (streaming) batching reads these.
            batching = {"batch_length_fn": text_length, "batch_bucket_boundaries": LENGTH_BUCKETS}
        super().__init__(
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            max_batch_duration_secs=max_batch_duration_secs,
            **batching,
        )
        self._model = str(model)
        self._label_map = dict(label_map) if label_map else None
        self._min_batch_size = min_batch_size
        self._max_batch_size = max_batch_size
        self._max_batch_duration_secs = max_batch_duration_secs
        self._max_length = max_length
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._precision = precision
        self._num_threads = num_threads
        self._topics = taxonomy if topic_model != NONE else ()
        self._topic_model = topic_model
        self._topic_label_map = dict(topic_label_map) if topic_label_map else None
        self._topic_threshold = float(topic_threshold)
        self._backend = backend
        self._profiles: tuple[Profile, ...] = ()

    def with_profiles(self, profiles: Sequence[Profile]) -> SentimentModelHandler:
        """A copy of this handler that also scores each text's relevance to ``profiles`` (same encoder pass).

        Only a classifier that returns embeddings (the embedded model) scores them; another
        returns no ``'relevance'``.
        """
        import copy

        handler = copy.copy(self)
        handler._profiles = tuple(profiles)
        return handler

    @property
    def topic_names(self) -> tuple[str, ...]:
        """The topics this handler scores (empty when none)."""
        return tuple(t.name for t in self._topics)

    @property
    def reads_targets(self) -> bool:
        """Whether the model was trained on brand-marked texts (`models.stance`), so per-brand passes help.

        True for the embedded model when its head's JSON records the target marking it was trained with.
        """
        if self._model != EMBEDDED:
            return False
        import json

        from models.head import head_metadata_path
        from models.sentiment import DEFAULT_HEAD_PATH

        try:
            meta = json.loads(head_metadata_path(DEFAULT_HEAD_PATH).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return bool(meta.get("training_data", {}).get("handwritten", {}).get("target_marking"))

    def check(self) -> None:
        """Checks what can be checked without loading weights: Hugging Face label mappings.

        Reads only the checkpoints' ``config.json``; call it before a job starts.

        Raises:
            ValueError: With a message saying what to declare.
        """
        self.check_sentiment_model()
        self.check_topic_model()

    def check_sentiment_model(self) -> None:
        """:meth:`check` for the sentiment model only."""
        if self._model != EMBEDDED:
            from transformers import AutoConfig

            from models.sentiment import resolve_label_mapping

            try:
                config = AutoConfig.from_pretrained(self._model)
            except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot use it"
                raise ValueError(f"cannot load the sentiment model {self._model!r}: {exc}") from None
            resolve_label_mapping(config.id2label, self._label_map, model_name=self._model)

    def check_topic_model(self) -> None:
        """:meth:`check` for the topic model only."""
        if self._topics and self._topic_model not in (EMBEDDED, NONE):
            from models.topic_models import check_topic_model

            check_topic_model(self._topic_model, self._topics, self._topic_label_map)

    def load_model(self) -> SentimentClassifier:
        """Builds the classifier (called once per worker process by ``RunInference``)."""
        classifier = load_sentiment_classifier(
            self._model,
            label_map=self._label_map,
            max_length=self._max_length,
            cache_dir=self._cache_dir,
            precision=self._precision,
            num_threads=self._num_threads,
            batch_size=self._max_batch_size,
            topics=self._topics,
            topic_model=self._topic_model,
            topic_label_map=self._topic_label_map,
            topic_threshold=self._topic_threshold,
            backend=self._backend,
            context_embedding=bool(self._profiles),
        )
        if self._profiles and hasattr(classifier, "embed_for_relevance"):
            from models.relevance import RelevanceScorer

            classifier.relevance_scorer = RelevanceScorer(self._profiles, classifier.embed_for_relevance)
        return classifier

    def run_inference(
        self,
        batch: Sequence[str],
        model: SentimentClassifier,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Scores a batch of texts.

        Args:
            batch: Texts.
            model: The classifier from :meth:`load_model`.
            inference_args: Unused; accepted for the ``ModelHandler`` interface.

        Returns:
            One ``PredictionResult`` per text, in batch order.
        """
        texts = list(batch)
        scores = model.score(texts)
        topic_lists = model.topic_labels(scores.topic_scores) if scores.topic_scores is not None else None
        scorer = getattr(model, "relevance_scorer", None)
        relevance = scorer.scores(scores.embeddings) if scorer is not None and scores.embeddings is not None else None
        results = []
        for i, (text, row) in enumerate(zip(texts, scores.probs, strict=True)):
            inference: dict[str, Any] = {"sentiment": LABELS[int(row.argmax())]}
            inference.update({f"p_{label}": float(p) for label, p in zip(LABELS, row, strict=True)})
            if topic_lists is not None:
                inference["topics"] = topic_lists[i]
                inference["topic_scores"] = {
                    name: float(v) for name, v in zip(model.topic_names, scores.topic_scores[i], strict=True)
                }
            if relevance is not None:
                inference["relevance"] = {name: float(v) for name, v in zip(scorer.names, relevance[i], strict=True)}
            results.append(PredictionResult(example=text, inference=inference, model_id=model.model_id))
        return results

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        """Returns the UTF-8 size of the batch (cheaper and truer than pickling it)."""
        return sum(len(text.encode("utf-8")) for text in batch)

    def get_metrics_namespace(self) -> str:
        """Returns the namespace of the metrics ``RunInference`` reports."""
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        """Returns the ``BatchElements`` settings."""
        kwargs: dict[str, Any] = {"min_batch_size": self._min_batch_size, "max_batch_size": self._max_batch_size}
        if self._max_batch_duration_secs is not None:
            kwargs["max_batch_duration_secs"] = self._max_batch_duration_secs
            kwargs["length_fn"] = text_length
            kwargs["bucket_boundaries"] = LENGTH_BUCKETS
        return kwargs
