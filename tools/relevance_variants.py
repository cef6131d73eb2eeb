"""Variants of the relevance score on the trap set, each in seconds once the embeddings are cached.

Prints the table "Variants tried" of docs/relevance.md (the rows this tool can rebuild): for each
variant, its offset and case weight chosen on the validation split (the larger of min(P / 0.97,
R / 0.95)), then precision / recall on the first 168 validation posts, on all of them, and on the
test split, read once with the chosen values. Posts go through the job's matcher and
`transforms.relevance.RelevanceJudge` (tags, competitors and products first), as in
`tools/eval_matching.py`; only the model's score differs between variants.

Embeddings (the job's relevance embedding: the original top layers of the embedded model) are cached
per (model id, e5 prefix, text) in a pickle, so that a new variant costs no encoder pass for texts
already seen:

    python -m tools.relevance_variants --cache /tmp/relevance-embeddings.pkl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import pickle
import re
import types
import typing

import numpy as np

from models.relevance import Profile, RelevanceScorer
from models.text import model_text
from schemas.config import load_config
from transforms.matching import BrandMatcher
from transforms.relevance import RelevanceJudge, name_case, relevance_plan

ROOT = pathlib.Path(__file__).resolve().parent.parent
TRAPS = ROOT / "data" / "handwritten" / "ambiguity"
FIRST_VALIDATION_POSTS = 168  # the split as first written; the 74 later posts follow them
SCALE = 30.0
OFFSETS = np.round(np.arange(-0.04, 0.0401, 0.0025), 4)
CASE_WEIGHTS = (0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 2.0)
# "What a company is to its customers", in the five languages served: a variant's extra profile phrases.
GENERIC_COMPANY = (
    "{n}: customers, prices, shops, the app, orders, delivery, customer service",
    "{n}: клиенты, цены, магазины, приложение, заказ, доставка, поддержка",
    "{n}: клієнти, ціни, магазини, застосунок, замовлення, доставка",
    "{n}: kupci, cijene, trgovine, aplikacija, narudžba, dostava, korisnička podrška",
    "{n}: купци, цене, продавнице, апликација, поруџбина, достава",
)


class CachedEmbeddings:
    """The job's relevance embeddings of texts, cached on disk by model id, prefix and text."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._store: dict[str, np.ndarray] = {}
        if path.exists():
            with open(path, "rb") as fh:
                self._store = pickle.load(fh)
        self._classifier = None

    def _model(self):
        if self._classifier is None:
            from models.handler import ScorerModelHandler

            # A profile only so that the handler builds the classifier with the relevance embedding.
            handler = ScorerModelHandler().with_profiles([Profile("probe", ("probe",), "probe")])
            self._classifier = handler.load_model()
        return self._classifier

    def embed(self, texts: typing.Sequence[str], prefix: str = "query: ") -> np.ndarray:
        """Unit-norm relevance embeddings ``[len(texts), dim]`` of `texts` under the e5 `prefix`."""
        model_id = "embedded-relevance-v1"
        keys = [hashlib.sha1(f"{model_id}\0{prefix}\0{t}".encode("utf-8")).hexdigest() for t in texts]
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in self._store))
        if missing:
            classifier = self._model()
            layers = (classifier.head_layer, classifier.context_layer)
            vectors = classifier.encoder.embed_layers([model_text(t) for t in missing], layers, prefix=prefix,
                                                      batch_size=classifier.batch_size,
                                                      max_length=classifier.max_length)[1]
            for text, vector in zip(missing, vectors):
                self._store[hashlib.sha1(f"{model_id}\0{prefix}\0{text}".encode("utf-8")).hexdigest()] = vector
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(self._store, fh)
            os.replace(tmp, self.path)
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([self._store[k] for k in keys]).astype(np.float32)


