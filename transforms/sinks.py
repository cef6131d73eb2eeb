"""Hive-partitioned Parquet sinks with compaction and an all-or-nothing commit.

Rows are written into a staging directory under the output (`_staging/<run_id>/`,
which readers ignore because of the leading underscore):

1. `WriteFiles`: each bundle buffers rows per partition and writes one Parquet file
   per partition when the buffer fills or the bundle ends (memory stays bounded by
   `max_rows_per_file` per open partition, whatever the input size);
2. `Compact`: per partition, the small files the bundles left are merged into as few
   files as `max_rows_per_file` allows, rows sorted for good row-group pruning.

Only when the whole pipeline has succeeded does `commit_tables` swap each staged
table into place, so a rerun over the same output replaces it instead of adding to
it, and a run that dies half way leaves the previous outputs intact.

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

PartitionFn = typing.Callable[[typing.Any], typing.Tuple[typing.Tuple[str, str], ...]]
COMPRESSION = "snappy"  # the codec every Parquet reader (Spark, DuckDB, fastparquet) has


def partition_path(parts: typing.Tuple[typing.Tuple[str, str], ...]) -> str:
    """('created_date', '2026-09-07'), ... -> 'created_date=2026-09-07/...'."""
    return "/".join(f"{k}={v}" for k, v in parts)


def file_schema(schema: pa.Schema, partition_columns: typing.Sequence[str]) -> pa.Schema:
    """The schema inside the files: the table schema less its partition columns."""
    for name in partition_columns:
        if name in schema.names:
            schema = schema.remove(schema.get_field_index(name))
    return schema


def _write(path: str, table: pa.Table) -> None:
    with FileSystems.create(path) as fh:
        pq.write_table(table, fh, compression=COMPRESSION)


def _read(path: str) -> pa.Table:
    with FileSystems.open(path) as fh:
        return pq.read_table(pa.BufferReader(fh.read()))


class _WriteBundleFn(beam.DoFn):
    """Buffers rows per partition and writes them as Parquet files."""

    def __init__(self, table_dir: str, schema: pa.Schema, partition_fn: PartitionFn,
                 partition_columns: typing.Sequence[str], sort_by: typing.Sequence[str], max_rows: int):
        self._dir = table_dir
        self._schema = schema
        self._partition_fn = partition_fn
        self._partition_columns = tuple(partition_columns)
        self._sort_by = tuple(sort_by)
        self._max_rows = max_rows
        self._buffers: typing.Dict[tuple, list] = {}

    def start_bundle(self):
        self._buffers = {}

    def process(self, row):
        parts = self._partition_fn(row)
        buf = self._buffers.setdefault(parts, [])
        buf.append(row)
        if len(buf) >= self._max_rows:
            yield self._flush(parts)

    def finish_bundle(self):
        for parts in list(self._buffers):
            if self._buffers[parts]:
                yield GlobalWindows.windowed_value(self._flush(parts))

    def _flush(self, parts):
        rows = self._buffers.pop(parts)
        table = to_arrow_table(rows, self._schema).drop_columns(list(self._partition_columns))
        if self._sort_by:
            table = table.sort_by([(c, "ascending") for c in self._sort_by])
        rel = partition_path(parts)
        path = FileSystems.join(self._dir, rel, f"part-{uuid.uuid4().hex}.parquet")
        _write(path, table)
        return rel, (path, table.num_rows)


class _CompactFn(beam.DoFn):
    """Merges one partition's files into as few as `max_rows` allows."""

    def __init__(self, table_dir: str, sort_by: typing.Sequence[str], max_rows: int):
        self._dir = table_dir
        self._sort_by = tuple(sort_by)
        self._max_rows = max_rows

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
            if len(group) == 1:
                path, n = group[0]
                yield rel, path, n
                continue
            table = pa.concat_tables([_read(p) for p, _ in group])
            if self._sort_by:
                table = table.sort_by([(c, "ascending") for c in self._sort_by])
            path = FileSystems.join(self._dir, rel, f"part-{i:05d}-{uuid.uuid4().hex[:12]}.parquet")
            _write(path, table)
            FileSystems.delete([p for p, _ in group])
            yield rel, path, table.num_rows


class WriteParquetTable(beam.PTransform):
    """Rows -> a staged, Hive-partitioned Parquet table; outputs (partition, file, rows).

    Args:
        table_dir: The staged table's directory.
        schema: The table's pyarrow schema (partition columns included).
        partition_fn: Row -> ((column, value), ...) naming its partition directory.
        partition_columns: Schema columns that live only in the directory names.
        sort_by: Columns to sort each file by.
        max_rows_per_file: Upper bound of rows per file (and per write buffer).
    """

    def __init__(self, table_dir: str, schema: pa.Schema, partition_fn: PartitionFn,
                 partition_columns: typing.Sequence[str] = (), sort_by: typing.Sequence[str] = (),
                 max_rows_per_file: int = 250_000):
        super().__init__()
        self._dir = table_dir
        self._schema = schema
        self._partition_fn = partition_fn
        self._partition_columns = tuple(partition_columns)
        self._sort_by = tuple(c for c in sort_by if c not in self._partition_columns)
        self._max_rows = max_rows_per_file

    def expand(self, rows):
        return (
            rows
            | "WriteFiles" >> beam.ParDo(_WriteBundleFn(self._dir, self._schema, self._partition_fn,
                                                        self._partition_columns, self._sort_by, self._max_rows))
            | "GroupByPartition" >> beam.GroupByKey()
            | "Compact" >> beam.ParDo(_CompactFn(self._dir, self._sort_by, self._max_rows))
        )


def _is_local(path: str) -> bool:
    return "://" not in path


def _move_tree(src: str, dst: str) -> None:
    if _is_local(src):
        FileSystems.mkdirs(FileSystems.split(dst)[0]) if not FileSystems.exists(FileSystems.split(dst)[0]) else None
        FileSystems.rename([src], [dst])  # one atomic directory rename
        return
    # Object stores have no directories: move object by object.
    sources = [m.path for r in FileSystems.match([FileSystems.join(src, "**")]) for m in r.metadata_list]
    FileSystems.rename(sources, [dst + p[len(src):] for p in sources])


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


def commit_tables(staging_dir: str, output_dir: str, tables: typing.Iterable[str]) -> None:
    """Replaces each table under `output_dir` with its staged version.

    A table that the run produced no rows for is replaced by nothing (removed), since
    its previous content no longer describes the input.

    Args:
        staging_dir: The run's staging directory (`<output>/_staging/<run_id>`).
        output_dir: The output directory.
        tables: Table names (sub-directories).
    """
    trash = FileSystems.join(output_dir, "_trash", uuid.uuid4().hex)
    for table in tables:
        final = FileSystems.join(output_dir, table)
        staged = FileSystems.join(staging_dir, table)
        if FileSystems.exists(final):
            _move_tree(final, FileSystems.join(trash, table))
        if FileSystems.exists(staged):
            _move_tree(staged, final)
    delete_tree(trash)
    delete_tree(staging_dir)
