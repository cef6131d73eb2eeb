"""Averages sentiment models fine-tuned from the same start into one (a "model soup").

Models fine-tuned from one starting point with different data or seeds often sit in one basin of
the loss, where the average of their weights does as well as the best of them or better (Wortsman et
al., "Model soups", ICML 2022). The average costs nothing at inference: it is one model. Measured
here (docs/model.md): the best soup on validation matched the shipped model on the test split, no more.

What is averaged, uniformly over the members:

* the fine-tuned layers, merged onto the base encoder (``base + B_k A_k`` for member ``k``), then
  stored again as rank-``--rank`` updates (:func:`models.train_head.compress_layers`);
* the linear heads, in the space of the raw pooled embedding (each head's input standardisation
  folded into its weights) and with each member's prior correction undone (with the prior of the
  current training data: a member trained on other data had a prior a little different); the soup's own prior
  correction is then chosen on the validation splits (:func:`models.train_head.calibrate_priors`).

The members must share the encoder and the fine-tuned layers. The soup is measured on the same
validation rows as :mod:`models.train_head` (bucket 8 and the hand-written validation splits; the
test splits are never read here) and written with its members' figures beside its own.

Usage::

    python -m models.soup MEMBER_HEAD.safetensors MEMBER_HEAD.safetensors [...] --out DIR/e5_sentiment_head.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from models.finetune import load_encoder_overrides
from models.head import EmbeddingHead, load_head, save_head
from models.scorer import LABELS
from models.train_head import (
    CONFIDENT,
    HANDWRITTEN_DIR,
    LAYERS_FILE,
    MIN_BUCKET8_F1,
    PRIOR_TAUS,
    _training_data_metadata,
    calibrate_priors,
    compress_layers,
    encoder_metadata,
    format_confusion,
    prepare,
    validation_probs,
)

DEFAULT_RANK = 128


class Member(NamedTuple):
    """One fine-tuned model: its merged layer parameters and its head as a raw-space affine map."""

    path: pathlib.Path
    parameters: dict[str, torch.Tensor]  # BertModel names -> merged fp32 tensors
    weight: torch.Tensor  # [labels, dim], applied to the raw pooled embedding
    bias: torch.Tensor  # [labels], without the member's prior correction
    tau: float
    layers_sha1: str
    metadata: dict[str, Any]


def raw_affine(head: EmbeddingHead) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear head's ``(W, b)`` on the raw embedding: ``W ((x - mean) / std) + b == W' x + b'``."""
    if head.hidden_dim:
        raise ValueError("only linear heads can be averaged")
    weight = head.out.weight.detach().float() / head.input_std
    bias = head.out.bias.detach().float() - weight @ head.input_mean
    return weight, bias


def load_member(head_path: pathlib.Path, checkpoint: pathlib.Path, log_prior: np.ndarray) -> Member:
    """Reads a member; ``log_prior`` (of the training labels) undoes its prior correction."""
    head, metadata = load_head(head_path)
    parameters, suffix = load_encoder_overrides(head_path, metadata, checkpoint)
    if parameters is None:
        raise ValueError(f"{head_path}: names no fine-tuned layers; a soup averages fine-tuned models")
    tau = float(metadata.get("calibration", {}).get("prior_correction_tau", 0.0))
    weight, bias = raw_affine(head)
    bias = bias + torch.tensor(tau * log_prior, dtype=torch.float32)
    return Member(head_path, parameters, weight, bias, tau, suffix.removeprefix("+layers-"), metadata)


