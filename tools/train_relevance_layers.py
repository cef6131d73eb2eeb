"""Fine-tunes a copy of the encoder's original top layers for relevance (the post side of a bi-encoder).

The relevance score (:mod:`models.relevance`) compares a post's embedding with its brand's profile
phrases and with the bank of other senses, both through the learnt projection
(:mod:`tools.train_relevance`). Here the *post* side gets its own copy of the original top
``--layers`` layers (branching off the shared lower layers, beside the sentiment layers and the
original ones), fine-tuned with the same loss as the projection: the logistic loss on the projected
margin (best cosine to the brand's phrases minus best cosine to its other senses), plus a learnt
offset and case weight. The phrases keep the original layers' embeddings (an asymmetric bi-encoder:
the job embeds them once, at start, as before), so the branch starts as the identity of what
shipped before and moves only the posts.

* **train**: the hand-written posts about 100 other ambiguous brands (``train.jsonl`` and
  ``train_more.jsonl``, with their configs; none is a trap-set brand);
* **choice**: layers, epochs, learning rate, and the stored rank, on ``traps_validation.jsonl``;
  then the offset and the case nudge on the same split (:func:`tools.relevance_variants.choose`);
* **test**: ``traps_test.jsonl``, read only with ``--test``, once for the chosen recipe.

Writes ``models/heads/relevance_layers.safetensors`` (low-rank updates, :mod:`models.finetune`'s
format) and names it, with the chosen offset and case nudge, in ``relevance_projection.json``.

Usage::

    python -m tools.train_relevance_layers            # the shipped recipe (about 3 minutes on 2 cores)
    python -m tools.train_relevance_layers --test     # also the test split's figures (read once)
    python -m tools.train_relevance_layers --out /tmp/rel --layers 4 --epochs 5   # a variant
    python -m tools.train_relevance_layers --out /tmp/rel --named    # names spelt as configured (not shipped)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import time
import typing

import numpy as np
import torch

from models.embedded import default_cache_dir, ensure_embedded_checkpoint, file_sha1
from models.encoder import E5Encoder
from models.finetune import LayerStates, compute_layer_states, export_low_rank, merge_lora, top_forward
from models.relevance import DEFAULT_PROJECTION_PATH, Projection, load_projection, projection_metadata_path
from models.text import model_text
from tools.relevance_variants import CachedEmbeddings, Split, choose, kept_at, precision_recall
from tools.train_relevance import (MORE_BRANDS, MORE_POSTS, OFFSETS, SCALE, TRAIN_BRANDS, TRAIN_POSTS, Phrases,
                                   joined, margins_with, read_train, trap_split)

LAYERS_FILE = "relevance_layers.safetensors"
# Hand-written training posts and their brand configs (data/handwritten/ambiguity/README.md), by name.
TRAINING_SETS = {
    "train": (TRAIN_POSTS, TRAIN_BRANDS),
    "train_more": (MORE_POSTS, MORE_BRANDS),
    "train_lower": (TRAIN_POSTS.parent / "train_lower.jsonl", TRAIN_BRANDS),  # brand names mostly in lower case
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the shipped relevance layers are trained (chosen on the validation split; docs/relevance.md)."""

    layers: int = 8
    epochs: float = 3.0
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    batch_size: int = 32
    seed: int = 0
    max_length: int = 128
    rank: int = 32  # singular directions stored per weight (the cut is checked on validation)
    lowercase_copies: bool = False  # also train on each post written all in lower case (name case -1)
    sets: tuple[str, ...] = ("train", "train_more")  # training sets, by name (TRAINING_SETS)
    named: bool = False  # posts read with the brand's name spelt as the config spells it (as_named)


def states_of(encoder: E5Encoder, texts: typing.Sequence[str], start: int, max_length: int) -> LayerStates:
    """The original lower layers' token states entering layer ``start``, as the job computes them."""
    return compute_layer_states(encoder, [model_text(t) for t in texts], start, "query: ", max_length)


