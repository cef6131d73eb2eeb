"""Benchmark: the whole job at 10k, 100k and 1M mentions (`make bench-scale`).

    .venv/bin/python tests/benchmarks/bench_scale.py [--sizes 10000,100000,1000000] [--real_model_size 10000]

For each size, synthetic mentions (`tools.synthetic_mentions`: realistic lengths, languages,
reposts, 1 % duplicates; 8 JSON Lines files) are generated once into `--workdir` and the
job runs on them in a fresh child process (`python -m pipelines.run`'s `run()` on the
DirectRunner), with the sentiment model swapped for a cheap fake (the lexicon double of
`tests/support/fake_model.py`, in batches of 256), so that the numbers measure everything but the
model: reading, dedupe, matching, RunInference's plumbing, metrics, alerts and the
Parquet sinks. Then each size again as the job's sliced run (`--chunk_posts`, default
25,000 posts a slice; 0 skips it), and once more at `--real_model_size` with the real
embedded model.

Printed per run: wall time of `run()`, mentions/s, the child's peak RSS (for a sliced run
also each kind of pass's own peak: the child resets the kernel's high-water mark,
/proc/self/clear_refs, before each pass); per step up in
size: how time and memory grow (`t ratio`: time(n2)/time(n1); `per 2x`: the same ratio
brought to a doubling of the input, (t2/t1)^(log 2 / log(n2/n1)); `marginal/s`: the extra
mentions per extra second, i.e. throughput without the fixed start-up cost); then the
seconds per phase (read, dedupe, match, sentiment, metrics, parquet) from the runner's
per-step execution-time counters, and the input mentions per second of matching +
metrics + Parquet together. Targets (docs/benchmarks.md): time per 2x
<= 2.2, memory flat, matching + metrics + Parquet >= 5,000 mentions/s.
Nothing is asserted: speed is measured, not tested. Numbers depend on what else the
machine's 2 cores run at the time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024


def _track_pass_peaks(peaks: dict) -> None:
    """Records the peak RSS of each pass of a sliced run under its kind (stage, score, metrics).

    Wraps `pipelines.chunked`'s pass builders: the pipeline built by one runs before the next
    is built, so at each build the high-water mark so far belongs to the pass before, and is
    then reset (Linux: writing 5 to /proc/self/clear_refs).
    """
    from pipelines import chunked

    state = {"kind": None}

    def close_pass():
        if state["kind"] is not None:
            peaks[state["kind"]] = max(peaks.get(state["kind"], 0.0), _rss_mb("VmHWM"))
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass

    for kind in ("stage", "score", "metrics"):
        build = getattr(chunked, f"build_{kind}")

        def wrapped(*a, _build=build, _kind=kind, **k):
            close_pass()
            state["kind"] = _kind
            peaks[f"{_kind}_passes"] = peaks.get(f"{_kind}_passes", 0) + 1
            return _build(*a, **k)

        setattr(chunked, f"build_{kind}", wrapped)
    peaks["_close"] = close_pass


def _child(args) -> None:
    """Runs the job once and prints one JSON line with its time, memory and counts."""
    from pipelines.run import run

    peaks: dict = {}
    flags = dict(zip(args.beam_args, args.beam_args[1:]))
    if any(int(flags.get(flag, 0)) > 0 for flag in ("--chunk_posts", "--chunk_days")):
        _track_pass_peaks(peaks)

    handler = None
    if args.model == "fake":
        from tests.support.fake_model import FakeSentimentHandler

        class BatchedFake(FakeSentimentHandler):
            def batch_elements_kwargs(self):
                return {"min_batch_size": 1, "max_batch_size": 256}

        handler = BatchedFake()
    argv = ["--config", args.config, "--input", os.path.join(args.input, "*.jsonl"), "--output_dir", args.out]
    started = time.perf_counter()
    result = run(argv + args.beam_args, model_handler=handler)
    seconds = time.perf_counter() - started
    if peaks:
        peaks.pop("_close")()
    manifest = json.loads(pathlib.Path(args.out, "manifest.json").read_text())
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    # A sliced run reset the high-water mark before each pass: its peak is the largest pass's.
    rss = max([rss / 1024] + [mb for kind, mb in peaks.items() if kind in ("stage", "score", "metrics")]) * 1024
    print("BENCH " + json.dumps({"seconds": seconds, "rss_mb": rss / 1024, "counts": manifest["counts"],
                                 "phases": _phase_seconds(result), "pass_peaks_mb": peaks}))


# Steps of a run (top level, or inside the job's composite `SocialListening`) -> the phase they belong to.
_PHASES = {"ReadMentions": "read", "Dedupe": "dedupe", "CountDuplicates": "dedupe", "MatchBrands": "match",
           "ScoreTexts": "sentiment", "MentionDates": "metrics", "ComputeMetrics": "metrics",
           "ComputeTopicMetrics": "metrics", "DetectAlerts": "metrics", "AllDeadLetters": "parquet",
           "AllFiles": "parquet", "CountRows": "parquet"}
PHASES = ("read", "dedupe", "match", "sentiment", "metrics", "parquet")


def _phase_seconds(result) -> dict:
    """Seconds per phase from the runner's own per-step execution-time counters (sampled, not exact).

    The DirectRunner (FnApiRunner) reports `ptransform_execution_time` for each step; the
    time spent between steps (the runner moving data through its shuffles) belongs to no
    step and shows as the difference to the wall time. Empty for runners without them.
    """
    from apache_beam.metrics import monitoring_infos

    infos = getattr(result, "monitoring_infos", None)
    if infos is None:
        return {}
    msecs = {}
    for info in infos():
        if info.urn != monitoring_infos.TOTAL_MSECS_URN:
            continue
        step = info.labels.get(monitoring_infos.PTRANSFORM_LABEL, "")
        top = step.split("/", 1)[0]
        if top == "SocialListening":  # the job's composite (transforms.job): its own steps are the phases
            top = step.split("/", 2)[1] if "/" in step else top
        phase = _PHASES.get(top) or ("parquet" if top.startswith(("Write", "Tag")) else "other")
        msecs[phase] = msecs.get(phase, 0) + monitoring_infos.extract_counter_value(info)
    return {phase: ms / 1000 for phase, ms in msecs.items()}


def _dataset(workdir: pathlib.Path, size: int, config: str, files: int) -> pathlib.Path:
    from tools.synthetic_mentions import brands_from_config, generate, write_files

    path = workdir / f"mentions-{size}"
    done = path / "_DONE"
    if not done.exists():
        started = time.perf_counter()
        write_files(generate(size, seed=1, brands=brands_from_config(config)), str(path), files)
        done.write_text("ok")
        print(f"  generated {size:,} mentions in {time.perf_counter() - started:.1f} s -> {path}", flush=True)
    return path


def _measure(size: int, model: str, data: pathlib.Path, workdir: pathlib.Path, args, chunk_posts: int = 0) -> dict:
    mode = f"{chunk_posts / 1000:g}k" if chunk_posts else "1"
    out = workdir / f"out-{model}-{size}" if not chunk_posts else workdir / f"out-{model}-{size}-{mode}"
    # One pass is asked for explicitly: the job would slice a large input on its own.
    job_args = args.beam_args + ["--chunk_posts", str(chunk_posts)]
    cmd = [sys.executable, __file__, "--child", "--model", model, "--config", args.config, "--input", str(data),
           "--out", str(out), "--"] + job_args
    how = f" in slices of {chunk_posts:,} posts" if chunk_posts else ""
    print(f"  running {size:,} mentions with the {model} model{how} ...", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode or line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"size": size, "model": model, "mode": mode, "error": tail[0][:100]}
    result = {"size": size, "model": model, "mode": mode, **json.loads(line[len("BENCH "):])}
    if chunk_posts:
        result["phases"] = {}  # the step timers of the last pass only: not the run's phases
    return result


def _table(results) -> str:
    head = (f"{'mentions':>10}  {'model':<5} {'pass':>4} {'seconds':>8} {'mentions/s':>10} {'peak RSS MB':>11}   "
            f"{'t ratio':>7} {'per 2x':>6} {'marginal/s':>10} {'RSS ratio':>9}")
    lines = [head, "-" * len(head)]
    previous = None
    for r in results:
        if "error" in r:
            lines.append(f"{r['size']:>10,}  {r['model']:<5} {r['mode']:>4} failed: {r['error']}")
            continue
        row = (f"{r['size']:>10,}  {r['model']:<5} {r['mode']:>4} {r['seconds']:>8.1f} "
               f"{r['size'] / r['seconds']:>10,.0f} {r['rss_mb']:>11,.0f}")
        if previous and (previous["model"], previous["mode"]) == (r["model"], r["mode"]) and "error" not in previous:
            growth = r["size"] / previous["size"]
            ratio = r["seconds"] / previous["seconds"]
            per_2x = ratio ** (math.log(2) / math.log(growth))
            extra = r["seconds"] - previous["seconds"]
            marginal = f"{(r['size'] - previous['size']) / extra:>10,.0f}" if extra > 0 else f"{'n/a':>10}"
            row += (f"   {ratio:>7.2f} {per_2x:>6.2f} {marginal} "
                    f"{r['rss_mb'] / previous['rss_mb']:>9.2f}")
        lines.append(row)
        previous = r
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=os.environ.get("SIZES") or "10000,100000,1000000",
                        help="Comma-separated input sizes (env SIZES too).")
    parser.add_argument("--real_model_size", type=int, default=10000,
                        help="Also run the real embedded model at this size (0: skip).")
    parser.add_argument("--chunk_posts", type=int, default=25_000,
                        help="Also run each size with the job's --chunk_posts at this many posts (0: skip).")
    parser.add_argument("--config", default=str(ROOT / "brands.yaml"))
    parser.add_argument("--files", type=int, default=8, help="Input files per size.")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "social-listening-bench"),
                        help="Where the generated inputs (kept between runs) and outputs go.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="fake", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("beam_args", nargs="*", help="Beam flags for the job, after --.")
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"bench-scale: sizes {', '.join(f'{s:,}' for s in sizes)}; fake model in one pass, then in "
          f"slices of {args.chunk_posts:,} posts (--chunk_posts); then the real model at "
          f"{args.real_model_size:,}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    for size in sizes:
        results.append(_measure(size, "fake", _dataset(workdir, size, args.config, args.files), workdir, args))
        print(_table(results[-1:]).splitlines()[-1], flush=True)
    if args.chunk_posts:
        for size in sizes:
            data = _dataset(workdir, size, args.config, args.files)
            results.append(_measure(size, "fake", data, workdir, args, chunk_posts=args.chunk_posts))
            print(_table(results[-1:]).splitlines()[-1], flush=True)
    if args.real_model_size:
        data = _dataset(workdir, args.real_model_size, args.config, args.files)
        results.append(_measure(args.real_model_size, "real", data, workdir, args))
    print()
    print(_table(results))
    fake = [r for r in results if r["model"] == "fake" and r["mode"] == "1" and "error" not in r]
    real = [r for r in results if r["model"] == "real" and "error" not in r]
    if real:
        same = next((r for r in fake if r["size"] == real[0]["size"]), None)
        if same:
            print(f"\nthe real model adds {real[0]['seconds'] - same['seconds']:.1f} s at {same['size']:,} mentions "
                  f"({same['size'] / max(real[0]['seconds'] - same['seconds'], 1e-9):,.0f} mentions/s of inference)")
    sliced = [r for r in results if r.get("pass_peaks_mb")]
    if sliced:
        print("\npeak RSS MB of each kind of pass in the sliced runs (stage: read the input, stage the posts; "
              "score: the largest slice; metrics: metrics, topics, alerts)")
        print(f"{'mentions':>10}  {'stage':>7} {'score':>7} {'metrics':>7}  score passes")
        for r in sliced:
            pk = r["pass_peaks_mb"]
            print(f"{r['size']:>10,}  " + " ".join(f"{pk.get(k, 0):>7,.0f}" for k in ("stage", "score", "metrics"))
                  + f"  {pk.get('score_passes', 0)}")
    phased = [r for r in results if r.get("phases")]
    if phased:
        print("\nseconds per phase (the runner's per-step execution-time counters; 'between' = wall time "
              "outside any step: the runner's own shuffling and start-up)")
        head = f"{'mentions':>10}  {'model':<5} " + " ".join(f"{p:>9}" for p in PHASES + ("other", "between"))
        head += f"  {'match+metrics+parquet mentions/s':>33}"
        print(head)
        print("-" * len(head))
        for r in phased:
            ph = r["phases"]
            between = r["seconds"] - sum(ph.values())
            core = sum(ph.get(p, 0.0) for p in ("match", "metrics", "parquet"))
            print(f"{r['size']:>10,}  {r['model']:<5} " + " ".join(f"{ph.get(p, 0.0):>9.1f}" for p in PHASES)
                  + f" {ph.get('other', 0.0):>9.1f} {between:>9.1f}  {r['size'] / core if core else 0:>33,.0f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine slows every number)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