def as_named(text: str, names: typing.Iterable[str]) -> str:
    """`text` with each of `names` written as the config spells it, whatever its case in the post.

    A word that starts with a name keeps its ending ("магните" -> "Магните" for the name "Магнит"). The
    relevance model then reads the name in one spelling and judges the post's context, not its case (the
    case prior weighs the case, once). A variant, measured and not built (docs/relevance.md).
    """
    for name in sorted({n.rstrip("*").strip() for n in names} - {""}, key=len, reverse=True):
        if name.lower() != name:
            text = re.sub(r"(?<!\w)" + re.escape(name), lambda m: name, text, flags=re.IGNORECASE)
    return text


class Split(typing.NamedTuple):
    """One split's posts: truth, whether the matcher finds the brand, the cheap signals' verdict, case."""

    posts: list[dict]
    found: np.ndarray
    cheap: np.ndarray
    case: np.ndarray
    embeddings: np.ndarray


def load_split(name: str, matcher: BrandMatcher, judge: RelevanceJudge, cache: CachedEmbeddings,
               path: pathlib.Path | None = None, named: bool = False) -> Split:
    """The split `name` ('validation' or 'test') with what the job knows of each post before the model.

    `path` reads another file of the same fields instead (the relevance projection's training posts).
    `named`: the posts' texts (and embeddings) with the brand's name spelt as the config spells it
    (:func:`as_named`); the case is that of the post as written.
    """
    with open(path or TRAPS / f"traps_{name}.jsonl", encoding="utf-8") as fh:
        posts = [json.loads(line) for line in fh if line.strip()]
    found, cheap, case = [], [], []
    for post in posts:
        matches = [m for m in matcher.match(post["text"], lang=post["lang"]) if m.brand_id == post["brand"]]
        row = types.SimpleNamespace(brand_id=post["brand"], match_kind=matches[0].kind if matches else "untagged",
                                    text=post["text"], relevance=None)
        why = judge.judge(row)[1] if matches else ""
        found.append(bool(matches))
        cheap.append(why not in ("", "not scored"))
        case.append(name_case(post["text"], judge._signals[post["brand"]].names) if matches else 0)
    if named:
        posts = [dict(p, text=as_named(p["text"], judge._signals[p["brand"]].names)) for p in posts]
    return Split(posts, np.array(found), np.array(cheap), np.array(case, dtype=np.float32),
                 cache.embed([p["text"] for p in posts]))


def margins(scorer: RelevanceScorer, split: Split) -> np.ndarray:
    """Per post: best cosine to its brand's profile minus best cosine to an other sense."""
    sim_p, sim_o = scorer.similarities(split.embeddings)
    column = {name: j for j, name in enumerate(scorer.names)}
    rows = np.arange(len(split.posts))
    cols = np.array([column[p["brand"]] for p in split.posts])
    return sim_p[rows, cols] - sim_o[rows, cols]


def precision_recall(split: Split, kept: np.ndarray, upto: int | None = None) -> tuple[float, float]:
    """Precision and recall of the brand posts kept (a post counts only when the matcher found its brand)."""
    truth = np.array([p["about_brand"] for p in split.posts])[:upto]
    predicted = (split.found & (split.cheap | kept))[:upto]
    tp = int((predicted & truth).sum())
    return (tp / predicted.sum() if predicted.sum() else 1.0), (tp / truth.sum() if truth.sum() else 1.0)


def kept_at(split: Split, margin: np.ndarray, offset: float, case_weight: float) -> np.ndarray:
    """Which model-judged posts are kept at relevance 0.5 (logit 0)."""
    return SCALE * (margin + offset) + case_weight * split.case >= 0.0


def choose(split: Split, margin: np.ndarray, offsets: typing.Sequence[float] = OFFSETS) -> tuple[float, float]:
    """(offset, case weight) that maximise min(P / 0.97, R / 0.95) on `split` (then P + R)."""
    best = None
    for offset in offsets:
        for weight in CASE_WEIGHTS:
            p, r = precision_recall(split, kept_at(split, margin, offset, weight))
            key = (min(p / 0.97, r / 0.95), p + r)
            if best is None or key > best[0]:
                best = (key, (float(offset), weight))
    return best[1]


