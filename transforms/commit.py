"""The job's last stage: it commits what the job wrote, inside the pipeline, on any runner.

The pattern is Beam's own `apache_beam/io/iobase.py` `WriteImpl`:

1. **initialize** (on the launching machine, before any work): the run takes the output
   directory's lease (`transforms.lease`), `recover` removes what killed runs left, and
   the run gets its own snapshot directory `_snapshots/<run_id>/` (`transforms.snapshots`);
2. **write to a temporary location**: every table is written into that snapshot, which no
   reader looks at (the connectors' new state too, into its `_state/`);
3. **finalize**: `CommitRun` runs one `_CommitFn` on a single element, with the written
   files, the counts and the staged state as side inputs, so that it starts only once
   every write is done. It removes the writers' scratch, brings over what this run did
   not rewrite (tables it does not write; for a windowed run the partitions outside its
   window, `commit_partitions`' rule), writes the run log and the manifest into the
   snapshot, switches the pointer to it (the one atomic step), links the stable local
   paths, removes older snapshots, and releases the lease.

The counts in the manifest come from the pipeline itself (`counted`, `summed`,
`written_counts`): the rows of every file written, the dead letters by step, the
records read, duplicates, matches. Beam metrics are not readable inside a pipeline, and
some runners (Dask) report none, so nothing here reads them.

A crash at any instant leaves either the previous snapshot current (the new one is
debris that the next run's `recover` deletes) or the new one (`recover` finishes the
steps after the switch). A retried `_CommitFn` that finds its own snapshot current
only repeats those steps.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
import typing
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.incremental import RunWindow, updated_runs
from transforms.json_files import read_json_object, write_json
from transforms.lease import release
from transforms.snapshots import (MANIFEST, SNAPSHOTS_DIR, STATE_DIR, crash_point, current_snapshot, delete_path,
                                  is_local, link_entries, list_snapshots, snapshot_dir, switch_pointer)
from transforms.sinks import EMPTY_PARTITION, SCRATCH_DIR, drop_empty_partitions

COUNTS_DIR = "_counts"
# What writers leave in a snapshot besides its tables: the sinks' scratch, a sliced run's staged
# posts (pipelines.chunked), the per-pass counts.
SCRATCH = (SCRATCH_DIR, "_chunks", COUNTS_DIR)
RUN_LOG = "runs.json"
# The tables of scored posts, by day: a windowed run replaces its window's days and keeps the others.
_BY_DAY = ("brand_mentions", "rejected_matches")
_UTC = datetime.timezone.utc


@dataclass(frozen=True)
class CommitPlan:
    """What the commit stage needs, decided on the launching machine under the lease.

    Attributes:
        output_dir: The job's output directory.
        run_id: This run's id (its snapshot's name).
        base_snapshot: The snapshot current at start (None: the first run); what this run
            read back and what it carries forward.
        started_at: Start time, seconds since the epoch.
        window: A windowed run's window (None: a full run, every table it writes replaced).
        dead_letter_prefix: A windowed run's dead-letter file prefix ('part-w2026...').
        info: Manifest fields known at start (runner, sources, inputs, config, model, ...).
    """

    output_dir: str
    run_id: str
    base_snapshot: str | None
    started_at: float
    window: RunWindow | None = None
    dead_letter_prefix: str = "part"
    info: dict[str, typing.Any] = field(default_factory=dict)

    @property
    def snapshot(self) -> str:
        """Where this run writes: `<output_dir>/_snapshots/<run_id>`."""
        return snapshot_dir(self.output_dir, self.run_id)


# ---- counting inside the pipeline -------------------------------------------------------------

def counted(pcoll: beam.PCollection, name: str, label: str) -> beam.PCollection:
    """pcoll -> (name, 1) per element; the commit stage sums them per name (CombinePerKey).

    Not `Count.Globally`: its default for an empty input goes through a side input, and two of
    them over one PCollection lost one count on the Dask runner.
    """
    return pcoll | f"Count{label}" >> beam.Map(lambda _element, key=name: (key, 1))


def summed(numbers: beam.PCollection, name: str, label: str) -> beam.PCollection:
    """A PCollection of ints -> (name, int) pairs, summed per name by the commit stage."""
    return numbers | f"Sum{label}" >> beam.Map(lambda n, key=name: (key, int(n)))


def _totals(pairs: beam.PCollection) -> beam.PCollection:
    """(name, value) pairs -> one (name, total) per name."""
    return pairs | "SumPerName" >> beam.CombinePerKey(sum)


def written_counts(written: tuple[str, str, str, int]) -> typing.Iterator[tuple[str, int]]:
    """(table, partition, path, rows) -> the manifest's counts of one written file."""
    table, partition, _path, rows = written
    yield f"write.{table}_rows", rows
    yield f"write.{table}_files", 1
    step = partition.partition("=")[2]
    if table == "dead_letters" and rows and step != EMPTY_PARTITION:
        yield f"dead_letters.{step}", rows


