"""Beam ``ModelHandler`` that scores texts (sentiment, topics, relevance) with a :class:`~models.scorer.TextScorer`.

Used keyed, so scores join back to their mention::

    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    scored = (
        mentions_text  # PCollection of (mention_id, text)
        | RunInference(KeyedModelHandler(ScorerModelHandler("embedded")))
    )  # -> (mention_id, PredictionResult(example=text, inference={...}, model_id=...))

The constructor only records configuration, validated by the job's options
(`pipelines.options.validate`; the handler is pickled to workers); ``load_model``
builds the scorer (:func:`models.loader.load_scorer`), which ``RunInference`` does once per
worker process and shares between its threads. Beam's own Hugging Face handler is not
used because importing it imports TensorFlow.

Batching: each batch is sorted by token count inside the scorer, and
:class:`transforms.scoring.ScoreTexts` sorts each bundle by length before ``RunInference``
(in the global window), so the batches ``RunInference`` cuts hold texts of similar length.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.hf_sentiment import resolve_label_mapping
from models.hf_topics import check_topic_model
from models.loader import load_scorer
from models.relevance import Profile, RelevanceScorer, load_projection
from models.scorer import EMBEDDED, LABELS, NONE, JudgedText, TextScorer, text_of, topic_model_spec
from models.taxonomy import DEFAULT_THRESHOLD, DEFAULT_TOPICS, Topic

METRICS_NAMESPACE = "ScorerModelHandler"


class ScorerModelHandler(ModelHandler[str, PredictionResult, TextScorer]):
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
        cache_dir: str | os.PathLike[str] | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
        topics: Sequence[Topic] = DEFAULT_TOPICS,
        topic_model: str = EMBEDDED,
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
            cache_dir: Cache root for the embedded model's conversion.
            precision: ``fp32`` (this class's default: exact torch labels), ``auto`` (the job's default:
                fp32, in ONNX Runtime where it is installed), ``int8-mixed``, ``int8`` or ``bf16``.
            num_threads: Torch intra-op threads per worker process; by default every CPU
                the process may use.
            topics: Taxonomy (default :data:`~models.taxonomy.DEFAULT_TOPICS`); empty scores no topics.
            topic_model: ``"embedded"`` (default: the e5 encoder, in the same pass as the
                embedded sentiment model), ``"none"``, or a Hugging Face zero-shot NLI model
                or topic classifier. None is refused (:func:`models.scorer.topic_model_spec`).
            topic_label_map: For a Hugging Face topic model (see
                :func:`models.loader.load_scorer`).
            topic_threshold: Score at or above which a topic is kept on a row.
            backend: For the embedded model: ``auto`` (ONNX Runtime, fused graph, where it is
                installed and has the precision: fp32, int8, int8-mixed, auto; else torch), ``onnx`` or ``torch``.
        """
        topic_model = topic_model_spec(topic_model)
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._model = str(model)
        self._label_map = dict(label_map) if label_map else None
        self._min_batch_size = min_batch_size
        self._max_batch_size = max_batch_size
        self._max_length = max_length
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._precision = precision
        self._num_threads = num_threads
        self._topics = tuple(topics) if topic_model != NONE else ()
        self._topic_model = topic_model
        self._topic_label_map = dict(topic_label_map) if topic_label_map else None
        self._topic_threshold = float(topic_threshold)
        self._backend = backend
        self._profiles: tuple[Profile, ...] = ()

    def with_profiles(self, profiles: Sequence[Profile]) -> ScorerModelHandler:
        """A copy of this handler that also scores each text's relevance to ``profiles`` (same encoder pass).

        Only a scorer that returns embeddings (the embedded model) scores them; another
        returns no ``'relevance'``.
        """
        handler = copy.copy(self)
        handler._profiles = tuple(profiles)
        return handler

    @property
    def topic_names(self) -> tuple[str, ...]:
        """The topics this handler scores (empty when none)."""
        return tuple(t.name for t in self._topics)

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

            try:
                config = AutoConfig.from_pretrained(self._model)
            except Exception as exc:  # OSError, ValueError, HTTP errors: all mean "cannot use it"
                raise ValueError(f"cannot load the sentiment model {self._model!r}: {exc}") from None
            resolve_label_mapping(config.id2label, self._label_map, model_name=self._model)

    def check_topic_model(self) -> None:
        """:meth:`check` for the topic model only."""
        if self._topics and self._topic_model not in (EMBEDDED, NONE):
            check_topic_model(self._topic_model, self._topics, self._topic_label_map)

    def load_model(self) -> TextScorer:
        """Builds the scorer (called once per worker process by ``RunInference``)."""
        projection = load_projection() if self._profiles else None
        scorer = load_scorer(
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
            relevance_layers=projection.layers_path if projection is not None else None,
        )
        if projection is not None and hasattr(scorer, "embed_for_relevance"):
            # The shipped projection and relevance layers were learnt in the embedded model's spaces
            # (docs/relevance.md): the phrases in the original layers', the posts in the relevance layers'.
            scorer.relevance_scorer = RelevanceScorer(self._profiles, scorer.embed_for_relevance,
                                                      projection=projection)
            # Every row names what judged its relevance too: profiles, calibration, projection and layers.
            scorer.model_id = f"{scorer.model_id}+relevance-{scorer.relevance_scorer.fingerprint}"
        return scorer

    def run_inference(
        self,
        batch: Sequence[str],
        model: TextScorer,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Scores a batch of texts.

        Args:
            batch: Texts, or :class:`~models.scorer.JudgedText`: a text whose ``judged`` is False gets no
                ``'relevance'`` (and, with the embedded model, does not run the relevance layers).
            model: The scorer from :meth:`load_model`.
            inference_args: Unused; accepted for the ``ModelHandler`` interface.

        Returns:
            One ``PredictionResult`` per text, in batch order.
        """
        texts = [text_of(item) for item in batch]
        # A plain text is judged whenever the handler has profiles; a JudgedText says so itself.
        judged = np.array([item.judged if isinstance(item, JudgedText) else True for item in batch], dtype=bool)
        scorer = getattr(model, "relevance_scorer", None)
        if scorer is not None and not judged.all() and hasattr(model, "score_judged"):
            scores = model.score_judged(texts, judged)  # the relevance layers run for the judged rows only
        else:
            scores = model.score(texts)
        topic_lists = model.topic_labels(scores.topic_scores) if scores.topic_scores is not None else None
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
            if relevance is not None and judged[i]:
                inference["relevance"] = {name: float(v) for name, v in zip(scorer.names, relevance[i], strict=True)}
            results.append(PredictionResult(example=text, inference=inference, model_id=model.model_id))
        return results

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        """Returns the UTF-8 size of the batch (cheaper and truer than pickling it)."""
        return sum(len(text_of(item).encode("utf-8")) for item in batch)

    def get_metrics_namespace(self) -> str:
        """Returns the namespace of the metrics ``RunInference`` reports."""
        return METRICS_NAMESPACE

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        """Returns the ``BatchElements`` settings."""
        return {"min_batch_size": self._min_batch_size, "max_batch_size": self._max_batch_size}
