"""The table registry (`schemas.tables`): each table declared once, and every list of tables derived from it.

The declarations are checked against themselves (record type, arrow schema, partitioning and
sort order agree), and against what reads them: the data dictionary (docs/data-dictionary.md), and the tables
a real run of the job writes, commits and lists in its manifest.
"""

from __future__ import annotations

import datetime
import pathlib
import typing

import pyarrow.parquet as pq
import pytest

import pipelines.run
from schemas import docs
from schemas.fields import TIMESTAMP
from schemas.tables import FETCH_TABLES, JOB_TABLES, TABLES, run_tables

UTC = datetime.timezone.utc


@pytest.mark.parametrize("name", list(TABLES))
def test_a_declaration_agrees_with_itself(name):
    spec = TABLES[name]
    assert spec.name == name
    assert list(spec.record._fields) == spec.schema.names == [f.name for f in spec.fields]
    assert set(spec.sort_by) <= set(spec.schema.names), spec.sort_by
    if spec.partition_day_of is None:
        # A record column, held in the directory names only.
        assert spec.partition in spec.schema.names and spec.partition_columns == (spec.partition,)
    else:
        # The day of a timestamp: a directory, not a column.
        assert spec.schema.field(spec.partition_day_of).type == TIMESTAMP
        assert spec.partition not in spec.schema.names and spec.partition_columns == ()
    assert spec.description.startswith(f"`{spec.partition}=")


@pytest.mark.parametrize("name", list(TABLES))
def test_the_partition_function_names_the_declared_directory(name):
    spec = TABLES[name]
    values: dict[str, typing.Any] = {n: None for n in spec.record._fields}
    values.update({n: "day" for n in ("period", "step", "brand_id") if n in values})
    if spec.partition_day_of:
        # 23:30 at UTC-2 is the next day in UTC.
        values[spec.partition_day_of] = datetime.datetime(2026, 9, 7, 23, 30, tzinfo=datetime.timezone(
            datetime.timedelta(hours=-2))).astimezone(UTC)
    ((column, value),) = spec.partition_fn(spec.record(**values))
    assert column == spec.partition
    assert value == ("2026-09-08" if spec.partition_day_of else "day")


def test_the_run_lists_are_the_registry_split_by_writer():
    assert JOB_TABLES + FETCH_TABLES == tuple(TABLES)
    assert FETCH_TABLES == ("posts", "brand_replies", "account_snapshots")
    assert run_tables(False) == JOB_TABLES and run_tables(True) == tuple(TABLES)
    assert pipelines.run.TABLES == JOB_TABLES and pipelines.run.FETCH_TABLES == FETCH_TABLES


def test_the_data_dictionary_documents_every_declared_table_in_order():
    rendered = docs.render()
    headings = [line[len("## `"):-len("/`")] for line in rendered.splitlines() if line.startswith("## `")]
    assert headings == list(TABLES)
    for spec in TABLES.values():
        assert f"Partitioned by {spec.description}." in rendered
    committed = (pathlib.Path(__file__).resolve().parents[1] / docs.PAGE).read_text(encoding="utf-8")
    assert committed == docs.page() and committed.endswith(rendered)


def test_a_run_writes_every_job_table_as_declared(mixed_run):
    _brands, _inputs, out, manifest = mixed_run
    assert sorted(manifest["tables"]) == sorted(JOB_TABLES)  # the commit stage writes the manifest's keys sorted
    assert sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("_")) == sorted(JOB_TABLES)
    for name in JOB_TABLES:
        spec = TABLES[name]
        files = sorted((out / name).glob("*/*.parquet"))
        assert files, name
        for path in files:
            assert path.parent.name.startswith(f"{spec.partition}="), path
            schema = pq.read_schema(path)
            assert schema.names == [n for n in spec.schema.names if n not in spec.partition_columns], name
            rows = pq.read_table(path, columns=[c for c in spec.sort_by if c not in spec.partition_columns])
            keys = list(zip(*(rows.column(i).to_pylist() for i in range(rows.num_columns))))
            # pyarrow sorts nulls last.
            assert keys == sorted(keys, key=lambda k: tuple((v is None, v) for v in k)), (name, path)
