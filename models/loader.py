"""Builds the scorer the job's model options ask for: the embedded model or a Hugging Face one, with its topics.

The one place that composes the scorers (:mod:`models.embedded_scorer`, :mod:`models.hf_sentiment`) with
the topic models (:mod:`models.embedded_scorer`, :mod:`models.hf_topics`), so that none of them imports
another's loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from models.embedded_scorer import EmbeddedScorer, EmbeddedTopicModel
from models.hf_sentiment import HFSentimentScorer
from models.hf_topics import ClassifierTopicModel, ZeroShotTopicModel, check_topic_model
from models.onnx_backend import resolve_precision
from models.scorer import EMBEDDED, NONE, ScorerWithTopicModel, TextScorer, TopicModel, topic_model_spec
from models.taxonomy import DEFAULT_THRESHOLD, Topic


def load_topic_model(
    spec: str,
    topics: Sequence[Topic],
    label_map: Mapping[str, str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_length: int = 256,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    num_threads: int | None = None,
) -> TopicModel:
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


def load_scorer(
    model: str = EMBEDDED,
    label_map: Mapping[str, str] | None = None,
    max_length: int = 256,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
    num_threads: int | None = None,
    batch_size: int = 64,
    topics: Sequence[Topic] = (),
    topic_model: str = EMBEDDED,
    topic_label_map: Mapping[str, str] | None = None,
    topic_threshold: float = DEFAULT_THRESHOLD,
    backend: str = "auto",
    context_embedding: bool = False,
    relevance_layers: str | os.PathLike[str] | None = None,
) -> TextScorer:
    """Builds a scorer from a model spec.

    Args:
        model: ``"embedded"`` for the bundled encoder + head, otherwise a Hugging Face
            sequence-classification checkpoint (directory or hub id).
        label_map: Label mapping for a Hugging Face model (see
            :func:`models.hf_sentiment.resolve_label_mapping`); ignored for ``"embedded"`` (the job's
            options refuse one).
        max_length: Maximum tokens per text.
        cache_dir: Cache root for the embedded model's conversion.
        precision: ``auto`` (fp32; see :data:`models.onnx_backend.DEFAULT_ONNX_PRECISION`), ``fp32``, ``bf16``, ``int8`` or ``int8-mixed``.
        num_threads: Torch intra-op threads; by default every CPU the process may use.
        batch_size: Texts per forward pass.
        topics: Taxonomy to score; empty scores no topics.
        topic_model: ``"embedded"`` (prototype similarity on the e5 encoder: the same pass
            when ``model`` is embedded), ``"none"``, or a Hugging Face checkpoint: a
            zero-shot NLI model or a topic classifier (:mod:`models.hf_topics`). None is refused
            (:func:`models.scorer.topic_model_spec`).
        topic_label_map: For a topic classifier: its label -> topic name (or ``"ignore"``);
            for an NLI model: ``{"entailment": <its label>}`` when not named so.
        topic_threshold: Score at or above which a topic is kept.
        backend: For the embedded model: ``auto`` (ONNX Runtime where installed and it has the
            precision, else torch), ``onnx`` or ``torch``. Hugging Face checkpoints run in torch.
        context_embedding: For the embedded model: also return the original top layers' output
            as ``Scores.embeddings`` (relevance; see :class:`models.embedded_scorer.EmbeddedScorer`).
        relevance_layers: For the embedded model, with ``context_embedding``: top layers fine-tuned
            for relevance, whose output is then ``Scores.embeddings``.

    Returns:
        A ready scorer.

    The arguments come validated (`pipelines.options.validate` checks the job's flags once).

    Raises:
        ValueError: On labels of a Hugging Face model that cannot be mapped onto ours, or a topic
            model that is not a non-empty string.
    """
    topic_model = topic_model_spec(topic_model)
    wants_topics = bool(topics) and topic_model != NONE
    if model == EMBEDDED:
        # A label_map here is ignored: the embedded head predicts our labels (the job's options refuse one).
        same_pass = wants_topics and topic_model == EMBEDDED
        scorer: TextScorer = EmbeddedScorer(
            cache_dir=cache_dir, max_length=max_length, batch_size=batch_size, precision=precision,
            num_threads=num_threads, topics=topics if same_pass else (), topic_threshold=topic_threshold,
            backend=backend, context_embedding=context_embedding, relevance_layers=relevance_layers,
        )
        if not wants_topics or same_pass:
            return scorer
    else:
        if backend == "onnx":
            raise ValueError("backend onnx runs the embedded model; Hugging Face checkpoints run in torch.")
        precision = resolve_precision(precision, "torch")
        scorer = HFSentimentScorer(
            model, label_map=label_map, max_length=max_length, batch_size=min(batch_size, 32), precision=precision,
            num_threads=num_threads,
        )
        if not wants_topics:
            return scorer
    if topic_model != EMBEDDED:
        precision = resolve_precision(precision, "torch")
    topic_scorer = load_topic_model(
        topic_model, topics, label_map=topic_label_map, threshold=topic_threshold, max_length=max_length,
        cache_dir=cache_dir, precision=precision, num_threads=num_threads,
    )
    return ScorerWithTopicModel(scorer, topic_scorer)
