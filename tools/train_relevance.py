"""Learns the relevance projection from hand-written posts about brands OTHER than the trap set's.

The relevance score (:mod:`models.relevance`) compares a post's embedding with its brand's profile
phrases and with a bank of everyday other senses. This tool learns a low-rank change of that
embedding space, ``x -> normalise(x + (x V) U^T)``, under which the margin separates posts about a
brand from posts using its name in another sense, on brands the measurement never sees:

* **train**: ``data/handwritten/ambiguity/train.jsonl`` with its config ``train_brands.yaml``
  (40 ambiguous brands that are not among the trap set's 17; hand-written, see the README there);
  only posts the model judges count (the matcher finds the brand, no tag, competitor or product
  decides it);
* **choice**: rank, weight decay and epochs on ``traps_validation.jsonl`` (``--grid``), then the
  offset and the case nudge on the same split, as for every relevance variant
  (:func:`tools.relevance_variants.choose`);
* **test**: ``traps_test.jsonl``, read only with ``--test``, once for the chosen projection.

Usage::

    python -m tools.train_relevance                 # train the shipped recipe -> models/heads/relevance_projection.*
    python -m tools.train_relevance --grid          # the grid on the validation split (prints the table)
    python -m tools.train_relevance --test          # also print the test split's figures (read once)

Embeddings are those of the job (the embedded model's relevance layers, fp32), cached per text
(``--cache``); a first run embeds ~6,000 phrases and posts (about a minute on 2 cores), later runs
take about 15 seconds, and about as long per grid point.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import pathlib
import sys
import typing

import numpy as np

from models.embedded import default_cache_dir, file_sha1
from models.relevance import DEFAULT_PROJECTION_PATH, RelevanceScorer, load_projection, save_projection
from schemas.config import load_config
from tools.relevance_variants import TRAPS, CachedEmbeddings, choose, kept_at, load_split, precision_recall
from transforms.matching import BrandMatcher
from transforms.relevance import RelevanceJudge, relevance_plan

TRAIN_POSTS = TRAPS / "train.jsonl"
TRAIN_BRANDS = TRAPS / "train_brands.yaml"
# 1,090 more posts about 60 more brands, written later; training with them gained nothing on validation
# (docs/relevance.md), so the shipped projection does not read them: --more adds them.
MORE_POSTS = TRAPS / "train_more.jsonl"
MORE_BRANDS = TRAPS / "train_more_brands.yaml"
SCALE = 30.0
# A projection moves the margins, so the offset is searched wider than for the encoder's own space.
OFFSETS = np.round(np.arange(-0.1, 0.1001, 0.0025), 4)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the shipped projection is trained (chosen with ``--grid`` on the validation split)."""

    rank: int = 8
    weight_decay: float = 0.003
    epochs: int = 3
    init_scale: float = 0.1
    learning_rate: float = 3e-3
    batch_size: int = 32
    seed: int = 0
    seeds: int = 5  # projections averaged (one per seed): less of one run's luck


GRID = {"rank": (4, 8), "weight_decay": (0.003, 0.01, 0.03), "epochs": (3, 5)}


class Judged(typing.NamedTuple):
    """Posts the model judges, with what the loss needs: embedding, brand column, case, truth (and the text)."""

    embeddings: np.ndarray  # [n, dim], unit norm, the encoder's space
    columns: np.ndarray  # [n] index into the scorer's profiles
    case: np.ndarray  # [n] +1 capitalised mid-sentence, -1 lower case, 0 neither
    truth: np.ndarray  # [n] about the brand
    texts: np.ndarray | None = None  # [n] the posts' texts (object; read_train fills it)


class Phrases(typing.NamedTuple):
    """Every profile's phrase vectors and other-sense vectors, stacked, with which profile owns each."""

    profile: np.ndarray  # [np, dim]
    profile_owner: np.ndarray  # [np]
    sense: np.ndarray  # [ns, dim]
    sense_owner: np.ndarray  # [ns]


def phrases_of(scorer: RelevanceScorer) -> Phrases:
    """The (unprojected) phrase vectors of a scorer built without a projection."""
    profile = [v for v in scorer._profile_vectors]
    sense = [v for v in scorer._sense_vectors]
    return Phrases(np.concatenate(profile), np.repeat(np.arange(len(profile)), [len(v) for v in profile]),
                   np.concatenate(sense), np.repeat(np.arange(len(sense)), [len(v) for v in sense]))


