"""Writes a job's tables as declared in `schemas.tables`: schema, partitions, sort order (shared by every pass)."""

from __future__ import annotations

import typing

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas.tables import TABLES
from transforms.sinks import WriteParquetTable


def write_table(name: str, rows: beam.PCollection, stage_dir: str, file_prefix: str = "part",
                label: str = "") -> beam.PCollection:
    """Writes `rows` as the staged table `name` under `stage_dir`; outputs (table, partition, file, rows)."""
    spec = TABLES[name]
    label = label or spec.label
    return (rows
            | f"Write{label}" >> WriteParquetTable(
                FileSystems.join(stage_dir, name), spec.schema, spec.partition_fn,
                partition_columns=spec.partition_columns, sort_by=spec.sort_by, partition_names=(spec.partition,),
                file_prefix=file_prefix)
            | f"Tag{label}Files" >> beam.Map(lambda w, table=name: (table,) + tuple(w)))


def write_tables(tables: typing.Mapping[str, beam.PCollection], stage_dir: str,
                 file_prefixes: typing.Mapping[str, str] | None = None, label: str = "") -> beam.PCollection:
    """Writes every table of `tables` (in the declaration's order) and counts the rows and files written.

    Args:
        tables: Table name -> its rows; names not declared in `schemas.tables` are not tables and are skipped.
        stage_dir: Where the staged tables go.
        file_prefixes: Table name -> file name prefix (default 'part').
        label: Prefix of the steps' labels (for a second call in one pipeline).

    Returns:
        One (table, partition, file, rows) per file written.
    """
    prefixes = file_prefixes or {}
    written = [write_table(name, tables[name], stage_dir, prefixes.get(name, "part"), label + TABLES[name].label)
               for name in TABLES if name in tables]
    written = tuple(written) | f"{label}AllFiles" >> beam.Flatten()
    _ = written | f"{label}CountRows" >> beam.Map(count_written)
    return written


def count_written(written: tuple[str, str, str, int]) -> None:
    """Counts one written file under `write.<table>_rows` and `write.<table>_files`."""
    table, _partition, _path, rows = written
    beam.metrics.Metrics.counter("write", f"{table}_rows").inc(rows)
    beam.metrics.Metrics.counter("write", f"{table}_files").inc()