def embed(layers: typing.Sequence[torch.nn.Module], states: LayerStates, batch: int = 64) -> np.ndarray:
    """The branch's pooled, unit-norm output for every text of ``states``."""
    out = []
    with torch.no_grad():
        for start in range(0, len(states.lengths), batch):
            x, mask = states.batch(list(range(start, min(start + batch, len(states.lengths)))))
            out.append(top_forward(layers, x, mask).numpy())
    return np.concatenate(out).astype(np.float32)


def torch_margins(posts: torch.Tensor, columns: np.ndarray, phrases: Phrases) -> torch.Tensor:
    """Best cosine to the post's own (projected) profile phrases minus best to its own other senses."""
    wanted = np.unique(columns)
    pr, sr = np.isin(phrases.profile_owner, wanted), np.isin(phrases.sense_owner, wanted)
    cols = torch.as_tensor(columns)
    own_p = cols[:, None] == torch.as_tensor(phrases.profile_owner[pr])[None, :]
    own_s = cols[:, None] == torch.as_tensor(phrases.sense_owner[sr])[None, :]
    return ((posts @ torch.as_tensor(phrases.profile[pr]).T).masked_fill(~own_p, -2.0).max(dim=1).values
            - (posts @ torch.as_tensor(phrases.sense[sr]).T).masked_fill(~own_s, -2.0).max(dim=1).values)


def train(layers: torch.nn.ModuleList, states: LayerStates, columns: np.ndarray, case: np.ndarray,
          truth: np.ndarray, phrases: Phrases, projection: Projection, recipe: Recipe) -> None:
    """Fine-tunes ``layers`` in place on the projected margin (with a learnt offset and case weight)."""
    torch.manual_seed(recipe.seed)
    pu, pv = torch.as_tensor(projection.u), torch.as_tensor(projection.v)

    def project(x):
        y = x + (x @ pv) @ pu.T
        return y / y.norm(dim=-1, keepdim=True)

    bias = torch.nn.Parameter(torch.zeros(()))
    fit(layers, states, case, truth, recipe, [bias], 1e-2,
        lambda pooled, batch: SCALE * (torch_margins(project(pooled), columns[batch], phrases) + bias))


def fit(layers: torch.nn.ModuleList, states: LayerStates, case: np.ndarray, truth: np.ndarray, recipe: Recipe,
        head: typing.Sequence[torch.nn.Parameter], head_lr: float,
        logits_of: typing.Callable[[torch.Tensor, np.ndarray], torch.Tensor]) -> None:
    """The training loop: logistic loss on ``logits_of(pooled output, batch rows) + case weight * case``.

    AdamW on ``layers`` (the recipe's rate and weight decay) and on ``head`` plus the case weight
    (``head_lr``, no decay); warm-up over a tenth of the steps, then linear decay; the recipe's seed
    orders the batches (the caller seeds torch). ``layers`` are left in eval mode.
    """
    case_weight = torch.nn.Parameter(torch.tensor(0.3))
    optimiser = torch.optim.AdamW([{"params": layers.parameters(), "lr": recipe.learning_rate},
                                   {"params": [*head, case_weight], "lr": head_lr, "weight_decay": 0.0}],
                                  weight_decay=recipe.weight_decay)
    n = len(truth)
    steps = int(recipe.epochs * n / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / max(1.0, 0.1 * steps)) * max(0.0, (steps - s) / steps))
    rng = np.random.default_rng(recipe.seed)
    order = np.concatenate([rng.permutation(n) for _ in range(int(np.ceil(recipe.epochs)) + 1)])
    truth_t, case_t = torch.as_tensor(truth, dtype=torch.float32), torch.as_tensor(case)
    layers.train()
    for step in range(steps):
        batch = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
        x, mask = states.batch(list(batch))
        logits = logits_of(top_forward(layers, x, mask), batch) + case_weight * case_t[batch]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth_t[batch])
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(layers.parameters(), 1.0)
        optimiser.step()
        schedule.step()
    layers.eval()