def read_train(cache: CachedEmbeddings, posts_path: pathlib.Path = TRAIN_POSTS,
               brands_path: pathlib.Path = TRAIN_BRANDS, named: bool = False) -> tuple[Judged, Phrases, int]:
    """The training posts the model judges, and their brands' phrases. Also returns the posts read."""
    config = load_config(str(brands_path))
    ambiguous, profiles = relevance_plan(config)
    judge, matcher = RelevanceJudge(config, ambiguous), BrandMatcher(config)
    scorer = RelevanceScorer(profiles, cache.embed)
    column = {name: j for j, name in enumerate(scorer.names)}
    split = load_split("train", matcher, judge, cache, path=posts_path, named=named)
    # What the model judges: the matcher finds the brand, and no tag, competitor or product decides it.
    kept = split.found & ~split.cheap & np.array([p["brand"] in column for p in split.posts])
    judged = Judged(split.embeddings[kept], np.array([column[p["brand"]] for p, k in zip(split.posts, kept) if k]),
                    split.case[kept], np.array([bool(p["about_brand"]) for p in split.posts])[kept],
                    np.array([p["text"] for p in split.posts], dtype=object)[kept])
    return judged, phrases_of(scorer), len(split.posts)


def joined(parts: typing.Sequence[tuple[Judged, Phrases, int]]) -> tuple[Judged, Phrases, int]:
    """Several training sets as one: each set's brand columns shifted past the sets before it."""
    judged, phrases, read, shift = [], [], 0, 0
    for j, ph, n in parts:
        judged.append(j._replace(columns=j.columns + shift))
        phrases.append(ph._replace(profile_owner=ph.profile_owner + shift, sense_owner=ph.sense_owner + shift))
        shift += int(ph.profile_owner.max()) + 1
        read += n
    return (Judged(*(np.concatenate(x) for x in zip(*judged))),
            Phrases(*(np.concatenate(x) for x in zip(*phrases))), read)


def trap_split(name: str, cache: CachedEmbeddings, named: bool = False):
    """A trap split as :mod:`tools.relevance_variants` reads it, and its brands' phrases."""
    config = load_config(str(TRAPS / "brands.yaml"))
    ambiguous, profiles = relevance_plan(config)
    scorer = RelevanceScorer(profiles, cache.embed)
    split = load_split(name, BrandMatcher(config), RelevanceJudge(config, ambiguous), cache, named=named)
    column = {n: j for j, n in enumerate(scorer.names)}
    return split, np.array([column[p["brand"]] for p in split.posts]), phrases_of(scorer)


def _torch_margins(torch, project, embeddings, columns, phrases: Phrases):
    """Best cosine to the post's own profile minus best cosine to its own other senses, projected.

    Only the phrases of the brands among `columns` are projected (a batch names a few of the brands).
    """
    wanted = np.unique(columns)
    profile_rows = np.isin(phrases.profile_owner, wanted)
    sense_rows = np.isin(phrases.sense_owner, wanted)
    posts = project(torch.as_tensor(embeddings))
    profile = project(torch.as_tensor(phrases.profile[profile_rows]))
    sense = project(torch.as_tensor(phrases.sense[sense_rows]))
    columns = torch.as_tensor(columns)
    own_p = columns[:, None] == torch.as_tensor(phrases.profile_owner[profile_rows])[None, :]
    own_s = columns[:, None] == torch.as_tensor(phrases.sense_owner[sense_rows])[None, :]
    sim_p = (posts @ profile.T).masked_fill(~own_p, -2.0).max(dim=1).values
    sim_s = (posts @ sense.T).masked_fill(~own_s, -2.0).max(dim=1).values
    return sim_p - sim_s


