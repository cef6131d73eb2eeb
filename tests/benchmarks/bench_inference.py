"""Benchmark: sentiment inference, four ways on the same texts (`make bench`).

    .venv/bin/python tests/benchmarks/bench_inference.py [--input data/sample/mentions.jsonl]
        [--config brands.yaml] [--precision fp32] [--naive-sample 400]

Texts: the posts of `--input` that the brands of `--config` match (what the job scores),
with their repeats (reposts, copy-paste) left in. Contenders, each in its own process so
that its peak memory is its own:

- (a) **raw forward**: the embedded model's encoder + head on pre-tokenised, length-sorted
  batches under `torch.inference_mode()`, at the best of a few batch sizes: the limit;
- (b) **our pipeline**: `python -m pipelines.run` end to end, file in, Parquet out
  (reading, dedupe, matching, scoring distinct texts, metrics, alerts, writes, model load
  included), texts/s counted over the same matched posts;
- (c) **naive loop**: a transformers `pipeline("feature-extraction")` called once per text,
  then mean pooling and the same head (on a fixed random sample of `--naive-sample` texts:
  per-text cost does not depend on the order);
- (d) **RunInference, default batching**: `beam.Create(texts) | RunInference(handler)` with
  a textbook handler (Beam's default `BatchElements` settings, each batch padded as given),
  model load included.

Prints texts/s, seconds and peak RSS for each and the ratios b/a, b/c and b/d. (b) also runs
once more on the input's first `--startup-records` records (same job, same model load): the
difference of the two runs gives the pipeline's marginal texts/s, without the fixed start-up
(imports, graph construction, model load, commit) that a small input cannot amortise; b/a is
printed both ways. Nothing is asserted: speed is measured, not tested.
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


def matched_texts(input_path: pathlib.Path, config_path: pathlib.Path) -> typing.List[str]:
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


def _classifier(precision: str):
    from models.sentiment import EmbeddedSentimentClassifier
    from models.topics import DEFAULT_TOPICS

    return EmbeddedSentimentClassifier(precision=precision, topics=DEFAULT_TOPICS)


def _wanted(clf) -> list:
    """The encoder outputs the classifier reads: its head's and its topics' (see EmbeddedSentimentClassifier)."""
    from models.encoder import BASE_LAST

    n = clf.encoder.num_layers
    return [layer if layer == BASE_LAST else layer % (n + 1) for layer in (clf.head_layer, clf.topic_layer)]


def run_raw(texts: typing.List[str], precision: str) -> dict:
    """(a): forward passes only, length-sorted, best batch size of a short sweep."""
    import numpy as np
    import torch

    from models.text import model_text

    clf = _classifier(precision)
    enc = clf.encoder
    ids = enc.token_ids([model_text(t) for t in texts], prefix=clf.prefix, max_length=clf.max_length)
    wanted = _wanted(clf)

    def forward(sample: typing.List[typing.List[int]], batch_size: int) -> float:
        order = sorted(range(len(sample)), key=lambda i: len(sample[i]))
        batches = [enc.tokenizer.pad({"input_ids": [sample[i] for i in order[s:s + batch_size]]},
                                     return_tensors="pt") for s in range(0, len(order), batch_size)]
        started = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                head_in, topic_in = enc.pooled_batch(batch["input_ids"], batch["attention_mask"], wanted)
                torch.softmax(clf.head(head_in), dim=-1)
                clf.topic_scorer.scores(topic_in.numpy())
        return time.perf_counter() - started

    sweep_sample = random.Random(0).sample(ids, min(512, len(ids)))
    forward(sweep_sample[:64], 32)  # warm-up
    sweep = {bs: len(sweep_sample) / forward(sweep_sample, bs) for bs in (16, 32, 64, 128)}
    best = max(sweep, key=sweep.get)
    seconds = forward(ids, best)
    return {"texts": len(texts), "seconds": seconds, "batch_size": best,
            "sweep": {k: round(v, 1) for k, v in sweep.items()}, "threads": torch.get_num_threads(),
            "tokens_mean": float(np.mean([len(i) for i in ids]))}


def run_naive(texts: typing.List[str], precision: str, sample: int) -> dict:
    """(c): a transformers pipeline called once per text."""
    import numpy as np
    import torch
    from transformers import pipeline

    from models.embedded import ensure_embedded_checkpoint
    from models.encoder import set_threads
    from models.head import load_head
    from models.sentiment import DEFAULT_HEAD_PATH

    set_threads()
    checkpoint = ensure_embedded_checkpoint()
    extractor = pipeline("feature-extraction", model=str(checkpoint), tokenizer=str(checkpoint), framework="pt",
                         dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
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


def run_runinference(texts: typing.List[str], precision: str) -> dict:
    """(d): RunInference with Beam's default batching and a handler that pads each batch as given."""
    import apache_beam as beam
    import torch
    from apache_beam.ml.inference.base import ModelHandler, RunInference

    class PlainHandler(ModelHandler):
        def load_model(self):
            return _classifier(precision)

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


