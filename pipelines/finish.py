"""After a successful run: commits the staged tables and the connectors' state, writes the manifest, prints the summary.

Moved here unchanged from `pipelines/run.py` so that the launcher stays a launcher; the
commit moves into the pipeline itself as its last stage (issue 15, `transforms/commit.py`),
which replaces this module.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import typing

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from pipelines.options import SocialListeningOptions, parse_label_map
from pipelines.plan import RunPlan
from schemas.config import BrandConfig
from schemas.tables import FETCH_TABLES, JOB_TABLES as TABLES
from transforms.fetch import FetchPlan, commit_state, state_path
from transforms.incremental import load_runs, updated_runs, write_runs
from transforms.job import dead_letter_prefix
from transforms.sinks import commit_partitions, commit_tables


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


def _finish(options: PipelineOptions, opts: SocialListeningOptions, job: RunPlan, result,
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
