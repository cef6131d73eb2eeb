"""Hive-partitioned Parquet sinks with compaction.

Rows are written into the run's own snapshot directory under the output
(`_snapshots/<run_id>/`, which readers do not see until the run commits):

1. `WriteFiles`: each bundle buffers rows per partition and writes one Parquet file
   per partition when the buffer fills or the bundle ends; when the bundle's buffers
   together pass `max_buffered_rows`, all of them are written out (a DirectRunner
   bundle can be the whole input, so memory stays bounded whatever the input size).
   These files go to a scratch directory beside the table (`_tmp/<table>/`), never
   into the table;
2. `Compact`: per partition, the small files the bundles left are merged into as few
   files as `max_rows_per_file` allows, rows sorted for good row-group pruning, and
   written into the table under deterministic names (`part-00000.parquet`, ...). A
   bundle that a runner retries (a lost worker, a preempted VM) leaves its files in
   the scratch directory only, so no row is ever written twice into a table, and a
   retried compaction overwrites its own files instead of adding new ones;
3. `Cleanup`: the scratch directory goes once every partition is compacted.

A table that gets no row at all still gets one empty file carrying its schema in a
partition directory named `<column>=__empty__/` (an empty table, not a missing one),
so that `read_parquet('out/topic_metrics/*/*.parquet')` in DuckDB, `pd.read_parquet`,
pyarrow datasets and fastparquet all read zero rows instead of failing.

The job's last stage (`transforms.commit`) commits the snapshot once every table is
written: one atomic switch of a pointer, so that a rerun replaces instead of appending,
and a run that dies half way leaves the previous outputs intact.

Partition columns follow the Hive convention: they live in directory names
(`created_date=2026-09-07/`) and not inside the files; pyarrow, pandas, DuckDB,
Spark and fastparquet restore them as columns when reading the table directory.
All I/O goes through Beam's `FileSystems`, so gs:// and s3:// outputs work too.
"""

from __future__ import annotations

import typing
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from schemas.fields import to_arrow_table

PartitionFn = typing.Callable[[typing.Any], tuple[tuple[str, str], ...]]
COMPRESSION = "snappy"  # the codec every Parquet reader (Spark, DuckDB, fastparquet) has
EMPTY_PARTITION = "__empty__"  # the partition value of an empty table's schema-only file
EMPTY_FILE = "part-empty.parquet"
SCRATCH_DIR = "_tmp"


def partition_path(parts: tuple[tuple[str, str], ...]) -> str:
    """('created_date', '2026-09-07'), ... -> 'created_date=2026-09-07/...'."""
    return "/".join(f"{k}={v}" for k, v in parts)


def file_schema(schema: pa.Schema, partition_columns: typing.Sequence[str]) -> pa.Schema:
    """The schema inside the files: the table schema less its partition columns."""
    for name in partition_columns:
        if name in schema.names:
            schema = schema.remove(schema.get_field_index(name))
    return schema


def scratch_dir(table_dir: str) -> str:
    """Where `WriteParquetTable` leaves the bundles' files before compaction: `<parent>/_tmp/<table>`."""
    parent, name = FileSystems.split(table_dir.rstrip("/"))
    return FileSystems.join(parent, SCRATCH_DIR, name)


def _write(path: str, table: pa.Table) -> None:
    with FileSystems.create(path) as fh:
        pq.write_table(table, fh, compression=COMPRESSION)


def _read(path: str) -> pa.Table:
    with FileSystems.open(path) as fh:
        return pq.read_table(pa.BufferReader(fh.read()))


