"""The Parquet sink: compaction, file size bounds, and the all-or-nothing commit."""

from __future__ import annotations

import datetime
import json

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.run import run
from schemas import DEAD_LETTER_SCHEMA, DeadLetter
from tests.fakes import FakeSentimentHandler
from transforms.sinks import WriteParquetTable, commit_tables

T0 = datetime.datetime(2026, 9, 7, tzinfo=datetime.timezone.utc)


def _rows(n):
    return [DeadLetter(step=("parse" if i % 3 else "validate"), reason=f"r{i}", record="{}", source=f"f:{i:05d}",
                       time=T0) for i in range(n)]


def _by_step(row):
    return (("step", row.step),)


@pytest.mark.parametrize("max_rows, files_per_partition", [(10_000, 1), (100, None)])
def test_many_bundles_are_compacted(tmp_path, max_rows, files_per_partition):
    rows = _rows(1000)
    with TestPipeline() as p:
        _ = (p | beam.Create(rows, reshuffle=True)
             # Force many small bundles, as a parallel runner would leave.
             | beam.Reshuffle(num_buckets=16)
             | WriteParquetTable(str(tmp_path / "t"), DEAD_LETTER_SCHEMA, _by_step, partition_columns=("step",),
                                 sort_by=("source",), max_rows_per_file=max_rows))
    table = ds.dataset(tmp_path / "t", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 1000
    assert sorted(table.column("reason").to_pylist()) == sorted(r.reason for r in rows)
    for part in (tmp_path / "t").iterdir():
        files = list(part.glob("*.parquet"))
        n = sum(ds.dataset(f).count_rows() for f in files)
        if files_per_partition:
            assert len(files) == files_per_partition
            sources = ds.dataset(files[0]).to_table().column("source").to_pylist()
            assert sources == sorted(sources)
        else:
            assert all(ds.dataset(f).count_rows() <= max_rows for f in files)
            assert len(files) >= n // max_rows


def test_commit_replaces_tables_and_cleans_staging(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_staging" / "run1"
    (out / "metrics" / "period=day").mkdir(parents=True)
    (out / "metrics" / "period=day" / "old.parquet").write_text("old")
    (out / "dead_letters").mkdir()
    (staging / "metrics" / "period=week").mkdir(parents=True)
    (staging / "metrics" / "period=week" / "new.parquet").write_text("new")
    commit_tables(str(staging), str(out), ["metrics", "dead_letters"])
    assert [p.name for p in (out / "metrics").rglob("*.parquet")] == ["new.parquet"]
    assert not (out / "dead_letters").exists()  # no rows this run: the stale table goes
    assert not staging.exists() and not any((out / "_trash").iterdir())


class _BrokenModel(FakeSentimentHandler):
    def load_model(self):
        raise RuntimeError("model store unreachable")


def test_failed_run_leaves_previous_outputs_intact(brands_file, mixed_jsonl, tmp_path):
    out = tmp_path / "out"
    argv = ["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(out)]
    run(argv, model_handler=FakeSentimentHandler())
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    manifest = (out / "manifest.json").read_text()
    with pytest.raises(Exception, match="model store unreachable"):
        run(argv, model_handler=_BrokenModel())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == before  # no staging debris
    assert (out / "manifest.json").read_text() == manifest
    assert json.loads(manifest)["counts"]["balanced"] is True
