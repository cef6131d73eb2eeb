"""Relevance variants that were measured on the validation split and not built (docs/relevance.md).

Each prints validation precision / recall with its own offset and case nudge chosen on the split
(:func:`tools.relevance_variants.choose`), like every row of the tables in docs/relevance.md, so
that the table can be rebuilt. No test split is read here.

* ``sense-languages``: the shipped model (projection and relevance layers), with each brand's posts
  compared only with the other-sense phrases written in the languages of the brand's own profile
  phrases (lingua tells them), so that a profile written in English alone meets English senses alone;
* ``cross-encoder``: instead of comparing embeddings, the top layers read the post and the brand's
  profile phrases together (``post || phrase; phrase; ...``) and a linear head on the pooled output
  gives the logit; trained like the relevance layers (same posts, optimiser and schedule), alone and
  averaged with the shipped model's margin;
* ``neighbours``: a prior learnt from the job's own mentions. Each post's margin moves towards those of
  the k posts most like it among the other posts that name the same brand (a post a tag, competitor
  or product decides counts as a sure brand post), as a job would see its mentions of one brand.

Usage::

    python -m tools.relevance_experiments sense-languages     # about a minute
    python -m tools.relevance_experiments cross-encoder       # about 10 minutes on 2 cores
    python -m tools.relevance_experiments neighbours          # about a minute
"""

from __future__ import annotations

import argparse
import copy
import itertools
import pathlib
import sys
import time
import typing

import numpy as np
import torch

from models.embedded import default_cache_dir, ensure_embedded_checkpoint
from models.encoder import E5Encoder
from models.finetune import compute_layer_states, load_layers_file, top_forward
from models.relevance import DEFAULT_PROJECTION_PATH, OTHER_SENSES, load_projection
from models.text import model_text
from schemas.config import load_config
from tools.relevance_variants import TRAPS, CachedEmbeddings, Split, choose, kept_at, load_split, precision_recall
from tools.train_relevance import OFFSETS, trap_split
from tools.train_relevance_layers import LAYERS_FILE, TRAINING_SETS, Recipe, embed, fit, states_of
from transforms.matching import BrandMatcher
from transforms.relevance import RelevanceJudge, relevance_plan

WIDE_OFFSETS = np.round(np.arange(-0.2, 0.2001, 0.0025), 4)


def report(label: str, split: Split, margin: np.ndarray, offsets: np.ndarray = OFFSETS) -> None:
    """Prints one variant's validation figures, offset and case nudge chosen on the split."""
    offset, weight = choose(split, margin, offsets)
    p, r = precision_recall(split, kept_at(split, margin, offset, weight))
    print(f"{label}: validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})", flush=True)


def shipped_encoder() -> E5Encoder:
    """The embedded encoder with the shipped relevance layers as its relevance branch (as the job loads it)."""
    checkpoint = ensure_embedded_checkpoint()
    merged, _ = load_layers_file(DEFAULT_PROJECTION_PATH.parent / LAYERS_FILE, checkpoint)
    return E5Encoder(checkpoint, relevance_overrides=merged)


def shipped_margins(cache: CachedEmbeddings, encoder: E5Encoder, sense_languages: bool = False
                    ) -> tuple[Split, np.ndarray, np.ndarray, np.ndarray]:
    """The validation split, the shipped model's margin per post (senses filtered by language if asked),
    the posts' projected embeddings and their brand columns; ``encoder`` from :func:`shipped_encoder`."""
    from transforms.language import LanguageDetector

    projection = load_projection(DEFAULT_PROJECTION_PATH)
    split, columns, phrases = trap_split("validation", cache)
    start = encoder.relevance_from
    posts = projection(embed(encoder.relevance_top,
                             states_of(encoder, [p["text"] for p in split.posts], start, Recipe.max_length)))
    profile, sense = projection(phrases.profile), projection(phrases.sense)
    if sense_languages:
        detector = LanguageDetector()
        senses = [t for cluster in OTHER_SENSES.values() for t in cluster]
        sense_lang = np.tile([detector.resolve(t).lang or "und" for t in senses], int(phrases.sense_owner.max()) + 1)
        _, profiles = relevance_plan(load_config(str(TRAPS / "brands.yaml")))
        profile_lang = np.array([detector.resolve(t).lang or "und" for p in profiles for t in p.phrases])
    margin = np.zeros(len(posts), np.float32)
    for i, column in enumerate(columns):
        own_p, own_s = phrases.profile_owner == column, phrases.sense_owner == column
        if sense_languages:
            own_s &= np.isin(sense_lang, np.unique(profile_lang[own_p]))
        margin[i] = (profile[own_p] @ posts[i]).max() - (sense[own_s] @ posts[i]).max()
    return split, margin, posts, columns