class _WriteBundleFn(beam.DoFn):
    """Buffers rows per partition and writes them as Parquet files into the scratch directory."""

    def __init__(self, scratch: str, schema: pa.Schema, partition_fn: PartitionFn,
                 partition_columns: typing.Sequence[str], sort_by: typing.Sequence[str], max_rows: int,
                 max_buffered: int):
        self._dir = scratch
        self._schema = schema
        self._partition_fn = partition_fn
        self._partition_columns = tuple(partition_columns)
        self._sort_by = tuple(sort_by)
        self._max_rows = max_rows
        self._max_buffered = max_buffered
        self._buffers: dict[tuple, list] = {}
        self._buffered = 0

    def start_bundle(self):
        self._buffers = {}
        self._buffered = 0

    def process(self, row):
        parts = self._partition_fn(row)
        buf = self._buffers.setdefault(parts, [])
        buf.append(row)
        self._buffered += 1
        if len(buf) >= self._max_rows:
            yield self._flush(parts)
        elif self._buffered >= self._max_buffered:
            for key in list(self._buffers):
                yield self._flush(key)

    def finish_bundle(self):
        for parts in list(self._buffers):
            if self._buffers[parts]:
                yield GlobalWindows.windowed_value(self._flush(parts))

    def _flush(self, parts):
        rows = self._buffers.pop(parts)
        self._buffered -= len(rows)
        table = to_arrow_table(rows, self._schema).drop_columns(list(self._partition_columns))
        if self._sort_by:
            table = table.sort_by([(c, "ascending") for c in self._sort_by])
        rel = partition_path(parts)
        path = FileSystems.join(self._dir, rel, f"bundle-{uuid.uuid4().hex}.parquet")
        _write(path, table)
        return rel, (path, table.num_rows)


class _CompactFn(beam.DoFn):
    """Merges one partition's scratch files into as few table files as `max_rows` allows."""

    def __init__(self, table_dir: str, sort_by: typing.Sequence[str], max_rows: int, file_prefix: str):
        self._dir = table_dir
        self._sort_by = tuple(sort_by)
        self._max_rows = max_rows
        self._prefix = file_prefix

    def process(self, keyed):
        rel, files = keyed
        files = sorted(files)
        groups, current, size = [], [], 0
        for path, n in files:
            if current and size + n > self._max_rows:
                groups.append(current)
                current, size = [], 0
            current.append((path, n))
            size += n
        groups.append(current)
        for i, group in enumerate(groups):
            # Deterministic names: a retried compaction overwrites, it never adds a copy.
            path = FileSystems.join(self._dir, rel, f"{self._prefix}-{i:05d}.parquet")
            if len(group) == 1:
                _move_file(group[0][0], path)
                yield rel, path, group[0][1]
                continue
            if FileSystems.exists(path) and not all(FileSystems.exists(p) for p, _ in group):
                # A re-run of a compaction that already wrote this file: a runner that recomputes lost
                # results (Dask does) may run it after the cleanup removed its scratch files.
                yield rel, path, _read(path).num_rows
                continue
            try:
                table = pa.concat_tables([_read(p) for p, _ in group])
            except FileNotFoundError:
                # The same race, one step later: a copy of this compaction that ran at the same time
                # finished, and the cleanup removed the scratch files while this one read them.
                if not FileSystems.exists(path):
                    raise
                yield rel, path, _read(path).num_rows
                continue
            if self._sort_by:
                table = table.sort_by([(c, "ascending") for c in self._sort_by])
            _write(path, table)
            yield rel, path, table.num_rows


def _move_file(src: str, dst: str) -> None:
    if not FileSystems.exists(src) and FileSystems.exists(dst):
        return  # a retry of a compaction that had already moved it
    if FileSystems.exists(dst):
        FileSystems.delete([dst])  # object stores and some filesystems do not overwrite on rename
    parent = FileSystems.split(dst)[0]
    if _is_local(dst) and not FileSystems.exists(parent):
        FileSystems.mkdirs(parent)
    FileSystems.rename([src], [dst])


class _FinishTableFn(beam.DoFn):
    """Runs once, after the table's files are all written (their list is the side input `files`).

    Writes the schema-only file of a table that got no row, and removes the table's scratch directory.
    One step on one element: a count of the files (`Count.Globally`) would add eight steps per table.
    """

    def __init__(self, table_dir: str, schema: pa.Schema, partition_names: typing.Sequence[str], scratch: str):
        self._dir = table_dir
        self._schema = schema
        self._names = tuple(partition_names)
        self._scratch = scratch

    def process(self, _impulse, files: typing.Sequence[tuple[str, str, int]]):
        delete_tree(self._scratch)
        if files:
            return
        rel = partition_path(tuple((name, EMPTY_PARTITION) for name in self._names))
        path = FileSystems.join(self._dir, rel, EMPTY_FILE) if rel else FileSystems.join(self._dir, EMPTY_FILE)
        _write(path, self._schema.empty_table())
        yield rel, path, 0


