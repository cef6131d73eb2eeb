"""The main batch job: mentions in; brand mentions with sentiment, rate metrics and dead letters out.

Run it on the bundled sample (what `make run` does)::

    python -m pipelines.run --config brands.yaml --input 'data/sample/*.jsonl' --output_dir out/

Any of Beam's own flags work as well, e.g. `--direct_num_workers 2
--direct_running_mode multi_processing` locally, or `--runner DataflowRunner --project P
--region R --temp_location gs://B/tmp --setup_file ./setup.py` on Google Cloud.

Fetch from the platforms instead of (or beside) files with `--source` (see README, "Connectors")::

    X_BEARER_TOKEN=... python -m pipelines.run --config brands.yaml --source x,mastodon --output_dir out/

This module only parses, plans, builds and runs; each of those lives where its name says:

- `pipelines.options`: the flags (the connectors' own come from `connectors/<name>.py`) and
  `validate()`, which returns the typed `JobConfig` or stops the run with exit 2;
- `pipelines.plan`: the window, the platforms' tasks, the model, and whether the job runs in
  one pass or in slices (`--chunk_posts`, `--chunk_days`, or by itself for a large input on
  the DirectRunner: `pipelines.chunked`);
- `transforms.job.SocialListening`: the job's steps, composed once (Dedupe -> MatchBrands ->
  ScoreSentiment -> ComputeMetrics, ComputeTopicMetrics, ComputeResponseQueue -> DetectAlerts);
  `pipelines.compose` reads the sources in front of it and writes the tables of `schemas.tables`
  behind it; then the staged tables are committed into `--output_dir`, the connectors' state after
  them, and a `manifest.json` records the counts of every step.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import sys
import time
import typing

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.compose import build_social_listening
from pipelines.options import SocialListeningOptions, asks_for_help, check_output_dir, help_text, validate
from pipelines.options import parse_label_map
from pipelines import plan as planning
from schemas.config import ConfigError
from schemas.tables import FETCH_TABLES, JOB_TABLES as TABLES
from transforms.fetch import FetchPlan, commit_state, state_path
from transforms.incremental import load_runs, updated_runs, write_runs
from transforms.job import dead_letter_prefix
from transforms.sinks import commit_partitions, commit_tables, delete_tree

__all__ = ["SocialListeningOptions", "check_output_dir", "help_text", "main", "run"]
LOG = logging.getLogger("social_listening")


def run(argv: typing.Optional[typing.Sequence[str]] = None, test_pipeline: typing.Optional[beam.Pipeline] = None,
        model_handler: typing.Optional[ModelHandler] = None):
    """Parses flags, builds and runs the job, commits its outputs and writes the manifest.

    Args:
        argv: Command-line arguments (defaults to sys.argv[1:]).
        test_pipeline: A pipeline to build into instead of a new one (tests).
        model_handler: Overrides the sentiment model chosen by --model (tests, benchmarks).

    Returns:
        The PipelineResult; None when an --incremental run finds nothing new to process.
    """
    options = PipelineOptions(argv if argv is not None else sys.argv[1:])
    opts = options.view_as(SocialListeningOptions)
    config = validate(options)
    # A pipeline handed in (a test's) is one pipeline: sliced only when its flags ask for it.
    plan = planning.plan_run(config, slicing=(config.chunk_days, config.chunk_posts or 0) if test_pipeline else None)
    if plan.nothing_to_do:
        print(f"Nothing to do: {config.output_dir} is processed up to {load_runs(config.output_dir).get('watermark')} "
              f"(exclusive); the next window ends {opts.window_end or plan.now.date().isoformat()}.")
        return None
    job = plan.job(model_handler or planning.model_handler(config.model))
    opts.chunk_days, opts.chunk_posts = plan.chunk_days, plan.chunk_posts  # as planned, for the manifest
    run_id, now, staging, fetch, started = plan.run_id, plan.now, plan.staging_dir, plan.fetch, time.time()
    finish = (options, opts, plan)
    context = (run_id, started, now, config.sources, config.inputs, config.brands)
    if plan.sliced:
        from pipelines.chunked import run_in_slices

        try:
            result, counts = run_in_slices(
                lambda: beam.Pipeline(runner=planning.runner(config), options=options), plan, job, _counters)
        except BaseException:
            delete_tree(staging)  # the previous outputs were never touched
            raise
        return _finish(*finish, result, counts, *context)
    pipeline = test_pipeline or beam.Pipeline(runner=planning.runner(config), options=options)
    build_social_listening(pipeline, plan, job)
    if config.dry_run:
        # Builds (and for Dataflow, stages and translates) the job without running it.
        result = pipeline.run()
        print(f"Dry run {run_id}: the job was built for {config.runner or 'DirectRunner'} "
              "and not run; nothing was written.")
        return result
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except BaseException:
        # The previous outputs were never touched; only this run's staged files go.
        delete_tree(staging)
        if fetch is not None:
            delete_tree(fetch.state_staging_dir)  # the connectors' state stays where it was
        raise
    return _finish(*finish, result, _counters(result), *context)


def _sliced_by(opts: SocialListeningOptions) -> bool:
    """Whether the run went in slices (`_finish` records them in the manifest)."""
    return bool(opts.chunk_days or opts.chunk_posts)


def _fetch_summary(fetch: FetchPlan, counts: typing.Dict[str, int]) -> dict:
    return {
        "connectors": {name: {"base_url": conf.base_url or None, "state": state_path(fetch.output_dir, name),
                              "posts_fetched": counts.get(f"fetch.{name}_posts", 0)}
                       for name, conf in sorted(fetch.settings.items())},
        "tasks": len(fetch.tasks),
        "tasks_stopped": counts.get("fetch.stopped_tasks", 0),
        "pages": counts.get("fetch.pages", 0),
        "brand_replies": counts.get("fetch.brand_replies", 0),
        "account_snapshots": counts.get("fetch.account_snapshots", 0),
    }


def _counters(result) -> typing.Optional[typing.Dict[str, int]]:
    """The Beam counters of a finished run; None when the runner reports none (the Dask runner)."""
    try:
        found = result.metrics().query(MetricsFilter())["counters"]
    except NotImplementedError:
        return None
    counts: typing.Dict[str, int] = {}
    for counter in found:
        name = f"{counter.key.metric.namespace}.{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[name] = counts.get(name, 0) + int(value or 0)
    return counts


def _counts_from_files(staging_dir: str) -> typing.Dict[str, int]:
    """What can be counted without Beam metrics: the rows of the staged files, per table and dead-letter step."""
    import pyarrow.parquet as pq

    counts: typing.Dict[str, int] = {}
    for table in ("brand_mentions", "metrics", "dead_letters", "response_queue"):
        pattern = FileSystems.join(staging_dir, table, "*", "*.parquet")
        for match in FileSystems.match([pattern])[0].metadata_list:
            with FileSystems.open(match.path) as fh:
                rows = pq.ParquetFile(fh).metadata.num_rows
            counts[f"write.{table}_rows"] = counts.get(f"write.{table}_rows", 0) + rows
            step = match.path.rsplit("/", 2)[-2].partition("=")[2]
            if table == "dead_letters" and rows:
                counts[f"dead_letters.{step}"] = counts.get(f"dead_letters.{step}", 0) + rows
    return counts


def build_manifest(counts: typing.Dict[str, int], counted_from: str = "metrics", **info) -> dict:
    """Assembles the run manifest: per-step counts, the balance check and run info.

    Args:
        counts: 'namespace.name' -> value, from the Beam counters or `_counts_from_files`.
        counted_from: 'metrics', or 'files' when the runner reported no metrics: then only
            the written rows are known, and the per-step counts and the balance are null.
        **info: Run information copied into the manifest.
    """
    dead = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("dead_letters.")}
    known = counted_from == "metrics"
    steps = {
        "records_read": counts.get("read.records", 0) if known else None,
        "mentions_valid": counts.get("read.mentions", 0) if known else None,
        "duplicates_dropped": counts.get("dedupe.duplicates", 0) if known else None,
        "mentions_outside_window": counts.get("window.outside_mentions", 0) if known else None,
        "mentions_matched": counts.get("match.matched_mentions", 0) if known else None,
        "mentions_unmatched": counts.get("match.unmatched_mentions", 0) if known else None,
        "brand_mention_rows": counts.get("write.brand_mentions_rows", 0),
        "metric_rows": counts.get("write.metrics_rows", 0),
        "dead_letter_rows": counts.get("write.dead_letters_rows", 0),
        "response_queue_rows": counts.get("write.response_queue_rows", 0),
        "dead_letters_by_step": dead,
    }
    if known:
        scored = steps["mentions_matched"] - dead.get("sentiment", 0)
        # records in = matched and scored + unmatched + duplicates + outside the window + dead letters
        steps["balanced"] = steps["records_read"] == (
            scored + steps["mentions_unmatched"] + steps["duplicates_dropped"] + steps["mentions_outside_window"]
            + sum(dead.values()))
    else:
        steps["balanced"] = None
    return {**info, "counted_from": counted_from, "counts": steps}


def _sha256(path: str) -> str:
    with FileSystems.open(path) as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _finish(options: PipelineOptions, opts: SocialListeningOptions, job: JobConfig, result,
            counts: typing.Optional[typing.Dict[str, int]], run_id: str, started: float, now: datetime.datetime,
            sources: typing.Sequence[str], patterns: typing.Sequence[str], brands: BrandConfig):
    """After a successful run: commits the staged tables (and state), writes the manifest, prints the summary."""
    staging, output_dir, fetch, window = job.staging_dir, job.output_dir, job.fetch, job.window
    counted_from = "metrics"
    if counts is None:
        counts, counted_from = _counts_from_files(staging), "files"
    tables = TABLES + (FETCH_TABLES if fetch is not None else ())
    if window is None:
        commit_tables(staging, output_dir, tables)
    else:
        # Only the window's days of brand_mentions and its own dead letters; the rest of those stays.
        commit_partitions(staging, output_dir, "brand_mentions", [f"created_date={d}" for d in window.days()])
        commit_partitions(staging, output_dir, "dead_letters", None, file_prefix=dead_letter_prefix(window) + "-",
                          same_row=("source", "reason", "record"))
        commit_tables(staging, output_dir, [t for t in tables if t not in ("brand_mentions", "dead_letters")])
    if fetch is not None:
        # Only after the tables: a state that ran ahead of them would lose posts.
        commit_state(fetch.state_staging_dir, output_dir, fetch.settings)
    if window is not None:
        # Last of all: a run that died before this point is rerun from the same start.
        write_runs(output_dir, updated_runs(load_runs(output_dir), window, run_id, now))

    manifest = build_manifest(
        counts,
        counted_from=counted_from,
        run_id=run_id,
        started_at=datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        seconds=round(time.time() - started, 1),
        runner=options.view_as(StandardOptions).runner or "DirectRunner",
        sources=list(sources),
        inputs=list(patterns),
        output_dir=output_dir,
        config={"path": opts.config, "sha256": _sha256(opts.config), "brands": brands.brand_ids()},
        model={"spec": opts.model, "label_map": parse_label_map(opts.label_map), "model_ids": _model_ids(output_dir)},
        tables={t: FileSystems.join(output_dir, t) for t in tables},
    )
    if window is not None:
        manifest["window"] = window.describe()
    if _sliced_by(opts):
        manifest["chunk_days"] = opts.chunk_days
        manifest["chunk_posts"] = opts.chunk_posts
    if fetch is not None:
        manifest["fetch"] = _fetch_summary(fetch, counts)
    with FileSystems.create(FileSystems.join(output_dir, "manifest.json")) as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    print(format_summary(manifest))
    return result


def _model_ids(output_dir: str) -> typing.List[str]:
    """The model ids recorded in the committed brand_mentions table."""
    import pyarrow.dataset as ds

    path = FileSystems.join(output_dir, "brand_mentions")
    if "://" in path or not FileSystems.exists(path):
        return []
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=["model_id"])
    return sorted(set(table.column("model_id").to_pylist()))


def _num(value: typing.Optional[int], width: int = 0) -> str:
    return f"{value:>{width},}" if value is not None else f"{'n/a':>{width}}"


def format_summary(manifest: dict) -> str:
    """The few lines `make run` prints at the end."""
    c = manifest["counts"]
    out = manifest["output_dir"]
    dead = ", ".join(f"{k} {v}" for k, v in sorted(c["dead_letters_by_step"].items())) or "none"
    balance = ("unknown: the runner reports no metrics (rows counted from the files)" if c["balanced"] is None
               else "yes" if c["balanced"] else "NO: see manifest.json")
    lines = [
        f"Run {manifest['run_id']} finished in {manifest['seconds']} s ({manifest['runner']})",
        f"  records read          {_num(c['records_read'], 8)}",
        f"  valid mentions        {_num(c['mentions_valid'], 8)}   duplicates dropped {_num(c['duplicates_dropped'])}",
        f"  matched / unmatched   {_num(c['mentions_matched'], 8)} / {_num(c['mentions_unmatched'])}",
        f"  brand_mentions rows   {_num(c['brand_mention_rows'], 8)}   -> {out}/brand_mentions/",
        f"  metrics rows          {_num(c['metric_rows'], 8)}   -> {out}/metrics/",
        f"  dead letters          {_num(c['dead_letter_rows'], 8)}   -> {out}/dead_letters/  ({dead})",
        f"  response queue        {_num(c.get('response_queue_rows'), 8)}   -> {out}/response_queue/",
        f"  counts balance        {balance}",
    ]
    win = manifest.get("window")
    if win:
        lines.insert(2, f"  window                {win['start']} .. {win['end']} (exclusive)"
                        f"{', incremental' if win['incremental'] else ''}; outside it "
                        f"{_num(c['mentions_outside_window'])} mentions (not scored)")
    fetch = manifest.get("fetch")
    if fetch:
        posts = sum(v["posts_fetched"] for v in fetch["connectors"].values())
        stopped = f", {fetch['tasks_stopped']} stopped (resumed next run)" if fetch["tasks_stopped"] else ""
        lines.append(f"  fetched posts         {posts:>8,}   {fetch['tasks']} tasks{stopped} from "
                     f"{', '.join(fetch['connectors'])} -> state in {out}/_state/")
    lines += [
        f"  model                 {', '.join(manifest['model']['model_ids']) or manifest['model']['spec']}",
        f"  manifest              {out}/manifest.json",
    ]
    return "\n".join(lines)


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """Command-line entry point: a bad flag or config exits 2 with its message; --help lists the flags."""
    argv = sys.argv[1:] if argv is None else argv
    if asks_for_help(argv):
        # Beam's parser would answer for its base class only (`-h`), hiding the job's flags.
        print(help_text())
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
