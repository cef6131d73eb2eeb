"""Precision and recall of brand matching on the hand-written labelled set, kept as a floor.

The set (`tests/data/matching_labelled.jsonl`, brands in `tests/data/matching_brands.yaml`) is
hand-written: posts in en, ru, uk, sr (Cyrillic and Latin) and hr, with the brands a careful
reader says each mentions and how (tagged / untagged), and traps that must not match.

A prediction is a (brand, kind) pair: the right brand with the wrong kind counts once as a false
positive (of the predicted kind) and once as a false negative (of the expected kind).

Print the table (the figures in the README and the note)::

    .venv/bin/python -m tests.test_matching_labelled
"""

from __future__ import annotations

import collections
import json
import pathlib

import pytest

from schemas.config import load_config
from tools.eval_matching import Tally as Counts
from transforms.matching import BrandMatcher

DATA = pathlib.Path(__file__).parent / "data"
PRECISION_FLOOR = 0.97
RECALL_FLOOR = 0.95


def load_labelled() -> list[dict]:
    """The labelled posts (the header line is skipped)."""
    with open(DATA / "matching_labelled.jsonl", encoding="utf-8") as fh:
        return [rec for rec in map(json.loads, fh) if "_header" not in rec]


def group_of(post: dict) -> str:
    """The language, with Serbian split by script."""
    if post["lang"] != "sr":
        return post["lang"]
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in post["text"])
    latin = sum(c.isascii() and c.isalpha() for c in post["text"])
    return "sr-Cyrl" if cyrillic > latin else "sr-Latn"


def evaluate() -> tuple[dict[str, Counts], list[tuple]]:
    """Matches every labelled post.

    Returns:
        Counts per group ('all', each language, 'tagged', 'untagged') and the errors as
        (text, expected, predicted).
    """
    matcher = BrandMatcher(load_config(str(DATA / "matching_brands.yaml")))
    tally: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    errors = []
    for post in load_labelled():
        expected = {(e["brand"], e["kind"]) for e in post["expected"]}
        predicted = {(m.brand_id, m.kind) for m in matcher.match(post["text"], lang=post["lang"],
                                                                   author=post["author"])}
        if expected != predicted:
            errors.append((post["text"], sorted(expected), sorted(predicted)))
        for pair in expected | predicted:
            slot = 0 if pair in expected and pair in predicted else (1 if pair in predicted else 2)
            for group in ("all", group_of(post), pair[1]):
                tally[group][slot] += 1
    return {g: Counts(*c) for g, c in tally.items()}, errors


@pytest.fixture(scope="module")
def results():
    return evaluate()


def test_labelled_set_is_big_enough_and_covers_every_language():
    posts = load_labelled()
    assert len(posts) >= 300
    groups = collections.Counter(group_of(p) for p in posts)
    assert set(groups) == {"en", "ru", "uk", "sr-Cyrl", "sr-Latn", "hr"}
    assert min(groups.values()) >= 40
    assert sum(not p["expected"] for p in posts) >= 50  # traps


@pytest.mark.parametrize("group", ["all", "en", "ru", "uk", "sr-Cyrl", "sr-Latn", "hr", "tagged", "untagged"])
def test_precision_and_recall_floors(results, group):
    counts, errors = results
    c = counts[group]
    assert c.precision >= PRECISION_FLOOR and c.recall >= RECALL_FLOOR, (group, c, errors)


def main() -> None:
    counts, errors = evaluate()
    print(f"{'group':<10} {'TP':>4} {'FP':>3} {'FN':>3}  precision  recall")
    for group in ("en", "ru", "uk", "sr-Cyrl", "sr-Latn", "hr", "tagged", "untagged", "all"):
        c = counts[group]
        print(f"{group:<10} {c.tp:>4} {c.fp:>3} {c.fn:>3}  {c.precision:9.3f}  {c.recall:6.3f}")
    print(f"\n{len(load_labelled())} posts; {len(errors)} with an error:")
    for text, expected, predicted in errors:
        print(f"  {text!r}\n    expected {expected}\n    got      {predicted}")


if __name__ == "__main__":
    main()
