"""Benchmark: sentiment inference, side by side in one run (`make bench`).

    .venv/bin/python tests/benchmarks/bench_inference.py [--input data/sample/mentions.jsonl]
        [--config brands.yaml] [--variants torch-fp32,onnx-fp32,onnx-int8-mixed] [--naive-sample 400] [--skip c,d]

Texts: the posts of `--input` that the brands of `--config` match (what the job scores),
with their repeats (reposts, copy-paste) left in. Contenders, each in its own process so
that its peak memory is its own, one after another in this one run (compare them only
within a run: the machine's load moves between runs):

- (a) **raw forward** per variant (backend-precision: torch-fp32 is the torch path,
  onnx-fp32 the fused ONNX Runtime graph; onnx-int8-mixed its int8 with the embeddings and
  feed-forward outputs in fp32, the default; onnx-int8 int8 throughout): the
  model (encoder with the sentiment and topic outputs, head, topic scores) on pre-tokenised,
  length-sorted batches at the best of a few batch sizes: the limit of that variant;
- (b) **our pipeline** per variant: `python -m pipelines.run` end to end with `--backend`
  and `--precision`, file in, Parquet out (reading, dedupe, matching, scoring distinct
  texts, metrics, alerts, writes, model load included), texts/s counted over the same
  matched posts; and once more on the input's first `--startup-records` records: the
  difference of the two runs is the pipeline's marginal texts/s, without the fixed start-up
  (imports, graph construction, model load, commit) that a small input cannot amortise;
  A variant ending in ``+judged`` (say ``onnx-fp32+judged``) is the scorer of a job that judges an
  ambiguous brand: its pass also runs the relevance layers (docs/relevance.md); it is timed raw
  only, and compared with the same variant without it;
- (c) **naive loop**: a transformers `pipeline("feature-extraction")` called once per text
  in torch fp32, then mean pooling and the same head (on a fixed random sample of
  `--naive-sample` texts: per-text cost does not depend on the order);
- (d) **RunInference, default batching**: `beam.Create(texts) | RunInference(handler)` with
  a textbook torch fp32 handler (Beam's default `BatchElements` settings, each batch padded
  as given), model load included.

Prints texts/s, seconds and peak RSS for each, and the ratios: (b)/(a) of the same variant
(plain and marginal; target >= 0.85), (b)/(c) (target >= 5), (b)/(d), and each pipeline's
speed-up over the first variant's pipeline (torch fp32; target >= 2). ONNX graphs are
exported (first use) before any timing. Nothing is asserted: speed is measured, not tested.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
import typing

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def matched_texts(input_path: pathlib.Path, config_path: pathlib.Path) -> list[str]:
    """The texts of the posts the config's brands match, in file order, once per post id."""
    from schemas.config import load_config
    from transforms.matching import BrandMatcher

    matcher = BrandMatcher(load_config(str(config_path)))
    texts, seen = [], set()
    with open(input_path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            key = (record.get("platform"), record.get("id"))
            if key in seen or not isinstance(record.get("text"), str):
                continue
            seen.add(key)
            if matcher.match(record["text"], lang=record.get("lang"), author=record.get("author_handle")):
                texts.append(record["text"])
    return texts


# ------------------------------------------------------------------------- contenders (children)


def _classifier(variant: str):
    """The scorer of a variant: ``backend-precision``, with ``+judged`` as in a job that judges an ambiguous brand."""
    from models.embedded_scorer import EmbeddedScorer
    from models.relevance import load_projection
    from models.taxonomy import DEFAULT_TOPICS

    variant, judged, _ = variant.partition("+judged")
    backend, _, precision = variant.partition("-")
    relevance = dict(context_embedding=True, relevance_layers=load_projection().layers_path) if judged else {}
    return EmbeddedScorer(precision=precision, topics=DEFAULT_TOPICS, backend=backend, **relevance)


def _wanted(clf) -> list:
    """The encoder outputs the scorer reads: its head's, its context embedding's and, judging brands, the
    relevance branch's (see EmbeddedScorer)."""
    enc = clf.encoder
    if hasattr(enc, "resolve_layer"):  # torch
        return [enc.resolve_layer(layer) for layer in clf._layers()]
    return [enc._normalise([layer])[0] for layer in clf._layers()]


def run_raw(texts: list[str], variant: str) -> dict:
    """(a): forward passes only (encoder, head, topic scores), length-sorted, best batch size of a short sweep."""
    import numpy as np
    import torch

    from models.text import model_text

    clf = _classifier(variant)
    enc = clf.encoder
    ids = enc.token_ids([model_text(t) for t in texts], prefix=clf.prefix, max_length=clf.max_length)
    onnx = clf.backend == "onnx"
    columns = [enc.wanted.index(w) for w in _wanted(clf)] if onnx else []

    def forward(sample: list[list[int]], batch_size: int) -> float:
        order = sorted(range(len(sample)), key=lambda i: len(sample[i]))
        chunks = [[sample[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]
        if onnx:
            batches = [enc.pad(chunk) for chunk in chunks]
        else:
            batches = [enc.tokenizer.pad({"input_ids": chunk}, return_tensors="pt") for chunk in chunks]
        started = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                if onnx:
                    pooled = enc.pooled_batch(*batch)
                    clf._probs(pooled[columns[0]])
                    clf.topic_scorer.scores(pooled[columns[1]])
                else:
                    head_in, topic_in, *_ = enc.pooled_batch(batch["input_ids"], batch["attention_mask"],
                                                             _wanted(clf))
                    torch.softmax(clf.head(head_in), dim=-1)
                    clf.topic_scorer.scores(topic_in.numpy())
        return time.perf_counter() - started

    sweep_sample = random.Random(0).sample(ids, min(256, len(ids)))
    forward(sweep_sample[:64], 32)  # warm-up
    sweep = {bs: len(sweep_sample) / forward(sweep_sample, bs) for bs in (32, 64)}
    best = max(sweep, key=sweep.get)
    seconds = forward(ids, best)
    return {"texts": len(texts), "seconds": seconds, "batch_size": best, "model_id": clf.model_id,
            "sweep": {k: round(v, 1) for k, v in sweep.items()}, "threads": torch.get_num_threads(),
            "tokens_mean": float(np.mean([len(i) for i in ids]))}


def run_naive(texts: list[str], sample: int) -> dict:
    """(c): a transformers pipeline called once per text."""
    import numpy as np
    import torch
    from transformers import pipeline

    from models.embedded import ensure_embedded_checkpoint
    from models.encoder import set_threads
    from models.head import load_head
    from models.embedded_scorer import DEFAULT_HEAD_PATH

    set_threads()
    checkpoint = ensure_embedded_checkpoint()
    extractor = pipeline("feature-extraction", model=str(checkpoint), tokenizer=str(checkpoint), framework="pt",
                         dtype=torch.float32)
    head, _ = load_head(DEFAULT_HEAD_PATH)
    chosen = random.Random(0).sample(texts, min(sample, len(texts)))
    started = time.perf_counter()
    for text in chosen:
        tokens = np.asarray(extractor("query: " + text)[0], dtype=np.float32)
        pooled = tokens.mean(axis=0)
        pooled /= np.linalg.norm(pooled)
        with torch.inference_mode():
            torch.softmax(head(torch.from_numpy(pooled[None, :])), dim=-1)
    return {"texts": len(chosen), "seconds": time.perf_counter() - started}


def run_runinference(texts: list[str]) -> dict:
    """(d): RunInference with Beam's default batching and a handler that pads each batch as given."""
    import apache_beam as beam
    import torch
    from apache_beam.ml.inference.base import ModelHandler, RunInference

    class PlainHandler(ModelHandler):
        def load_model(self):
            return _classifier("torch-fp32")

        def run_inference(self, batch, model, inference_args=None):
            enc = model.encoder
            encoded = enc.tokenizer(["query: " + t for t in batch], padding=True, truncation=True,
                                    max_length=256, return_tensors="pt")
            with torch.inference_mode():
                head_in, topic_in = enc.pooled_batch(encoded["input_ids"], encoded["attention_mask"], _wanted(model))
                probs = torch.softmax(model.head(head_in), dim=-1).numpy()
                model.topic_scorer.scores(topic_in.numpy())
            return list(probs)

    started = time.perf_counter()
    with beam.Pipeline() as p:
        _ = p | beam.Create(texts) | RunInference(PlainHandler()) | beam.combiners.Count.Globally()
    return {"texts": len(texts), "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------------------------- parent


def run_pipeline(args: argparse.Namespace, n_texts: int, variant: str) -> dict:
    """(b): the real job, as `make run` runs it (flags parsed, model loaded, outputs committed)."""
    from pipelines import run as job

    backend, _, precision = variant.partition("-")
    out_dir = tempfile.mkdtemp(prefix="bench-pipeline-")
    input_path = args.pipeline_input or args.input
    argv = ["--config", str(args.config), "--input", str(input_path), "--output_dir", out_dir,
            "--backend", backend, "--precision", precision, "--quiet"]
    started = time.perf_counter()
    if job.main(argv) != 0:
        raise SystemExit("the pipeline failed")
    seconds = time.perf_counter() - started
    manifest = json.loads(pathlib.Path(out_dir, "manifest.json").read_text())
    return {"texts": n_texts, "seconds": seconds, "matched": manifest["counts"]["mentions_matched"],
            "output_dir": out_dir}


def _child(role: str, args: argparse.Namespace, texts_file: str, variant: str = "torch-fp32") -> dict:
    """Runs one contender in a fresh process; returns its result (the last line it prints)."""
    command = [sys.executable, __file__, "--role", role, "--variant", variant, "--texts-file", texts_file,
               "--naive-sample", str(args.naive_sample), "--input", str(args.input), "--config", str(args.config)]
    if args.pipeline_input:
        command += ["--pipeline-input", str(args.pipeline_input)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"({role} {variant}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _texts_file(texts: list[str]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(texts, handle, ensure_ascii=False)
        return handle.name


def _ratios(results: dict[str, dict], variants: list[str], small_texts: int) -> None:
    """Prints the per-variant details and the ratios the issue's targets name."""
    rate = {k: v["texts"] / v["seconds"] for k, v in results.items() if not k.startswith("b0")}
    marginal = {}
    for variant in variants:
        a, b, b0 = (results.get(f"{r} {variant}") for r in ("a", "b", "b0"))
        if a:
            print(f"(a) {variant}: batch size {a['batch_size']} (sweep, texts/s: {a['sweep']}), {a['threads']} "
                  f"threads, {a['tokens_mean']:.1f} tokens/text; {a['model_id']}")
        if b and b0:
            marginal[variant] = (b["texts"] - small_texts) / max(1e-9, b["seconds"] - b0["seconds"])
            line = f"(b) {variant}: start-up {b0['seconds']:.1f} s; marginal {marginal[variant]:.1f} texts/s"
            if a:
                line += (f"; b/a = {rate[f'b {variant}'] / rate[f'a {variant}']:.2f}, marginal b/a = "
                         f"{marginal[variant] / rate[f'a {variant}']:.2f} (target >= 0.85)")
            print(line)
    for variant in variants:
        plain = variant.partition("+judged")[0]
        if "+judged" in variant and f"a {variant}" in rate and f"a {plain}" in rate:
            print(f"(a) {variant}: {rate[f'a {variant}'] / rate[f'a {plain}']:.2f}x the texts/s of (a) {plain} "
                  "(a job judging an ambiguous brand runs the relevance layers too)")
    base = variants[0]
    for variant in variants:
        key = f"b {variant}"
        if key not in rate:
            continue
        parts = []
        if "c" in rate:
            parts.append(f"b/c = {rate[key] / rate['c']:.1f} (target >= 5)")
        if "d" in rate:
            parts.append(f"b/d = {rate[key] / rate['d']:.2f}")
        if f"b {base}" in rate and variant != base:
            speedup = f"{rate[key] / rate[f'b {base}']:.2f}x end to end"
            if base in marginal and variant in marginal:
                speedup += f", {marginal[variant] / marginal[base]:.2f}x marginal"
            parts.append(f"vs (b) {base}: {speedup} (target >= 2)")
        print(f"(b) {variant}: " + "; ".join(parts))


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=pathlib.Path, default=ROOT / "data" / "sample" / "mentions.jsonl")
    parser.add_argument("--config", type=pathlib.Path, default=ROOT / "brands.yaml")
    parser.add_argument("--variants", default="torch-fp32,onnx-fp32,onnx-int8-mixed",
                        help="backend-precision list for (a) and (b); the first is the baseline of the speed-ups")
    parser.add_argument("--naive-sample", type=int, default=400)
    parser.add_argument("--startup-records", type=int, default=100,
                        help="records of the input in (b)'s second, small run that measures start-up")
    parser.add_argument("--skip", default="", help="contenders to leave out, e.g. 'c,d'")
    parser.add_argument("--pipeline-input", type=pathlib.Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--role", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="torch-fp32", help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role:  # a child: one contender, result as the last stdout line
        texts = json.loads(pathlib.Path(args.texts_file).read_text(encoding="utf-8"))
        runner = {"a": lambda: run_raw(texts, args.variant),
                  "b": lambda: run_pipeline(args, len(texts), args.variant),
                  "c": lambda: run_naive(texts, args.naive_sample),
                  "d": lambda: run_runinference(texts)}[args.role]
        result = runner()
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return 0

    from models.embedded import ensure_embedded_checkpoint
    from models.encoder import available_cpus
    from models.onnx_backend import cpu_arithmetic
    from models.text import model_text

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    skip = {c.strip() for c in args.skip.split(",") if c.strip()}
    ensure_embedded_checkpoint()  # converted once, outside every timing
    texts = matched_texts(args.input, args.config)
    distinct = len({model_text(t) for t in texts})
    print(f"texts: {len(texts)} matched posts of {args.input} ({distinct} distinct after normalisation); "
          f"{available_cpus()} CPUs for this process, arithmetic {cpu_arithmetic()}, load average "
          f"{os.getloadavg()[0]:.1f} at the start", flush=True)
    texts_file = _texts_file(texts)
    warm_file = _texts_file(texts[:64])
    for variant in variants:  # ONNX exports (first use only) happen here, outside every timing
        if variant.startswith("onnx"):
            _child("a", args, warm_file, variant)
    os.unlink(warm_file)
    small = pathlib.Path(tempfile.mkdtemp(prefix="bench-small-")) / "small.jsonl"
    with open(args.input, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= args.startup_records:
                break
            dst.write(line)
    small_texts = matched_texts(small, args.config)
    small_args = argparse.Namespace(**{**vars(args), "pipeline_input": small})
    results: dict[str, dict] = {}
    for variant in variants:
        for role, label in (("a", "raw forward"), ("b", "pipeline")):
            if role == "b" and "+judged" in variant:
                continue  # the pipeline's config judges what it judges; a +judged variant is timed raw only
            if role not in skip:
                print(f"running ({role}) {label}, {variant} ...", flush=True)
                results[f"{role} {variant}"] = _child(role, args, texts_file, variant)
        if "b" not in skip and "+judged" not in variant:
            print(f"running (b) {variant} again on the first {args.startup_records} records "
                  f"({len(small_texts)} matched posts) ...", flush=True)
            results[f"b0 {variant}"] = _child("b", small_args, texts_file, variant)
    for role, label in (("c", "naive loop"), ("d", "RunInference")):
        if role not in skip:
            print(f"running ({role}) {label} ...", flush=True)
            results[role] = _child(role, args, texts_file)
    for result in results.values():
        shutil.rmtree(result.pop("output_dir", ""), ignore_errors=True)
    shutil.rmtree(small.parent, ignore_errors=True)
    os.unlink(texts_file)

    names = {"a": "(a) raw forward, best batch", "b": "(b) our pipeline, file -> Parquet",
             "b0": "(b) start-up run, first records", "c": "(c) naive transformers loop",
             "d": "(d) RunInference, default batching"}
    print(f"\n{'contender':36s} {'variant':15s} {'texts':>6s} {'seconds':>8s} {'texts/s':>8s} {'peak RSS MB':>12s}")
    for key, result in results.items():
        role, _, variant = key.partition(" ")
        shown = f"{result['texts'] / result['seconds']:8.1f}" if role != "b0" else f"{'':8s}"
        texts = result["matched"] if role == "b0" else result["texts"]  # the start-up run reads fewer posts
        print(f"{names[role]:36s} {variant or 'torch-fp32':15s} {texts:6d} {result['seconds']:8.1f} "
              f"{shown} {result['peak_rss_mb']:12.0f}")
    print()
    _ratios(results, variants, len(small_texts))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