def sense_languages(cache: CachedEmbeddings) -> None:
    """The shipped model with and without the other senses filtered by the profile's languages."""
    encoder = shipped_encoder()
    for label, filtered in (("shipped model", False), ("other senses in the profile's languages only", True)):
        split, margin, _, _ = shipped_margins(cache, encoder, filtered)
        report(label, split, margin)


def profile_pairs(posts_path: pathlib.Path | None, brands_path: pathlib.Path, cache: CachedEmbeddings,
                  name: str = "train") -> tuple[Split, np.ndarray, list[str]]:
    """A split, which posts the model judges, and each post's text joined with its brand's profile phrases."""
    config = load_config(str(brands_path))
    ambiguous, profiles = relevance_plan(config)
    by_name = {p.name: p for p in profiles}
    split = load_split(name, BrandMatcher(config), RelevanceJudge(config, ambiguous), cache, path=posts_path)
    judged = split.found & ~split.cheap & np.array([p["brand"] in by_name for p in split.posts])
    pairs = [model_text(p["text"]) + " || " + "; ".join(by_name[p["brand"]].phrases) if p["brand"] in by_name
             else model_text(p["text"]) for p in split.posts]
    return split, judged, pairs


def cross_encoder(cache: CachedEmbeddings, seed: int, max_length: int) -> None:
    """Trains the cross-encoder on the relevance layers' training posts; prints its validation figures."""
    recipe = Recipe(seed=seed)
    texts, case, truth = [], [], []
    for name in recipe.sets:
        split, judged, pairs = profile_pairs(*TRAINING_SETS[name], cache)
        for i in np.flatnonzero(judged):
            texts.append(pairs[i])
            case.append(split.case[i])
            truth.append(bool(split.posts[i]["about_brand"]))
    encoder = shipped_encoder()  # its own layers are the original ones; the shipped margin needs the branch
    start = encoder.num_layers - recipe.layers
    states = compute_layer_states(encoder, texts, start, "query: ", max_length)
    layers = torch.nn.ModuleList([copy.deepcopy(b) for b in encoder.model.encoder.layer[start:]])
    torch.manual_seed(recipe.seed)
    head = torch.nn.Linear(encoder.dim, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    started = time.time()
    fit(layers, states, np.array(case), np.array(truth), recipe, list(head.parameters()), 1e-3,
        lambda pooled, batch: head(10.0 * pooled).squeeze(-1))
    print(f"cross-encoder: {len(truth)} pairs, trained in {time.time() - started:.0f} s", flush=True)
    split, _, pairs = profile_pairs(None, TRAPS / "brands.yaml", cache, "validation")
    val_states = compute_layer_states(encoder, pairs, start, "query: ", max_length)
    with torch.no_grad():
        logits = np.concatenate([
            head(10.0 * top_forward(layers, *val_states.batch(list(range(i, min(i + 64, len(pairs))))))).squeeze(-1)
            .numpy() for i in range(0, len(pairs), 64)])
    cross = logits / 30.0  # on the margin's scale: kept_at multiplies by 30
    report(f"cross-encoder (seed {seed})", split, cross, WIDE_OFFSETS)
    _, shipped, _, _ = shipped_margins(cache, encoder)
    report("shipped model", split, shipped)
    for share in (0.3, 0.5, 0.7):
        report(f"{share} x shipped margin + {1 - share:.1f} x cross-encoder", split,
               share * shipped + (1 - share) * cross, WIDE_OFFSETS)


def neighbours(cache: CachedEmbeddings, sure_margin: float = 0.1, temperature: float = 0.05) -> None:
    """The shipped margin moved towards the margins of each post's nearest posts about the same brand name."""
    split, margin, posts, columns = shipped_margins(cache, shipped_encoder())
    report("shipped model", split, margin)
    similarity = posts @ posts.T
    evidence = np.where(split.cheap, sure_margin, margin)
    for k, weight in itertools.product((3, 5, 10), (0.3, 0.5, 1.0)):
        moved = margin.copy()
        for i in range(len(margin)):
            same = np.flatnonzero((columns == columns[i]) & split.found & (np.arange(len(margin)) != i))
            if len(same):
                near = same[np.argsort(-similarity[i, same])[:k]]
                w = np.exp(similarity[i, near] / temperature)
                moved[i] = margin[i] + weight * float((evidence[near] * w).sum() / w.sum())
        report(f"{k} nearest posts, weight {weight}", split, moved, WIDE_OFFSETS)


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Runs one experiment; exit code 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("sense-languages", "cross-encoder", "neighbours"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=192, help="tokens of a post and its profile together")
    args = parser.parse_args(argv)
    cache = CachedEmbeddings(default_cache_dir() / "relevance-embeddings.pkl")
    if args.experiment == "sense-languages":
        sense_languages(cache)
    elif args.experiment == "neighbours":
        neighbours(cache)
    else:
        cross_encoder(cache, args.seed, args.max_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
