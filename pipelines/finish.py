"""The launcher's side of the commit: the lease and recovery before the job, its plan, the wait and summary after.

The commit itself is the job's last stage (`transforms.commit.CommitRun`, issue 15): it
runs inside the pipeline on any runner, so a launcher that submits and returns (a Flex
Template) still gets committed outputs. The launcher only

- `_initialize`: takes `--output_dir`'s lease (one run at a time per directory) and repairs
  what killed runs left (`transforms.commit.recover`), before anything reads the directory;
- `_commit_plan`: decides what the commit stage writes into the manifest besides the counts;
- `_finish`: waits where it may and prints the summary of the committed manifest.
"""

from __future__ import annotations

import json
import os
import typing

from apache_beam.io.filesystems import FileSystems

from pipelines.options import JobConfig
from pipelines.plan import RunPlan
from schemas.config import ConfigError
from schemas.tables import FETCH_TABLES, JOB_TABLES as TABLES
from transforms.commit import CommitPlan, abandon, file_sha256, recover
from transforms.job import dead_letter_prefix
from transforms.lease import LeaseHeld, acquire
from transforms.snapshots import committed_path


def _initialize(config: JobConfig, run_id: str, new_dir: bool) -> str | None:
    """Takes the output directory's lease and repairs what killed runs left; returns the current snapshot.

    Args:
        config: The validated flags (--output_dir, --lease_minutes).
        run_id: This run's id (the lease's holder).
        new_dir: Whether --output_dir did not exist before this run (it goes again if the run stops here).

    Raises:
        ConfigError: another run holds the lease (naming it).
    """
    try:
        acquire(config.output_dir, run_id, config.lease_minutes)
    except LeaseHeld as exc:
        raise ConfigError(str(exc)) from None
    try:
        return recover(config.output_dir, run_id, TABLES + FETCH_TABLES)
    except BaseException:
        abandon(config.output_dir, run_id, new_dir)
        raise


def _commit_plan(plan: RunPlan, base: str | None) -> CommitPlan:
    """What the commit stage writes into the manifest besides the counts, known before any work.

    Args:
        plan: The planned run.
        base: The snapshot current at start (`_initialize`); None for the first run.
    """
    config = plan.config
    info: dict[str, typing.Any] = {
        "runner": config.runner or "DirectRunner",
        "sources": list(config.sources),
        "inputs": list(config.inputs),
        "config": {"path": config.config_path, "sha256": file_sha256(config.config_path),
                   "brands": config.brands.brand_ids()},
        "model": {"spec": config.model.spec, "label_map": config.model.label_map},
    }
    if plan.sliced:
        info.update(chunk_days=plan.chunk_days, chunk_posts=plan.chunk_posts)
    if plan.fetch is not None:
        # The state's stable path (the current snapshot's, through the links on a local disk).
        info["fetch"] = {"connectors": {name: {"base_url": conf.base_url or None,
                                               "state": FileSystems.join(plan.output_dir, "_state", f"{name}.json")}
                                        for name, conf in plan.fetch.settings.items()},
                         "tasks": len(plan.fetch.tasks)}
    return CommitPlan(plan.output_dir, plan.run_id, base, plan.now.timestamp(), plan.window,
                      dead_letter_prefix(plan.window), info)


def _finish(result, output_dir: str, run_id: str):
    """After the job: waits where the launcher may (not in a Flex Template launcher) and prints the summary.

    Nothing depends on it: the job committed its outputs in its last stage.
    """
    if os.environ.get("FLEX_TEMPLATE_PYTHON_PY_FILE"):
        # A Flex Template launcher must return once the job is submitted; the job commits itself.
        print(f"Run {run_id} submitted; its last stage commits {output_dir}.")
        return result
    try:
        result.wait_until_finish()
    except Exception:
        # The job failed. (Not on Ctrl-C: a remote job may still be writing; the lease keeps others out.)
        abandon(output_dir, run_id)
        raise
    path = committed_path(output_dir, "manifest.json")
    with FileSystems.open(path) as fh:
        manifest = json.loads(fh.read().decode("utf-8"))
    if manifest.get("run_id") == run_id:
        print(format_summary(manifest))
    return result


def _num(value: int | None, width: int = 0) -> str:
    return f"{value:>{width},}" if value is not None else f"{'n/a':>{width}}"


def format_summary(manifest: dict) -> str:
    """The few lines `make run` prints at the end."""
    c = manifest["counts"]
    out = manifest["output_dir"]
    dead = ", ".join(f"{k} {v}" for k, v in sorted(c["dead_letters_by_step"].items())) or "none"
    balance = "yes" if c["balanced"] else "NO: see manifest.json"
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