def with_generic(profiles: typing.Sequence[Profile]) -> list[Profile]:
    """The profiles, each with the generic company phrases written after its term."""
    return [Profile(p.name, p.phrases + tuple(g.format(n=p.term) for g in GENERIC_COMPANY), p.term)
            for p in profiles]


def main(argv: typing.Sequence[str] | None = None) -> None:
    """Prints the variants' table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path("/tmp/relevance-embeddings.pkl"),
                        help="pickle of cached embeddings (created when missing)")
    args = parser.parse_args(argv)
    cache = CachedEmbeddings(args.cache)
    config = load_config(str(TRAPS / "brands.yaml"))
    ambiguous, profiles = relevance_plan(config)
    judge, matcher = RelevanceJudge(config, ambiguous), BrandMatcher(config)
    validation = load_split("validation", matcher, judge, cache)
    test = load_split("test", matcher, judge, cache)

    def passage(texts: typing.Sequence[str]) -> np.ndarray:
        return cache.embed(texts, prefix="passage: ")

    query = RelevanceScorer(profiles, cache.embed)
    query_generic = RelevanceScorer(with_generic(profiles), cache.embed)
    passage_generic = RelevanceScorer(with_generic(profiles), passage)
    bare = {}
    for form, spell in (("Orange", str), ("orange", str.lower)):
        sim_p, sim_o = query.similarities(cache.embed([spell(p.term) for p in profiles]))
        bare[form] = {name: float(sim_p[j, j] - sim_o[j, j]) for j, name in enumerate(query.names)}

    def shifted(split: Split, scorer: RelevanceScorer, shift: typing.Mapping[str, float]) -> np.ndarray:
        return margins(scorer, split) - 0.5 * np.array([shift[p["brand"]] for p in split.posts])

    variants: list[tuple[str, typing.Callable[[Split], np.ndarray], tuple | None]] = [
        ("previous calibration (best cosine margin, case ±0.6)", lambda s: margins(query, s), (0.01, 0.6)),
        ("same margin, re-chosen (shipped until the projection)", lambda s: margins(query, s), None),
        ("+ generic company phrases in every profile", lambda s: margins(query_generic, s), None),
        ("profile and sense phrases as `passage:`", lambda s: margins(RelevanceScorer(profiles, passage), s), None),
        ("`passage:` + generic company phrases", lambda s: margins(passage_generic, s), None),
        ("mean of the `query:` and the `passage:`+generic margins",
         lambda s: (margins(query, s) + margins(passage_generic, s)) / 2, None),
        ("same, both with generic company phrases",
         lambda s: (margins(query_generic, s) + margins(passage_generic, s)) / 2, None),
        ("minus half the margin of the bare name (\"Orange\")", lambda s: shifted(s, query, bare["Orange"]), None),
        ("minus half the margin of the bare name in lower case", lambda s: shifted(s, query, bare["orange"]), None),
    ]
    print("| variant | offset / case | val 168 | val 242 | test 160 |\n|---|---|---|---|---|")
    plain = [precision_recall(s, np.ones(len(s.posts), bool), upto)
             for s, upto in ((validation, FIRST_VALIDATION_POSTS), (validation, None), (test, None))]
    print("| plain matcher | - | " + " | ".join(f"{p:.3f} / {r:.3f}" for p, r in plain) + " |")
    for label, margin_of, fixed in variants:
        margin_v, margin_t = margin_of(validation), margin_of(test)
        offset, weight = fixed or choose(validation, margin_v)
        figures = [precision_recall(validation, kept_at(validation, margin_v, offset, weight), FIRST_VALIDATION_POSTS),
                   precision_recall(validation, kept_at(validation, margin_v, offset, weight)),
                   precision_recall(test, kept_at(test, margin_t, offset, weight))]
        print(f"| {label} | {offset:+.4f} / {weight} | " + " | ".join(f"{p:.3f} / {r:.3f}" for p, r in figures) + " |",
              flush=True)


if __name__ == "__main__":
    main()