def average(members: Sequence[Member]) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The uniform average of the members' parameters and heads.

    Raises:
        ValueError: When the members do not fine-tune the same parameters.
    """
    if not members:
        raise ValueError("a soup needs members")
    names = set(members[0].parameters)
    for member in members[1:]:
        if set(member.parameters) != names:
            raise ValueError(f"{member.path} fine-tunes other parameters than {members[0].path}")
    parameters = {name: torch.stack([m.parameters[name] for m in members]).mean(dim=0) for name in sorted(names)}
    weight = torch.stack([m.weight for m in members]).mean(dim=0)
    bias = torch.stack([m.bias for m in members]).mean(dim=0)
    return parameters, weight, bias


def soup_layers(checkpoint: pathlib.Path, parameters: dict[str, torch.Tensor]) -> dict[int, nn.Module]:
    """The fine-tuned layers of the base encoder with ``parameters`` loaded, by encoder index."""
    import copy

    from transformers import AutoModel

    base = AutoModel.from_pretrained(checkpoint, add_pooling_layer=False)
    indices = sorted({int(name.split(".")[2]) for name in parameters})
    base.load_state_dict(parameters, strict=False)
    return {i: copy.deepcopy(base.encoder.layer[i]) for i in indices}


def main(argv: Sequence[str] | None = None) -> int:
    """Builds, measures and writes the soup; exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members", type=pathlib.Path, nargs="+", help="the members' head .safetensors files")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="head .safetensors to write")
    parser.add_argument("--rank", type=int, default=DEFAULT_RANK, help=f"rank of the stored updates ({DEFAULT_RANK})")
    parser.add_argument("--data", type=pathlib.Path, default=HANDWRITTEN_DIR,
                        help="hand-written data (its validation splits measure the soup)")
    parser.add_argument("--oversample", type=int, default=4, help="as models.train_head (for the training prior)")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        parser.error("give at least two members")
    missing = [str(p) for p in args.members if not p.is_file()]
    if missing:
        parser.error(f"members not found: {', '.join(missing)}")

    started = time.perf_counter()
    layer_counts, encoders = set(), set()
    for path in args.members:
        try:
            _, metadata = load_head(path)
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"{path} is not a head this project wrote: {exc}")
        layer_counts.add(len(metadata.get("encoder", {}).get("fine_tuned", {}).get("layers", [])))
        encoders.add(metadata.get("encoder", {}).get("source_sha1"))
    if len(layer_counts) != 1 or 0 in layer_counts:
        parser.error("the members must fine-tune the same number of layers")
    if len(encoders) != 1:
        parser.error("the members must be fine-tuned from the same encoder (encoder.source_sha1 differs)")
    prepared = prepare(args.data, "clauses", layer_counts.pop(), args.oversample)
    train_y = np.array([y for _, y in prepared.train])
    log_prior = np.log(np.bincount(train_y, minlength=len(LABELS)) / len(train_y))
    members = [load_member(p, prepared.checkpoint, log_prior) for p in args.members]
    val_ids = np.array([i for i, _ in prepared.val])
    val_y = np.array([y for _, y in prepared.val])

    figures = []
    for member in members:
        blocks = nn.ModuleList(soup_layers(prepared.checkpoint, member.parameters).values())
        head = _head(member.weight, member.bias - torch.tensor(member.tau * log_prior, dtype=torch.float32))
        metrics = prepared.select(validation_probs(blocks, head, prepared.states, val_ids))
        figures.append({"head": str(member.path), "layers_sha1": member.layers_sha1, "tau": member.tau,
                        "validation_score": metrics["score"], "summary": metrics["summary"]})
        print(f"member {member.path}: score {metrics['score']:.4f}  {metrics['summary']}")

    parameters, weight, bias = average(members)
    layers = soup_layers(prepared.checkpoint, parameters)
    tensors = compress_layers(layers, prepared.checkpoint, args.rank)
    head = _head(weight, bias)
    probs = validation_probs(nn.ModuleList(layers.values()), head, prepared.states, val_ids)
    uncalibrated = prepared.select(probs)
    tau, metrics = calibrate_priors(head, probs, val_y, train_y, select=prepared.select)
    print(f"soup of {len(members)}, stored at rank {args.rank}: score {metrics['score']:.4f}  {metrics['summary']}"
          f"  (prior correction tau={tau})")
    print(format_confusion(metrics["bucket8"]["confusion"]))
    _write(args, prepared, tensors, head, members, figures, metrics, uncalibrated, tau,
           (time.perf_counter() - started) / 60)
    return 0


def _head(weight: torch.Tensor, bias: torch.Tensor) -> EmbeddingHead:
    head = EmbeddingHead(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.out.weight.copy_(weight)
        head.out.bias.copy_(bias)
    return head.eval()


def _write(args: argparse.Namespace, prepared: Any, tensors: dict[str, torch.Tensor], head: EmbeddingHead,
           members: Sequence[Member], figures: list[dict[str, Any]], metrics: dict[str, Any],
           uncalibrated: dict[str, Any], tau: float, minutes: float) -> None:
    from safetensors.torch import save_file

    out = args.out
    layers_path = out.parent / LAYERS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(layers_path), metadata={"format": "pt", "kind": "low-rank"})
    first = members[0].metadata
    data = _training_data_metadata(prepared.corpus_sha1, prepared.train_rows, prepared.val_rows, prepared.held_out)
    data["handwritten"] = {
        "directory": "data/handwritten (sentiment/, stance/: train.jsonl, validation.jsonl; test.jsonl never read)",
        "note": "each member's own training data is recorded in its entry under training.members",
    }
    data["selection"] = ("members averaged uniformly; prior correction by the mean hand-written validation accuracy "
                         f"per language, bucket-8 (confidence >= {CONFIDENT}) macro-F1 >= {MIN_BUCKET8_F1}")
    metadata = {
        "labels": list(LABELS),
        "encoder": {
            **encoder_metadata(prepared.checkpoint,
                               "mean over all tokens incl. <s></s> of the last layer, L2-normalised"),
            "head_layer": -1,
            "fine_tuned": {
                "file": LAYERS_FILE,
                "kind": "low-rank update (SVD of the average of the members' fine-tuned layers)",
                "layers": sorted({int(name.split(".")[2]) for name in tensors}),
                "rank": args.rank,
                "adapted": first["encoder"]["fine_tuned"].get("adapted", ""),
            },
        },
        "training_data": data,
        "training": {
            "method": "soup",
            "members": [
                {**f, "training": {k: m.metadata.get("training", {}).get(k)
                                   for k in ("method", "config", "best_step", "seed")},
                 "init": m.metadata.get("training_data", {}).get("init"),
                 "handwritten": m.metadata.get("training_data", {}).get("handwritten")}
                for f, m in zip(figures, members, strict=True)],
            "how": "uniform average of the merged layer parameters and of the raw-space heads (prior corrections "
                   "undone), layers stored again at rank " + str(args.rank),
            "minutes": round(minutes, 1),
            "torch_version": torch.__version__,
        },
        "calibration": {"prior_correction_tau": tau, "chosen_on": "validation score, tau in " f"{list(PRIOR_TAUS)}",
                        "validation_metrics_before": uncalibrated},
        "validation_metrics": metrics,
    }
    json_path = save_head(head, out, metadata)
    sha = hashlib.sha1(layers_path.read_bytes()).hexdigest()[:8]
    print(f"wrote {out}, {layers_path} (layers {sha}, {layers_path.stat().st_size} bytes) and {json_path}")


if __name__ == "__main__":
    sys.exit(main())