def _write_counts_file(_unused: typing.Any, pairs: list[tuple[str, int]], path: str) -> str:
    totals: dict[str, int] = {}
    for name, value in pairs:
        totals[name] = totals.get(name, 0) + int(value)
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(totals, sort_keys=True).encode("utf-8"))
    return path


class WriteCounts(beam.PTransform):
    """(name, value) pairs -> `<snapshot>/_counts/<label>.json`, for a pass of a sliced run whose commit comes later."""

    def __init__(self, snapshot: str, label: str):
        super().__init__()
        self._path = FileSystems.join(snapshot, COUNTS_DIR, f"{label}.json")

    def expand(self, pairs):
        return (pairs.pipeline
                | "One" >> beam.Create([None])
                | "Write" >> beam.Map(_write_counts_file, beam.pvalue.AsList(_totals(pairs)), self._path))


# ---- the finalize step ------------------------------------------------------------------------

class CommitRun(beam.PTransform):
    """The job's last stage: waits for every write (side inputs), then commits the run's snapshot.

    Input: {'written': (table, partition, path, rows) per file, 'counts': (name, value) pairs,
    optionally 'state_files': the staged connector state paths}. Output: the manifest (one dict).

    Args:
        plan: The run's CommitPlan.
    """

    def __init__(self, plan: CommitPlan):
        super().__init__()
        self._plan = plan

    def expand(self, inputs):
        pipeline = inputs["written"].pipeline
        pairs = (inputs["written"] | "WrittenCounts" >> beam.FlatMap(written_counts), inputs["counts"])
        counts = _totals(pairs | "AllCounts" >> beam.Flatten())
        waits_on = inputs.get("state_files") or (pipeline | "NoState" >> beam.Create([]))
        return (pipeline
                | "Finalize" >> beam.Create([None])
                | "Commit" >> beam.ParDo(_CommitFn(self._plan), beam.pvalue.AsList(counts),
                                         beam.pvalue.AsList(waits_on)))


class _CommitFn(beam.DoFn):
    def __init__(self, plan: CommitPlan):
        self._plan = plan

    def process(self, _unused, counts: list[tuple[str, int]], _state_files: list[str]):
        yield commit(self._plan, counts)


def commit(plan: CommitPlan, pairs: typing.Iterable[tuple[str, int]]) -> dict:
    """Commits the run's snapshot (see the module docstring); returns its manifest.

    Args:
        plan: The run's CommitPlan.
        pairs: (name, value) counts of this pipeline; a sliced run's earlier passes are in `_counts/`.
    """
    out, snap = plan.output_dir.rstrip("/"), plan.snapshot
    if _same(current_snapshot(out), snap):  # a retry of a commit that got past its switch
        with FileSystems.open(FileSystems.join(snap, MANIFEST)) as fh:
            manifest = json.loads(fh.read().decode("utf-8"))
        _after_switch(plan)
        return manifest
    counts = _sum_counts(pairs, snap)
    for name in SCRATCH:
        if _exists(FileSystems.join(snap, name)):
            crash_point(f"delete {name}")
            delete_path(FileSystems.join(snap, name))
    for table in _BY_DAY + ("dead_letters",):
        table_dir = FileSystems.join(snap, table)
        if _exists(table_dir):
            drop_empty_partitions(table_dir)
    if plan.window is not None:
        _write_json(FileSystems.join(snap, STATE_DIR, RUN_LOG),
                    updated_runs(_read_json(plan.base_snapshot, STATE_DIR, RUN_LOG), plan.window, plan.run_id,
                                 datetime.datetime.now(_UTC)))
    if plan.base_snapshot is not None:
        _carry_forward(plan)
    manifest = build_manifest(counts, **plan.info)
    manifest.update(_table_facts(snap))
    manifest.update(run_id=plan.run_id, output_dir=out, snapshot=f"{SNAPSHOTS_DIR}/{plan.run_id}",
                    previous_snapshot=(f"{SNAPSHOTS_DIR}/{_name(plan.base_snapshot)}" if plan.base_snapshot else None),
                    started_at=datetime.datetime.fromtimestamp(plan.started_at, _UTC).isoformat(),
                    seconds=round(time.time() - plan.started_at, 1))
    manifest["model"] = {**manifest.get("model", {}), "model_ids": _model_ids(snap)}
    if plan.window is not None:
        manifest["window"] = plan.window.describe()
    _write_json(FileSystems.join(snap, MANIFEST), manifest)
    switch_pointer(out, plan.run_id, manifest)
    _after_switch(plan)
    return manifest