def cut(layers: torch.nn.ModuleList, base: typing.Sequence[torch.nn.Module], start: int, rank: int,
        encoder: E5Encoder) -> tuple[dict[str, torch.Tensor], torch.nn.ModuleList]:
    """The layers stored at ``rank`` (the file's tensors) and the layers that file loads back to."""
    tensors = export_low_rank(dict(zip(range(start, start + len(layers)), layers)),
                              dict(zip(range(start, start + len(base)), base)), rank)
    state = {k: v for k, v in encoder.model.state_dict().items() if k.startswith("encoder.layer.")}
    merged = merge_lora(state, tensors)
    loaded = torch.nn.ModuleList(copy.deepcopy(list(base)))
    for offset, block in enumerate(loaded):
        prefix = f"encoder.layer.{start + offset}."
        block.load_state_dict({k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}, strict=False)
    return tensors, loaded.eval()


def figures(split: Split, columns: np.ndarray, phrases: Phrases, embeddings: np.ndarray, projection: Projection,
            chosen: tuple[float, float] | None = None) -> tuple[float, float, float, float]:
    """``(offset, case weight, precision, recall)``; offset and case chosen on the split unless given."""
    margin = margins_with(projection.u, projection.v, embeddings, columns, phrases)
    offset, weight = chosen or choose(split, margin, OFFSETS)
    return (offset, weight, *precision_recall(split, kept_at(split, margin, offset, weight)))


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Trains, prints the figures, writes the layers; exit code 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recipe = Recipe()
    parser.add_argument("--layers", type=int, default=recipe.layers, help="top layers fine-tuned")
    parser.add_argument("--epochs", type=float, default=recipe.epochs)
    parser.add_argument("--lr", type=float, default=recipe.learning_rate)
    parser.add_argument("--seed", type=int, default=recipe.seed)
    parser.add_argument("--rank", type=int, default=recipe.rank, help="singular directions stored per weight")
    parser.add_argument("--sets", default=",".join(recipe.sets),
                        help=f"training sets, comma-separated, of {', '.join(TRAINING_SETS)}")
    parser.add_argument("--lowercase-copies", action="store_true", default=recipe.lowercase_copies,
                        help="also train on a lower-case copy of each post whose text has capitals")
    parser.add_argument("--named", action="store_true", default=recipe.named,
                        help="read every post with the brand's name spelt as the config spells it")
    parser.add_argument("--ranks", type=int, nargs="*", default=(), help="also print validation at these ranks")
    parser.add_argument("--test", action="store_true", help="also read the test split (once, for the chosen one)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_PROJECTION_PATH.parent,
                        help="folder to write the layers and the projection (with its metadata) to")
    args = parser.parse_args(argv)
    recipe = dataclasses.replace(recipe, layers=args.layers, epochs=args.epochs, learning_rate=args.lr,
                                 seed=args.seed, rank=args.rank, lowercase_copies=args.lowercase_copies,
                                 named=args.named,
                                 sets=tuple(name.strip() for name in args.sets.split(",") if name.strip()))
    unknown = [name for name in recipe.sets if name not in TRAINING_SETS]
    if unknown or not recipe.sets:
        parser.error(f"--sets: {unknown or 'none'}; choose among {', '.join(TRAINING_SETS)}")
    cache = CachedEmbeddings(default_cache_dir() / "relevance-embeddings.pkl")
    projection = load_projection(DEFAULT_PROJECTION_PATH)
    files = [TRAINING_SETS[name] for name in recipe.sets]
    judged, phrases, read = joined([read_train(cache, posts, brands, recipe.named) for posts, brands in files])
    texts = list(judged.texts)
    if recipe.lowercase_copies:
        # Real posts often write a brand's name in lower case; the hand-written ones mostly capitalise it.
        copies = [i for i, text in enumerate(texts) if text.lower() != text]
        texts = texts + [texts[i].lower() for i in copies]
        judged = judged._replace(embeddings=np.concatenate([judged.embeddings, judged.embeddings[copies]]),
                                 columns=np.concatenate([judged.columns, judged.columns[copies]]),
                                 case=np.concatenate([judged.case, -np.ones(len(copies), judged.case.dtype)]),
                                 truth=np.concatenate([judged.truth, judged.truth[copies]]),
                                 texts=np.array(texts, dtype=object))
    # The phrases keep the original layers' embeddings, projected once.
    phrases = phrases._replace(profile=projection(phrases.profile), sense=projection(phrases.sense))
    print(f"train: {read} posts, {len(texts)} judged by the model ({int(judged.truth.sum())} about the brand)")
    validation, val_columns, val_phrases = trap_split("validation", cache, recipe.named)
    offset, weight, p, r = figures(validation, val_columns, val_phrases, validation.embeddings, projection)
    print(f"projection alone: validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})")

    encoder = E5Encoder(ensure_embedded_checkpoint())
    start = encoder.num_layers - recipe.layers
    base = [copy.deepcopy(b).eval() for b in encoder.model.encoder.layer[start:]]
    layers = torch.nn.ModuleList(copy.deepcopy(base))
    started = time.time()
    train(layers, states_of(encoder, texts, start, recipe.max_length), judged.columns, judged.case, judged.truth,
          phrases, projection, recipe)
    print(f"trained {recipe} in {time.time() - started:.0f} s", flush=True)
    val_states = states_of(encoder, [p["text"] for p in validation.posts], start, recipe.max_length)
    offset, weight, p, r = figures(validation, val_columns, val_phrases, embed(layers, val_states), projection)
    print(f"tuned layers (uncut): validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})")
    for rank in args.ranks:
        o, w, p, r = figures(validation, val_columns, val_phrases,
                             embed(cut(layers, base, start, rank, encoder)[1], val_states), projection)
        print(f"stored at rank {rank}: validation {p:.3f} / {r:.3f} (offset {o:+.4f}, case {w})")
    tensors, stored = cut(layers, base, start, recipe.rank, encoder)
    offset, weight, p, r = figures(validation, val_columns, val_phrases, embed(stored, val_states), projection)
    print(f"stored at rank {recipe.rank}: validation {p:.3f} / {r:.3f} (offset {offset:+.4f}, case {weight})")
    if args.test:
        test, test_columns, test_phrases = trap_split("test", cache, recipe.named)
        test_states = states_of(encoder, [p["text"] for p in test.posts], start, recipe.max_length)
        *_, tp, tr = figures(test, test_columns, test_phrases, embed(stored, test_states), projection,
                             (offset, weight))
        print(f"stored at rank {recipe.rank}: TEST {tp:.3f} / {tr:.3f}")

    from safetensors.torch import save_file

    args.out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out / LAYERS_FILE))
    metadata = json.loads(projection_metadata_path(DEFAULT_PROJECTION_PATH).read_text(encoding="utf-8"))
    metadata["fine_tuned"] = {
        "file": LAYERS_FILE, "layers": list(range(start, encoder.num_layers)), "recipe": dataclasses.asdict(recipe),
        "train": [{"file": str(p.relative_to(TRAIN_POSTS.parents[3])), "sha1": file_sha1(p)}
                  for p in dict.fromkeys(path for pair in files for path in pair)],
        "judged": len(texts), "chosen_on": "data/handwritten/ambiguity/traps_validation.jsonl",
        "validation": {"precision": round(p, 4), "recall": round(r, 4)},
    }
    metadata["offset"] = round(-offset, 4) + 0.0  # models.relevance's sign: sigmoid(scale * (margin - offset))
    metadata["case_logit"] = weight
    if args.out.resolve() != DEFAULT_PROJECTION_PATH.parent.resolve():
        import shutil

        shutil.copy(DEFAULT_PROJECTION_PATH, args.out / DEFAULT_PROJECTION_PATH.name)
    projection_metadata_path(args.out / DEFAULT_PROJECTION_PATH.name).write_text(
        json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out / LAYERS_FILE} (sha1 {file_sha1(args.out / LAYERS_FILE)[:8]}); set "
          f"models.relevance.DEFAULT_OFFSET = {metadata['offset']:+.4f} and transforms.relevance.CASE_LOGIT = {weight}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
