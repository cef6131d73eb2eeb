"""Measures the language detector on the hand-written labelled set: per-language accuracy and the confusion matrix.

Run (`make eval` runs the first)::

    python -m tools.eval_language                      # the test split, the shipped settings
    python -m tools.eval_language --split validation --ablation --compare_modes

The set is `data/handwritten/language/{test,validation}.jsonl` (README beside it): short
posts labelled en, ru, uk, hr, sr (Latin and Cyrillic), bs, and texts with no language
(null). Serbian counts per script (sr-Latn, sr-Cyrl); a null label expects "unknown".
Rules are tuned on the validation split only; the test split is for reporting.

`--ablation` reruns with each rule of `transforms.language.RULES` turned off (and all off:
lingua alone), so each rule's contribution shows. `--compare_modes` builds lingua in its
high- and low-accuracy modes side by side (accuracy, build time, texts per second, memory
growth of this process).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import time
import typing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from schemas.config import DEFAULT_LANGUAGES  # noqa: E402
from transforms.language import DEFAULT_MIN_CONFIDENCE, RULES, LanguageDetector, script_of  # noqa: E402

DATA = os.path.join(ROOT, "data", "handwritten", "language")
UNKNOWN = "unknown"


def load(split: str) -> list[dict]:
    """The rows of one split: {'id', 'text', 'lang' (None: no language), 'script'}."""
    with open(os.path.join(DATA, f"{split}.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def variant(lang: str | None, script: str | None) -> str:
    """The class a row is scored in: the language, Serbian split by script, 'unknown' for none."""
    if lang is None:
        return UNKNOWN
    return f"sr-{script}" if lang == "sr" and script in ("Latn", "Cyrl") else lang


def evaluate(detector: LanguageDetector, rows: typing.Sequence[dict], errors: bool = False
             ) -> tuple[dict, float]:
    """(gold class -> Counter of predicted classes, seconds spent detecting); prints the misses with `errors`."""
    confusion: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    # lingua loads each language's models on first use: a first pass loads them, the second is timed.
    for row in rows:
        detector.resolve(row["text"], None)
    start = time.perf_counter()
    predicted = [detector.resolve(row["text"], None) for row in rows]
    seconds = time.perf_counter() - start
    for row, found in zip(rows, predicted):
        gold, got = variant(row["lang"], row["script"]), variant(found.lang, found.script)
        confusion[gold][got] += 1
        if errors and gold != got:
            print(f"  miss {row['id']}: {gold} -> {got}: {row['text']}")
    return confusion, seconds


def accuracy(confusion: typing.Mapping[str, collections.Counter]) -> dict[str, float]:
    """Per gold class, and 'all' over every row."""
    out = {gold: row[gold] / sum(row.values()) for gold, row in confusion.items()}
    total = sum(sum(row.values()) for row in confusion.values())
    out["all"] = sum(row[gold] for gold, row in confusion.items()) / total if total else 0.0
    return out


def print_report(title: str, confusion: typing.Mapping[str, collections.Counter]) -> None:
    """Per-class accuracy and the confusion matrix (rows: gold, columns: predicted)."""
    acc = accuracy(confusion)
    golds = sorted(confusion, key=_order)
    columns = sorted({p for row in confusion.values() for p in row} | set(golds), key=_order)
    print(f"\n{title}")
    print(f"  accuracy over {sum(sum(r.values()) for r in confusion.values())} posts: {acc['all']:.3f}")
    print("  " + "  ".join(f"{g} {acc[g]:.3f} (n={sum(confusion[g].values())})" for g in golds))
    width = max(len(c) for c in columns) + 1
    print("  gold \\ predicted".ljust(18) + "".join(c.rjust(width) for c in columns))
    for gold in golds:
        print(f"  {gold}".ljust(18) + "".join(str(confusion[gold][c] or ".").rjust(width) for c in columns))


def _order(name: str) -> tuple[int, str]:
    known = ["en", "ru", "uk", "hr", "sr-Latn", "sr-Cyrl", "bs", UNKNOWN]
    return (known.index(name) if name in known else len(known), name)


def script_accuracy(rows: typing.Sequence[dict]) -> float:
    """Share of rows whose `script_of` equals the labelled script (a null label: no letters)."""
    return sum(script_of(r["text"]) == r["script"] for r in rows) / len(rows)


def _rss_mb() -> float:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Prints the report; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--languages", default=",".join(DEFAULT_LANGUAGES))
    parser.add_argument("--min_confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    parser.add_argument("--ablation", action="store_true", help="Also with each rule off, and with none.")
    parser.add_argument("--errors", action="store_true", help="List the misses (validation: to tune the rules).")
    parser.add_argument("--compare_modes", action="store_true", help="lingua high- vs low-accuracy mode.")
    parser.add_argument("--mode_only", choices=("high", "low"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rows = load(args.split)
    languages = [c for c in args.languages.split(",") if c]
    if args.mode_only:
        rss = _rss_mb()
        start = time.perf_counter()
        detector = LanguageDetector(languages, args.min_confidence, low_accuracy=args.mode_only == "low")
        confusion, seconds = evaluate(detector, rows)
        load_s = time.perf_counter() - start - 2 * seconds
        print(f"{args.mode_only}-accuracy: accuracy {accuracy(confusion)['all']:.3f}, "
              f"{len(rows) / seconds:,.0f} posts/s, models loaded in {load_s:.1f} s, memory +{_rss_mb() - rss:.0f} MB")
        return 0
    print(f"Language detection on data/handwritten/language/{args.split}.jsonl ({len(rows)} posts), "
          f"languages {','.join(languages)}, min_confidence {args.min_confidence}")
    print(f"script column (Latn/Cyrl/other from the characters) agrees with the label on {script_accuracy(rows):.3f}")
    rss = _rss_mb()
    start = time.perf_counter()
    detector = LanguageDetector(languages, args.min_confidence)
    confusion, seconds = evaluate(detector, rows, args.errors)
    build = time.perf_counter() - start - seconds
    print_report("lingua + all rules (as shipped)", confusion)
    print(f"  {len(rows) / seconds:,.0f} posts/s after the models loaded; models loaded in {build - seconds:.1f} s; "
          f"memory +{_rss_mb() - rss:.0f} MB")
    if args.ablation:
        print("\nRule ablation (accuracy over all posts; per class where it changes):")
        base = accuracy(confusion)
        variants = [(f"without {rule}", [r for r in RULES if r != rule]) for rule in RULES] + [("lingua only", [])]
        for name, rules in variants:
            acc = accuracy(evaluate(LanguageDetector(languages, args.min_confidence, rules=rules), rows)[0])
            moved = ", ".join(f"{g} {base[g]:.3f}->{acc.get(g, 0):.3f}" for g in sorted(base, key=_order)
                              if g != "all" and abs(acc.get(g, 0) - base[g]) > 1e-9)
            print(f"  {name:<24} {acc['all']:.3f} (all rules {base['all']:.3f}){': ' + moved if moved else ''}")
    if args.compare_modes:
        # lingua caches its models per process: each mode is measured in a fresh one.
        print("\nlingua modes (each in a fresh process: models loaded, then timed; memory: resident growth from "
              "building the detector on):")
        for mode in ("high", "low"):
            out = subprocess.run([sys.executable, "-m", "tools.eval_language", "--split", args.split, "--languages",
                                  args.languages, "--min_confidence", str(args.min_confidence), "--mode_only", mode],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            print("  " + out.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