class WriteParquetTable(beam.PTransform):
    """Rows -> a staged, Hive-partitioned Parquet table; outputs (partition, file, rows).

    Args:
        table_dir: The staged table's directory.
        schema: The table's pyarrow schema (partition columns included).
        partition_fn: Row -> ((column, value), ...) naming its partition directory.
        partition_columns: Schema columns that live only in the directory names.
        sort_by: Columns to sort each file by.
        max_rows_per_file: Upper bound of rows per file (and per write buffer).
        max_buffered_rows: Upper bound of the rows a bundle holds over all its partitions.
        partition_names: The names `partition_fn` uses (default: `partition_columns`),
            for the directory of the empty file written when there is no row.
        file_prefix: File names are `<file_prefix>-00000.parquet`, ... in each partition.
    """

    def __init__(self, table_dir: str, schema: pa.Schema, partition_fn: PartitionFn,
                 partition_columns: typing.Sequence[str] = (), sort_by: typing.Sequence[str] = (),
                 max_rows_per_file: int = 250_000, partition_names: typing.Sequence[str] | None = None,
                 file_prefix: str = "part", max_buffered_rows: int = 50_000):
        super().__init__()
        self._dir = table_dir
        self._schema = schema
        self._partition_fn = partition_fn
        self._partition_columns = tuple(partition_columns)
        self._sort_by = tuple(c for c in sort_by if c not in self._partition_columns)
        self._max_rows = max_rows_per_file
        self._partition_names = tuple(partition_names if partition_names is not None else partition_columns)
        self._file_prefix = file_prefix
        self._max_buffered = max(1, min(max_buffered_rows, max_rows_per_file))

    def expand(self, rows):
        scratch = scratch_dir(self._dir)
        compacted = (
            rows
            | "WriteFiles" >> beam.ParDo(_WriteBundleFn(scratch, self._schema, self._partition_fn,
                                                        self._partition_columns, self._sort_by, self._max_rows,
                                                        self._max_buffered))
            | "GroupByPartition" >> beam.GroupByKey()
            | "Compact" >> beam.ParDo(_CompactFn(self._dir, self._sort_by, self._max_rows, self._file_prefix))
        )
        empty = (
            rows.pipeline
            | "Once" >> beam.Impulse()
            | "Finish" >> beam.ParDo(
                _FinishTableFn(self._dir, file_schema(self._schema, self._partition_columns), self._partition_names,
                               scratch),
                files=beam.pvalue.AsList(compacted))
        )
        return (compacted, empty) | "AllFiles" >> beam.Flatten()


def _is_local(path: str) -> bool:
    return "://" not in path


def _list_dir(path: str) -> list[str]:
    """Names of the direct children of a directory (or of a prefix on an object store)."""
    if not FileSystems.exists(path):
        return []
    if _is_local(path):
        import os

        return sorted(os.listdir(path))
    prefix = path.rstrip("/") + "/"
    names = {m.path[len(prefix):].split("/", 1)[0]
             for r in FileSystems.match([prefix + "**"]) for m in r.metadata_list}
    return sorted(n for n in names if n)


def delete_tree(path: str) -> None:
    """Deletes a directory tree (or every object under a prefix); no error if absent."""
    if not FileSystems.exists(path):
        return
    if _is_local(path):
        FileSystems.delete([path])
        return
    paths = [m.path for r in FileSystems.match([FileSystems.join(path, "**")]) for m in r.metadata_list]
    if paths:
        FileSystems.delete(paths)


def drop_empty_partitions(table_dir: str) -> None:
    """Removes a table's schema-only `__empty__` partition when the table has other partitions."""
    names = _list_dir(table_dir)
    empties = [n for n in names if _is_empty_partition(n)]
    if len(empties) < len(names):
        for name in empties:
            delete_tree(FileSystems.join(table_dir, name))


def _is_empty_partition(name: str) -> bool:
    return name.endswith("=" + EMPTY_PARTITION) or name == EMPTY_FILE