def run_pipeline(args: argparse.Namespace, n_texts: int) -> dict:
    """(b): the real job, as `make run` runs it (flags parsed, model loaded, outputs committed)."""
    from pipelines import run as job

    out_dir = tempfile.mkdtemp(prefix="bench-pipeline-")
    input_path = args.pipeline_input or args.input
    argv = ["--config", str(args.config), "--input", str(input_path), "--output_dir", out_dir,
            "--precision", args.precision]
    started = time.perf_counter()
    if job.main(argv) != 0:
        raise SystemExit("the pipeline failed")
    seconds = time.perf_counter() - started
    manifest = json.loads(pathlib.Path(out_dir, "manifest.json").read_text())
    return {"texts": n_texts, "seconds": seconds, "matched": manifest["counts"]["mentions_matched"],
            "output_dir": out_dir}


def _child(role: str, args: argparse.Namespace, texts_file: str) -> dict:
    """Runs one contender in a fresh process; returns its result (the last line it prints)."""
    command = [sys.executable, __file__, "--role", role, "--texts-file", texts_file, "--precision", args.precision,
               "--naive-sample", str(args.naive_sample), "--input", str(args.input), "--config", str(args.config)]
    if args.pipeline_input:
        command += ["--pipeline-input", str(args.pipeline_input)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"({role}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=pathlib.Path, default=ROOT / "data" / "sample" / "mentions.jsonl")
    parser.add_argument("--config", type=pathlib.Path, default=ROOT / "brands.yaml")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"))
    parser.add_argument("--naive-sample", type=int, default=400)
    parser.add_argument("--startup-records", type=int, default=100,
                        help="records of the input in (b)'s second, small run that measures start-up")
    parser.add_argument("--pipeline-input", type=pathlib.Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--role", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role:  # a child: one contender, result as the last stdout line
        texts = json.loads(pathlib.Path(args.texts_file).read_text(encoding="utf-8"))
        runner = {"a": lambda: run_raw(texts, args.precision),
                  "b": lambda: run_pipeline(args, len(texts)),
                  "c": lambda: run_naive(texts, args.precision, args.naive_sample),
                  "d": lambda: run_runinference(texts, args.precision)}[args.role]
        result = runner()
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return 0

    from models.embedded import ensure_embedded_checkpoint
    from models.text import model_text

    ensure_embedded_checkpoint()  # converted once, outside every timing
    texts = matched_texts(args.input, args.config)
    distinct = len({model_text(t) for t in texts})
    print(f"texts: {len(texts)} matched posts of {args.input} ({distinct} distinct after normalisation), "
          f"precision {args.precision}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(texts, handle, ensure_ascii=False)
        texts_file = handle.name
    results = {}
    for role, label in (("a", "raw forward"), ("b", "pipeline"), ("c", "naive"), ("d", "RunInference")):
        print(f"running ({role}) {label} ...", flush=True)
        results[role] = _child(role, args, texts_file)
    shutil.rmtree(results["b"].pop("output_dir"), ignore_errors=True)
    # (b) again on the first records only: its time is (nearly all) the fixed start-up.
    small = pathlib.Path(tempfile.mkdtemp(prefix="bench-small-")) / "small.jsonl"
    with open(args.input, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= args.startup_records:
                break
            dst.write(line)
    small_texts = matched_texts(small, args.config)
    print(f"running (b) again on the first {args.startup_records} records ({len(small_texts)} matched posts) ...",
          flush=True)
    small_args = argparse.Namespace(**{**vars(args), "pipeline_input": small})
    startup = _child("b", small_args, texts_file)
    shutil.rmtree(startup.pop("output_dir"), ignore_errors=True)
    shutil.rmtree(small.parent, ignore_errors=True)
    os.unlink(texts_file)

    rate = {k: v["texts"] / v["seconds"] for k, v in results.items()}
    names = {"a": "(a) raw forward, best batch size", "b": "(b) our pipeline, file -> Parquet",
             "c": "(c) naive transformers pipeline per text", "d": "(d) RunInference, default batching"}
    print(f"\n{'contender':42s} {'texts':>6s} {'seconds':>8s} {'texts/s':>8s} {'peak RSS MB':>12s}")
    for role, result in results.items():
        peak = f"{result['peak_rss_mb']:.0f}" if result.get("peak_rss_mb") else "n/a"
        print(f"{names[role]:42s} {result['texts']:6d} {result['seconds']:8.1f} {rate[role]:8.1f} {peak:>12s}")
    a = results["a"]
    print(f"\n(a) batch size {a['batch_size']} (sweep, texts/s: {a['sweep']}), {a['threads']} threads, "
          f"{a['tokens_mean']:.1f} tokens/text")
    marginal = (results["b"]["texts"] - len(small_texts)) / max(1e-9, results["b"]["seconds"] - startup["seconds"])
    print(f"(b) on {len(small_texts)} posts: {startup['seconds']:.1f} s (start-up); marginal rate of (b): "
          f"{marginal:.1f} texts/s")
    print(f"b/a = {rate['b'] / rate['a']:.2f}   (target >= 0.85); marginal b/a = {marginal / rate['a']:.2f}")
    print(f"b/c = {rate['b'] / rate['c']:.2f}   (target >= 5)")
    print(f"b/d = {rate['b'] / rate['d']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
