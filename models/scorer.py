"""The scorer interface: texts in; sentiment, topic scores and embeddings out, in one call.

A :class:`TextScorer` scores a batch of texts with probabilities over :data:`LABELS` and, where it has
a taxonomy, topic scores (and, for relevance, the embeddings the profiles are scored on): one
:class:`Scores` per batch. The implementations:

* :class:`models.embedded_scorer.EmbeddedScorer`: the bundled e5 encoder, the shipped sentiment head
  and the few-shot topics (:mod:`models.taxonomy`), all from one encoder pass;
* :class:`models.hf_sentiment.HFSentimentScorer`: a Hugging Face sentiment checkpoint (no topics);
* :class:`ScorerWithTopicModel`: any scorer's sentiment plus a separate :class:`TopicModel`
  (:mod:`models.hf_topics`, or :class:`models.embedded_scorer.EmbeddedTopicModel`).

:func:`models.loader.load_scorer` builds the right one from the job's model options.
"""

from __future__ import annotations

import abc
import typing
from collections.abc import Sequence

import numpy as np

from models.taxonomy import DEFAULT_THRESHOLD, label_rows

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
# Values of the model options: "embedded" is the bundled model; "none" (topic model only) scores no topics.
EMBEDDED = "embedded"
NONE = "none"


def topic_model_spec(value: object) -> str:
    """Returns the topic model option as it is meant: ``"embedded"``, ``"none"`` or a checkpoint.

    None and the empty string are refused rather than guessed at: they meant "embedded" in one place
    and "none" in another.

    Raises:
        ValueError: When ``value`` is not a non-empty string.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"topic_model must be {EMBEDDED!r}, {NONE!r} or a Hugging Face checkpoint; got {value!r}")
    return value.strip()


class JudgedText(typing.NamedTuple):
    """A text to score, and whether its relevance is read: it names a brand whose name is judged.

    :class:`transforms.scoring.ScoreTexts` sends these (instead of plain texts) when the job judges
    some brand, so that the relevance layers run only for the texts that need them.
    """

    text: str
    judged: bool


def text_of(item: str | JudgedText) -> str:
    """The text of what a scorer is given: a text or a :class:`JudgedText`."""
    return item.text if isinstance(item, JudgedText) else item


class Scores(typing.NamedTuple):
    """What a scorer says about a batch of texts.

    Attributes:
        probs: ``float32 [n, 3]`` probabilities in :data:`LABELS` order.
        topic_scores: ``float32 [n, len(topic_names)]`` scores in [0, 1], or None
            when the scorer scores no topics.
        embeddings: ``float32 [n, dim]`` unit-norm embeddings the relevance profiles are scored on
            (:mod:`models.relevance`): the relevance layers' output where the scorer has them (for
            the rows asked for; the others hold the original top layers' output), else the original
            top layers' output where the scorer was built with ``context_embedding``, else the
            topics' embedding; None when the scorer has none.
    """

    probs: np.ndarray
    topic_scores: np.ndarray | None = None
    embeddings: np.ndarray | None = None


class TextScorer(abc.ABC):
    """Scores texts: probabilities over :data:`LABELS`, and topics where it has a taxonomy.

    Attributes:
        model_id: Identifies the model (and head, taxonomy) that produced a score.
        topic_names: The topics :meth:`score` scores, in column order; empty for none.
        topic_threshold: Score at or above which a topic is kept on a row.
        topic_floor: Score the best topic needs to be a row's primary topic (None: the threshold).
    """

    model_id: str
    labels: tuple[str, ...] = LABELS
    topic_names: tuple[str, ...] = ()
    topic_threshold: float = DEFAULT_THRESHOLD
    topic_floor: float | None = None

    @abc.abstractmethod
    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities and, where the scorer has topics, topic scores."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``float32`` sentiment probabilities ``[len(texts), 3]`` in :data:`LABELS` order."""
        return self.score(texts).probs

    def topic_labels(self, topic_scores: np.ndarray) -> list[list[str]]:
        """Returns, per row, the primary topic then any other at or above :attr:`topic_threshold`.

        See :func:`models.taxonomy.label_rows` (``other`` alone when no topic reaches the floor).
        """
        return label_rows(topic_scores, self.topic_names, self.topic_threshold, self.topic_floor)


class TopicModel(abc.ABC):
    """Scores texts on a taxonomy's topics, for a scorer whose own model has none.

    Attributes:
        names: The taxonomy's topics, in column order.
        threshold: Score at or above which a topic is kept on a row.
        floor: Score the best topic needs to be a row's primary topic (None: the threshold).
        model_id: Identifies the topic model.
    """

    names: tuple[str, ...]
    threshold: float
    floor: float | None = None
    model_id: str

    @abc.abstractmethod
    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``float32 [len(texts), len(names)]`` scores in [0, 1]."""


class ScorerWithTopicModel(TextScorer):
    """One scorer's sentiment and a separate topic model's topics, behind one interface."""

    def __init__(self, sentiment: TextScorer, topic_model: TopicModel) -> None:
        """Pairs them.

        Args:
            sentiment: Scores sentiment (its own topics, if any, are not asked for).
            topic_model: Scores the topics.
        """
        self.sentiment = sentiment
        self.topics = topic_model
        self.topic_names = tuple(topic_model.names)
        self.topic_threshold = float(topic_model.threshold)
        self.topic_floor = topic_model.floor
        self.model_id = f"{sentiment.model_id}+topics:{topic_model.model_id}"

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order (the topic model is not run)."""
        return self.sentiment.predict_proba(texts)

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities and the topic model's scores."""
        return Scores(self.sentiment.predict_proba(texts), self.topics.scores(texts))