def _after_switch(plan: CommitPlan) -> None:
    """What follows the switch: the stable local links, older snapshots removed, the lease released."""
    out = plan.output_dir.rstrip("/")
    link_entries(out)
    keep = {plan.run_id, _name(plan.base_snapshot) if plan.base_snapshot else None}
    for name in list_snapshots(out):
        if name not in keep:
            crash_point(f"delete snapshot {name}")
            delete_path(snapshot_dir(out, name))
    release(out, plan.run_id)


def _same(path: str | None, other: str) -> bool:
    if path is None:
        return False
    return os.path.normpath(path) == os.path.normpath(other) if is_local(other) else path == other


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _exists(path: str) -> bool:
    return os.path.lexists(path) if is_local(path) else FileSystems.exists(path) or bool(_files_under(path))


def _sum_counts(pairs: typing.Iterable[tuple[str, int]], snap: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, value in pairs:
        counts[name] = counts.get(name, 0) + int(value)
    for path in sorted(_files_under(FileSystems.join(snap, COUNTS_DIR))):
        with FileSystems.open(path) as fh:
            for name, value in json.loads(fh.read().decode("utf-8")).items():
                counts[name] = counts.get(name, 0) + int(value)
    return counts


def _files_under(path: str) -> list[str]:
    """Every file under a directory (or prefix), recursively."""
    if is_local(path):
        return sorted(os.path.join(root, f) for root, _dirs, files in os.walk(path) for f in files)
    return sorted(m.path for r in FileSystems.match([FileSystems.join(path, "**")]) for m in r.metadata_list)


def _children(path: str) -> list[str]:
    if is_local(path):
        return sorted(os.listdir(path)) if os.path.isdir(path) else []
    prefix = path.rstrip("/") + "/"
    return sorted({p[len(prefix):].split("/", 1)[0] for p in _files_under(path)} - {""})


def _carry(src: str, dst: str) -> None:
    """Brings a file or tree of the previous snapshot into this one: hard links on a local disk, copies elsewhere."""
    crash_point(f"carry {src}")
    for path in _files_under(src) if not (is_local(src) and os.path.isfile(src)) else [src]:
        target = dst + path[len(src):]
        if is_local(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                os.link(path, target)  # snapshots are never written after their commit: sharing is safe
            except OSError:
                import shutil

                shutil.copy2(path, target)
        else:
            FileSystems.copy([path], [target])


def _carry_forward(plan: CommitPlan) -> None:
    """Brings over from the base snapshot what this run did not write.

    A table the run did not write at all is carried whole. A windowed run replaces the
    `created_date=` partitions of its window in brand_mentions (and keeps the others),
    and its own dead-letter files (keeping other windows' files, less the rows it rejected
    again); every other table it writes whole. Connector state and the run log that this
    run did not write are carried too.
    """
    base, snap, window = plan.base_snapshot, plan.snapshot, plan.window
    for name in _children(base):
        if name in (MANIFEST,) or name.startswith(".") or name in SCRATCH:
            continue
        src, dst = FileSystems.join(base, name), FileSystems.join(snap, name)
        if name == STATE_DIR:
            for entry in _children(src):
                if not _exists(FileSystems.join(dst, entry)):
                    _carry(FileSystems.join(src, entry), FileSystems.join(dst, entry))
            continue
        if not _exists(dst):
            _carry(src, dst)
            continue
        if window is None:
            continue
        if name in _BY_DAY:
            days = {f"created_date={d}" for d in window.days()}
            for part in _children(src):
                if part not in days and not _is_empty(part) and not _exists(FileSystems.join(dst, part)):
                    _carry(FileSystems.join(src, part), FileSystems.join(dst, part))
            drop_empty_partitions(dst)
        elif name == "dead_letters":
            _carry_dead_letters(src, dst, plan.dead_letter_prefix + "-")
            drop_empty_partitions(dst)


def _is_empty(part: str) -> bool:
    return part.endswith("=" + EMPTY_PARTITION)


def _read_table(path: str) -> pa.Table:
    with FileSystems.open(path) as fh:
        return pq.read_table(pa.BufferReader(fh.read()))


def _carry_dead_letters(src: str, dst: str, prefix: str) -> None:
    """Other windows' dead-letter files, less the rows this run rejected again (a line several windows read)."""
    columns = ("source", "reason", "record")
    for part in _children(src):
        if _is_empty(part):
            continue
        staged = FileSystems.join(dst, part)
        again = set()
        for path in _files_under(staged) if _exists(staged) else []:
            table = _read_table(path)
            again.update(zip(*(table.column(c).to_pylist() for c in columns)) if table.num_rows else [])
        for name in _children(FileSystems.join(src, part)):
            if name.startswith(prefix):
                continue  # this window's own files: replaced by the run's
            path, target = FileSystems.join(src, part, name), FileSystems.join(dst, part, name)
            table = _read_table(path) if again else None
            keep = ([key not in again for key in zip(*(table.column(c).to_pylist() for c in columns))]
                    if table is not None and table.num_rows else None)
            if keep is None or all(keep):
                _carry(path, target)
            elif any(keep):
                crash_point(f"rewrite {target}")
                if is_local(target):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                with FileSystems.create(target) as fh:
                    pq.write_table(table.filter(pa.array(keep)), fh, compression="snappy")


def _write_json(path: str, value: typing.Any) -> None:
    crash_point(f"write {path}")
    if is_local(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, value)


def _read_json(base: str | None, *parts: str) -> dict:
    """The JSON object at `base/parts`, or {} without a base snapshot or such a file."""
    if base is None:
        return {}
    return read_json_object(FileSystems.join(base, *parts), parts[-1], "written by an earlier run of this job, "
                            "changed or damaged since")


def _table_facts(snap: str) -> dict:
    """The committed tables: where each is (in this snapshot) and its rows, from the Parquet footers."""
    tables, rows = {}, {}
    for name in _children(snap):
        if name.startswith(("_", ".")) or name == MANIFEST:
            continue
        tables[name] = FileSystems.join(snap, name)
        total = 0
        for path in _files_under(tables[name]):
            if path.endswith(".parquet"):
                with FileSystems.open(path) as fh:
                    total += pq.ParquetFile(fh).metadata.num_rows
        rows[name] = total
    return {"tables": tables, "table_rows": rows}


def _model_ids(snap: str) -> list[str]:
    """The model ids in the committed brand_mentions table."""
    ids: set[str] = set()
    for path in _files_under(FileSystems.join(snap, "brand_mentions")):
        if path.endswith(".parquet"):
            with FileSystems.open(path) as fh:
                column = pq.read_table(pa.BufferReader(fh.read()), columns=["model_id"]).column("model_id")
            ids.update(v for v in column.to_pylist() if v is not None)
    return sorted(ids)


def build_manifest(counts: dict[str, int], **info) -> dict:
    """Assembles the run manifest: per-step counts, the balance check and run info.

    Args:
        counts: 'namespace.name' -> value, counted inside the pipeline.
        **info: Run information copied into the manifest.
    """
    dead = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("dead_letters.")}
    steps = {
        "records_read": counts.get("read.records", 0),
        "mentions_valid": counts.get("read.mentions", 0),
        "duplicates_dropped": counts.get("dedupe.duplicates", 0),
        "mentions_outside_window": counts.get("window.outside_mentions", 0),
        "mentions_matched": counts.get("match.matched_mentions", 0),
        "mentions_unmatched": counts.get("match.unmatched_mentions", 0),
        "brand_mention_rows": counts.get("write.brand_mentions_rows", 0),
        "rejected_match_rows": counts.get("write.rejected_matches_rows", 0),
        "metric_rows": counts.get("write.metrics_rows", 0),
        "dead_letter_rows": counts.get("write.dead_letters_rows", 0),
        "response_queue_rows": counts.get("write.response_queue_rows", 0),
        "dead_letters_by_step": dead,
    }
    scored = steps["mentions_matched"] - dead.get("sentiment", 0)
    # records in = matched and scored + unmatched + duplicates + outside the window + dead letters
    steps["balanced"] = steps["records_read"] == (
        scored + steps["mentions_unmatched"] + steps["duplicates_dropped"] + steps["mentions_outside_window"]
        + sum(dead.values()))
    fetch = info.pop("fetch", None)
    manifest = {**info, "counted_from": "pipeline", "counts": steps}
    if fetch is not None:
        manifest["fetch"] = {
            "connectors": {name: {**conn, "posts_fetched": counts.get(f"fetch.{name}_posts", 0)}
                           for name, conn in sorted(fetch["connectors"].items())},
            "tasks": fetch["tasks"],
            "tasks_stopped": counts.get("fetch.stopped_tasks", 0),
            "pages": counts.get("fetch.pages", 0),
            "brand_replies": counts.get("fetch.brand_replies", 0),
            "account_snapshots": counts.get("fetch.account_snapshots", 0),
        }
    return manifest


# ---- initialize: what the next start repairs ---------------------------------------------------

def recover(output_dir: str, run_id: str, legacy_names: typing.Iterable[str] = ()) -> str | None:
    """Repairs what killed runs left, at the start of a run (under its lease); returns the current snapshot.

    Rolls an interrupted commit forward or back: a snapshot that the pointer names is
    committed (its links and the removal of older snapshots are finished); any other
    snapshot older than this run, except the one before the current (kept for readers
    still on it), is an uncommitted run's and goes, as do the old layout's `_staging/`
    and `_trash/` folders and half-made links. On a local disk, an output of the old
    layout (tables directly under `output_dir`) is first moved into a snapshot of its own.

    Args:
        output_dir: The output directory.
        run_id: This run's id (debris is what is older).
        legacy_names: Table names an output of the old layout may hold directly.
    """
    out = output_dir.rstrip("/")
    if is_local(out) and not os.path.isdir(out):
        return None
    if is_local(out):
        _migrate_legacy(out, legacy_names)
        for name in os.listdir(out):
            if name.startswith(".") and os.path.islink(os.path.join(out, name)):
                crash_point(f"delete half-made link {name}")
                os.unlink(os.path.join(out, name))
    current = current_snapshot(out)
    if current is not None:
        link_entries(out)
    keep = {run_id}
    if current is not None:
        keep.add(_name(current))
        previous = _read_json(current, MANIFEST).get("previous_snapshot")
        if previous:
            keep.add(_name(previous))
    for name in list_snapshots(out):
        if name not in keep and name < run_id:
            crash_point(f"delete snapshot {name}")
            delete_path(snapshot_dir(out, name))
    for name in ("_staging", "_trash"):
        path = FileSystems.join(out, name)
        if _exists(path):
            crash_point(f"delete {name}")
            delete_path(path)
    return current


def _migrate_legacy(out: str, legacy_names: typing.Iterable[str]) -> None:
    """Moves an output of the old layout (real table directories, manifest.json, _state/) into a snapshot.

    A copy of an output that followed the links (`shutil.copytree`, gsutil) has a directory for a
    pointer and copies of it under the stable names: the directory becomes the snapshot, the copies go.
    """
    pointer = os.path.join(out, "_current")
    stable = [n for n in list(legacy_names) + [STATE_DIR, MANIFEST]
              if os.path.lexists(os.path.join(out, n)) and not os.path.islink(os.path.join(out, n))]
    if os.path.islink(pointer) or not (stable or os.path.lexists(pointer)):
        return
    # Named so that they sort before any run id (those start with the year).
    if os.path.lexists(pointer):
        name = "0-copied"
        for entry in stable:
            crash_point(f"delete the copy {entry}")
            delete_path(os.path.join(out, entry))
        if os.path.lexists(snapshot_dir(out, name)):
            delete_path(snapshot_dir(out, name))  # an earlier repair that died half way
        os.makedirs(os.path.join(out, SNAPSHOTS_DIR), exist_ok=True)
        crash_point("move the copied pointer")
        os.rename(pointer, snapshot_dir(out, name))
    else:
        name = "0-legacy"
        os.makedirs(snapshot_dir(out, name), exist_ok=True)
        for entry in stable:
            crash_point(f"migrate {entry}")
            os.rename(os.path.join(out, entry), os.path.join(snapshot_dir(out, name), entry))
    switch_pointer(out, name, {})
    link_entries(out)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file (the config's, for the manifest)."""
    with FileSystems.open(path) as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def abandon(output_dir: str, run_id: str, remove_empty_dir: bool = False) -> None:
    """After a run that failed (or had nothing to do) in a launcher that waited: its snapshot and lease go.

    Args:
        output_dir: The output directory.
        run_id: The run.
        remove_empty_dir: The run created the (local) directory: it goes too if nothing else is in it.
    """
    snap = snapshot_dir(output_dir, run_id)
    if not _same(current_snapshot(output_dir), snap):  # else committed after all: it is the current one now
        delete_path(snap)
        root = FileSystems.join(output_dir.rstrip("/"), SNAPSHOTS_DIR)
        if is_local(root) and os.path.isdir(root) and not os.listdir(root):
            os.rmdir(root)
    release(output_dir, run_id)
    if remove_empty_dir and is_local(output_dir) and os.path.isdir(output_dir) and not os.listdir(output_dir):
        os.rmdir(output_dir)
