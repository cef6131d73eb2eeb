"""Precision and recall of brand matching on ambiguous names: the plain matcher, then with relevance.

Two labelled sets, both hand-written:

* the trap set, `data/handwritten/ambiguity/traps_{validation,test,test2}.jsonl` (brands in
  `brands.yaml` beside it, no exclusions): each post names one ambiguous brand, in its brand sense or
  another; a post counts as predicted when the matcher finds its brand (and, with relevance, the match
  is kept). `test2` is a second held-out split, written later by another writer who read neither of
  the others;
* the matching set, `tests/data/matching_labelled.jsonl`, with its brands as a user would write them
  without exclusions (`data/handwritten/ambiguity/matching_brands.yaml`) and, for reference, as
  `tests/data/matching_brands.yaml` writes them (hand-written excludes and NOT clauses); a prediction
  is a (brand, kind) pair, as in `tests/test_matching_labelled.py`.

Relevance runs as the job runs it: the embedded model's handler with the brands' profiles
(`ScorerModelHandler.with_profiles`), then `transforms.relevance.RelevanceJudge`. Thresholds were
chosen on the validation split only; the test splits are reported, never tuned on.

    python -m tools.eval_matching            # make eval-matching
    python -m tools.eval_matching --errors   # also list each wrong decision
"""

from __future__ import annotations

import argparse
import json
import pathlib
import types
import typing

from schemas.config import BrandConfig, load_config
from transforms.matching import BrandMatcher
from transforms.relevance import RelevanceJudge, relevance_plan

ROOT = pathlib.Path(__file__).resolve().parent.parent
TRAPS = ROOT / "data" / "handwritten" / "ambiguity"
LABELLED = ROOT / "tests" / "data" / "matching_labelled.jsonl"


class Tally(typing.NamedTuple):
    """True positives, false positives, false negatives."""

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _jsonl(path: pathlib.Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [rec for rec in map(json.loads, filter(str.strip, fh)) if "_header" not in rec]


class Relevance:
    """The job's relevance step for one config: the model's profile scores, then the judge."""

    def __init__(self, config: BrandConfig, precision: str = "auto"):
        from models.handler import ScorerModelHandler

        self.ambiguous, profiles = relevance_plan(config)
        self.judge = RelevanceJudge(config, self.ambiguous)
        # The job's arithmetic by default (--precision auto: fp32 in ONNX Runtime), so that the
        # figures are those of what a run computes.
        self._handler = ScorerModelHandler(precision=precision).with_profiles(profiles)
        self._model = self._handler.load_model()

    def scores(self, texts: typing.Sequence[str]) -> list[dict[str, float]]:
        """Per text: profile (brand id) -> the model's relevance."""
        out = []
        for start in range(0, len(texts), 64):
            results = self._handler.run_inference(list(texts[start:start + 64]), self._model)
            out.extend(dict(r.inference.get("relevance", {})) for r in results)
        return out

    def kept(self, brand_id: str, kind: str, text: str, scores: typing.Mapping[str, float]
             ) -> tuple[bool, float | None, str]:
        """(kept, relevance, why) of one match."""
        row = types.SimpleNamespace(brand_id=brand_id, match_kind=kind, text=text, relevance=scores.get(brand_id))
        relevance, why = self.judge.judge(row)
        return self.judge.kept(relevance), relevance, why


def eval_traps(split: str, relevance: Relevance, matcher: BrandMatcher, errors: bool
               ) -> tuple[Tally, Tally, int]:
    """(plain matcher, with relevance, posts) on one split of the trap set."""
    posts = _jsonl(TRAPS / f"traps_{split}.jsonl")
    scores = relevance.scores([p["text"] for p in posts])
    plain, judged = [0, 0, 0], [0, 0, 0]
    for post, score in zip(posts, scores):
        found = [m for m in matcher.match(post["text"], lang=post["lang"]) if m.brand_id == post["brand"]]
        kept, value, why = (relevance.kept(post["brand"], found[0].kind, post["text"], score) if found
                            else (False, None, "not matched"))
        for tally, predicted in ((plain, bool(found)), (judged, kept)):
            truth = post["about_brand"]
            tally[0 if predicted and truth else 1 if predicted else 2] += predicted or truth
        if errors and kept != post["about_brand"]:
            shown = "-" if value is None else f"{value:.2f}"
            print(f"    [{split}] expected {post['about_brand']!s:5} {why:16} {shown:>5} {post['brand']}: "
                  f"{post['text']}")
    return Tally(*plain), Tally(*judged), len(posts)


def eval_labelled(config_path: pathlib.Path, relevance: Relevance | None, errors: bool) -> Tally:
    """(brand, kind) pairs on the matching set, with the config at `config_path`, judged when `relevance`."""
    config = load_config(str(config_path))
    matcher = BrandMatcher(config)
    posts = _jsonl(LABELLED)
    scores = relevance.scores([p["text"] for p in posts]) if relevance else [{}] * len(posts)
    tally = [0, 0, 0]
    for post, score in zip(posts, scores):
        expected = {(e["brand"], e["kind"]) for e in post["expected"]}
        predicted = set()
        for match in matcher.match(post["text"], lang=post["lang"], author=post.get("author")):
            if relevance is None or relevance.kept(match.brand_id, match.kind, post["text"], score)[0]:
                predicted.add((match.brand_id, match.kind))
        for pair in expected | predicted:
            tally[0 if pair in expected and pair in predicted else 1 if pair in predicted else 2] += 1
        if errors and expected != predicted:
            print(f"    [labelled] expected {sorted(expected)} got {sorted(predicted)}: {post['text']}")
    return Tally(*tally)


def _line(name: str, tally: Tally) -> str:
    return f"  {name:<52} {tally.tp:>4} {tally.fp:>4} {tally.fn:>4}   {tally.precision:6.3f}  {tally.recall:6.3f}"


def main(argv: typing.Sequence[str] | None = None) -> None:
    """Prints the table (and with --errors every wrong decision)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list every wrong decision")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8", "int8-mixed"),
                        help="the model's arithmetic, as the job's --precision (default auto, the job's default)")
    args = parser.parse_args(argv)
    config = load_config(str(TRAPS / "brands.yaml"))
    relevance = Relevance(config, args.precision)
    print(f"model: {relevance._model.model_id}")
    matcher = BrandMatcher(config)
    print(f"  {'set / variant':<52} {'TP':>4} {'FP':>4} {'FN':>4}   {'prec.':>6}  {'recall':>6}")
    for split in ("validation", "test", "test2"):
        plain, judged, n = eval_traps(split, relevance, matcher, args.errors)
        print(_line(f"traps {split} ({n} posts): plain matcher", plain))
        print(_line(f"traps {split}: with relevance", judged))
    print(_line("matching_labelled, hand-written excludes (reference)",
                eval_labelled(ROOT / "tests" / "data" / "matching_brands.yaml", None, False)))
    no_excludes = TRAPS / "matching_brands.yaml"
    print(_line("matching_labelled, no excludes: plain matcher", eval_labelled(no_excludes, None, False)))
    print(_line("matching_labelled, no excludes: with relevance",
                eval_labelled(no_excludes, Relevance(load_config(str(no_excludes)), args.precision), args.errors)))


if __name__ == "__main__":
    main()