def train(judged: Judged, phrases: Phrases, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``recipe.seeds`` projections, one per seed, as one: ``mean_k u_k v_k^T = [u_1..u_K] / K [v_1..v_K]^T``."""
    parts = [train_one(judged, phrases, recipe, recipe.seed + k) for k in range(recipe.seeds)]
    return (np.concatenate([u for u, _ in parts], axis=1) / len(parts), np.concatenate([v for _, v in parts], axis=1))


def train_one(judged: Judged, phrases: Phrases, recipe: Recipe, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learns ``(u, v)`` by logistic loss on the projected margin (with a learnt offset and case weight)."""
    import torch

    torch.manual_seed(seed)
    dim = judged.embeddings.shape[1]
    # As LoRA starts: u at zero (the projection starts as the identity), v random, so u learns from the first step.
    u = torch.nn.Parameter(torch.zeros(dim, recipe.rank))
    v = torch.nn.Parameter(torch.randn(dim, recipe.rank) * recipe.init_scale)
    bias = torch.nn.Parameter(torch.zeros(()))
    case_weight = torch.nn.Parameter(torch.tensor(0.3))

    def project(x):
        y = x + (x @ v) @ u.T
        return y / y.norm(dim=-1, keepdim=True)

    optimiser = torch.optim.Adam([u, v, bias, case_weight], lr=recipe.learning_rate)
    rng = np.random.default_rng(seed)
    truth = torch.as_tensor(judged.truth, dtype=torch.float32)
    case = torch.as_tensor(judged.case)
    for _ in range(recipe.epochs):
        order = rng.permutation(len(judged.truth))
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            margin = _torch_margins(torch, project, judged.embeddings[batch], judged.columns[batch], phrases)
            logits = SCALE * (margin + bias) + case_weight * case[batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth[batch])
            loss = loss + recipe.weight_decay * (u.pow(2).sum() + v.pow(2).sum())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return u.detach().numpy().copy(), v.detach().numpy().copy()


def margins_with(u: np.ndarray | None, v: np.ndarray | None, embeddings: np.ndarray, columns: np.ndarray,
                 phrases: Phrases) -> np.ndarray:
    """The projected margins (numpy; no projection when ``u`` is None)."""
    import torch

    def project(x):
        if u is None:
            return x
        y = x + (x @ torch.as_tensor(v)) @ torch.as_tensor(u).T
        return y / y.norm(dim=-1, keepdim=True)

    with torch.no_grad():
        return _torch_margins(torch, project, embeddings, columns, phrases).numpy()


def evaluate(split, columns, phrases, u, v, chosen: tuple[float, float] | None = None):
    """``(offset, case weight, precision, recall)`` on a trap split; offset and case chosen on it unless given."""
    margin = margins_with(u, v, split.embeddings, columns, phrases)
    offset, weight = chosen or choose(split, margin, OFFSETS)
    precision, recall = precision_recall(split, kept_at(split, margin, offset, weight))
    return offset, weight, precision, recall


def _shown(path: pathlib.Path) -> str:
    """A path relative to the repository where it lies inside it."""
    root = TRAPS.parents[2]
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Trains (or runs the grid); prints the figures; exit code 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="run the grid on the validation split and print it")
    parser.add_argument("--test", action="store_true", help="also read the test split (once, for the chosen one)")
    parser.add_argument("--train", type=pathlib.Path, default=TRAIN_POSTS, help="training posts (jsonl)")
    parser.add_argument("--brands", type=pathlib.Path, default=TRAIN_BRANDS, help="their brand config")
    parser.add_argument("--more", action="store_true",
                        help=f"also train on {MORE_POSTS.name} with {MORE_BRANDS.name} (not the shipped recipe)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_PROJECTION_PATH, help="where to write it")
    parser.add_argument("--cache", type=pathlib.Path, default=default_cache_dir() / "relevance-embeddings.pkl",
                        help="pickle of cached embeddings (created when missing)")
    args = parser.parse_args(argv)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = CachedEmbeddings(args.cache)
    judged, phrases, read = read_train(cache, args.train, args.brands)
    if args.more:
        judged, phrases, read = joined([(judged, phrases, read), read_train(cache, MORE_POSTS, MORE_BRANDS)])
    print(f"train: {read} posts, {len(judged.truth)} judged by the model ({int(judged.truth.sum())} about the brand)")
    validation, val_columns, val_phrases = trap_split("validation", cache)
    offset, weight, p, r = evaluate(validation, val_columns, val_phrases, None, None)
    print(f"no projection: validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})")
    recipe = Recipe()
    if args.grid:
        print("| rank | weight decay | epochs | offset / case | validation P / R | balanced |\n|---|---|---|---|---|---|")
        best = None
        for rank, decay, epochs in itertools.product(*GRID.values()):
            trial = dataclasses.replace(recipe, rank=rank, weight_decay=decay, epochs=epochs)
            offset, weight, p, r = evaluate(validation, val_columns, val_phrases, *train(judged, phrases, trial))
            key = (min(p / 0.97, r / 0.95), p + r)
            print(f"| {rank} | {decay} | {epochs} | {offset:+.4f} / {weight} | {p:.3f} / {r:.3f} | {key[0]:.3f} |",
                  flush=True)
            if best is None or key > best[0]:
                best = (key, trial)
        recipe = best[1]
        print(f"chosen on validation: {recipe}")
    u, v = train(judged, phrases, recipe)
    offset, weight, p, r = evaluate(validation, val_columns, val_phrases, u, v)
    print(f"projection: validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})")
    metadata = {
        "recipe": dataclasses.asdict(recipe),
        "train": {"posts": _shown(args.train), "sha1": file_sha1(args.train), "brands": _shown(args.brands),
                  "brands_sha1": file_sha1(args.brands), "more": bool(args.more), "read": read,
                  "judged": len(judged.truth)},
        "chosen_on": "data/handwritten/ambiguity/traps_validation.jsonl",
        "offset": round(-offset, 4) + 0.0,  # models.relevance's sign: relevance = sigmoid(scale * (margin - offset))
        "case_logit": weight,
        "validation": {"precision": round(p, 4), "recall": round(r, 4)},
    }
    if args.test:
        test, test_columns, test_phrases = trap_split("test", cache)
        *_, tp, tr = evaluate(test, test_columns, test_phrases, u, v, (offset, weight))
        print(f"projection: TEST {tp:.3f} / {tr:.3f}")
    save_projection(args.out, u, v, metadata)
    print(f"wrote {args.out} (sha1 {load_projection(args.out).sha1}); set models.relevance.DEFAULT_OFFSET = "
          f"{round(-offset, 4) + 0.0:+.4f} and transforms.relevance.CASE_LOGIT = {weight}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
