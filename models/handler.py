"""Beam ``ModelHandler`` that scores texts with a :class:`~models.sentiment.SentimentClassifier`.

Used keyed, so scores join back to their mention::

    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    scored = (
        mentions_text  # PCollection of (mention_id, text)
        | RunInference(KeyedModelHandler(SentimentModelHandler("embedded")))
    )  # -> (mention_id, PredictionResult(example=text, inference={...}, model_id=...))

The constructor only records configuration (the handler is pickled to workers);
``load_model`` builds the classifier, which ``RunInference`` does once per worker
process and shares between its threads. Beam's own Hugging Face handler is not used
because importing it imports TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.sentiment import EMBEDDED, LABELS, SentimentClassifier, load_sentiment_classifier

METRICS_NAMESPACE = "SentimentModelHandler"


class SentimentModelHandler(ModelHandler[str, PredictionResult, SentimentClassifier]):
    """Scores batches of texts; one ``PredictionResult`` per text, in order.

    Each inference is ``{'sentiment': label, 'p_negative': float, 'p_neutral': float,
    'p_positive': float}`` and ``model_id`` names the model that produced it.
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
    ) -> None:
        """Validates and stores the configuration; loads nothing.

        Args:
            model: ``"embedded"`` or a Hugging Face sequence-classification checkpoint.
            label_map: Label mapping for a Hugging Face model.
            min_batch_size: Smallest batch ``RunInference`` forms.
            max_batch_size: Largest batch ``RunInference`` forms.
            max_length: Maximum tokens per text.
            max_batch_duration_secs: Longest a streaming batch waits to fill up.
            cache_dir: Cache root for the embedded model's conversion.

        Raises:
            ValueError: On inconsistent settings, so a job fails before it starts.
        """
        if not model or not str(model).strip():
            raise ValueError("SentimentModelHandler: model must be 'embedded' or a Hugging Face model.")
        if min_batch_size < 1 or max_batch_size < min_batch_size:
            raise ValueError(
                f"SentimentModelHandler: need 1 <= min_batch_size <= max_batch_size, "
                f"got {min_batch_size} and {max_batch_size}."
            )
        if max_length < 8:
            raise ValueError(f"SentimentModelHandler: max_length {max_length} is too small to hold a text.")
        if label_map:
            if model == EMBEDDED:
                raise ValueError("SentimentModelHandler: label_map applies to Hugging Face models only.")
            bad = {k: v for k, v in label_map.items() if v not in LABELS}
            if bad:
                raise ValueError(f"SentimentModelHandler: label_map values must be in {LABELS}, got {bad}.")
        super().__init__(
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            max_batch_duration_secs=max_batch_duration_secs,
        )
        self._model = str(model)
        self._label_map = dict(label_map) if label_map else None
        self._min_batch_size = min_batch_size
        self._max_batch_size = max_batch_size
        self._max_batch_duration_secs = max_batch_duration_secs
        self._max_length = max_length
        self._cache_dir = None if cache_dir is None else str(cache_dir)

    def load_model(self) -> SentimentClassifier:
        """Builds the classifier (called once per worker process by ``RunInference``)."""
        return load_sentiment_classifier(
            self._model, label_map=self._label_map, max_length=self._max_length, cache_dir=self._cache_dir
        )

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
        probabilities = model.predict_proba(texts)
        results = []
        for text, row in zip(texts, probabilities, strict=True):
            scores = {f"p_{label}": float(p) for label, p in zip(LABELS, row, strict=True)}
            inference = {"sentiment": LABELS[int(row.argmax())], **scores}
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
        return kwargs
