"""The Parquet sink: compaction, file size bounds, and the all-or-nothing commit."""

from __future__ import annotations

import datetime
import json
import shutil

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.run import run
from schemas import DEAD_LETTER_SCHEMA, DeadLetter
from tests.support.fake_model import FakeSentimentHandler
from transforms.sinks import WriteParquetTable, _CompactFn, _WriteBundleFn, delete_tree

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


def test_a_compaction_rerun_after_the_cleanup_yields_the_file_it_wrote(tmp_path):
    # Dask recomputes lost results: a second compaction of a partition can come after the cleanup
    # has removed the scratch files (its own copies included). It must not fail or lose rows.
    scratch, table_dir = tmp_path / "_tmp" / "t", tmp_path / "t"
    writer = _WriteBundleFn(str(scratch), DEAD_LETTER_SCHEMA, _by_step, ("step",), ("source",), 10_000, 10_000)

    def bundle(rows):
        writer.start_bundle()
        for row in rows:
            list(writer.process(row))
        return [wv.value for wv in writer.finish_bundle()]

    rows = [r for r in _rows(30) if r.step == "parse"]
    first = bundle(rows[:10]) + bundle(rows[10:])
    rerun = bundle(rows[:10]) + bundle(rows[10:])  # the recomputed bundles: other scratch files
    compact = _CompactFn(str(table_dir), ("source",), 10_000, "part")
    done = list(compact.process(("step=parse", [f for _rel, f in first])))
    assert [(rel, n) for rel, _path, n in done] == [("step=parse", len(rows))]
    delete_tree(str(scratch))
    again = list(compact.process(("step=parse", [f for _rel, f in rerun])))
    assert again == done
    assert ds.dataset(table_dir, format="parquet", partitioning="hive").count_rows() == len(rows)


def test_a_compaction_that_loses_its_scratch_files_while_reading_yields_the_file_a_copy_wrote(tmp_path, monkeypatch):
    # Two copies of one compaction at once (Dask may run a task twice): the first finishes, the
    # cleanup removes the scratch files, and the second, past its existence check, fails to read them.
    import transforms.sinks as sinks

    scratch, table_dir = tmp_path / "_tmp" / "t", tmp_path / "t"
    writer = _WriteBundleFn(str(scratch), DEAD_LETTER_SCHEMA, _by_step, ("step",), ("source",), 10_000, 10_000)
    rows = [r for r in _rows(30) if r.step == "parse"]
    files = []
    for part in (rows[:10], rows[10:]):
        writer.start_bundle()
        for row in part:
            list(writer.process(row))
        files += [wv.value[1] for wv in writer.finish_bundle()]
    compact = _CompactFn(str(table_dir), ("source",), 10_000, "part")
    done = list(compact.process(("step=parse", list(files))))
    read = sinks._read

    def read_after_cleanup(path):
        delete_tree(str(scratch))  # the cleanup comes between the check and the read
        return read(path)

    monkeypatch.setattr(sinks, "_read", read_after_cleanup)
    assert list(compact.process(("step=parse", list(files)))) == done
    monkeypatch.setattr(sinks, "_read", read)
    assert ds.dataset(table_dir, format="parquet", partitioning="hive").count_rows() == len(rows)


class _BrokenModel(FakeSentimentHandler):
    def load_model(self):
        raise RuntimeError("model store unreachable")


def test_failed_run_leaves_previous_outputs_intact(mixed_run, tmp_path):
    brands_file, mixed_jsonl, previous, _manifest = mixed_run
    out = tmp_path / "out"
    shutil.copytree(previous, out, symlinks=True)  # a previous run's committed outputs
    argv = ["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(out)]
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    manifest = (out / "manifest.json").read_text()
    with pytest.raises(Exception, match="model store unreachable"):
        run(argv, model_handler=_BrokenModel())
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == before  # no staging debris
    assert (out / "manifest.json").read_text() == manifest
    assert json.loads(manifest)["counts"]["balanced"] is True


def test_a_table_without_rows_is_an_empty_table_every_reader_reads(tmp_path):
    """No row: one schema-only file in `<column>=__empty__/`, not a missing directory."""
    import duckdb
    import fastparquet
    import pandas as pd

    from apache_beam.testing.util import assert_that, equal_to

    from schemas.records import TOPIC_METRIC_SCHEMA, TopicMetric
    from transforms.sinks import EMPTY_PARTITION

    table = tmp_path / "topic_metrics"
    with TestPipeline() as p:
        written = (p | beam.Create([]).with_output_types(TopicMetric)
                   | WriteParquetTable(str(table), TOPIC_METRIC_SCHEMA, lambda r: (("period", r.period),),
                                       partition_columns=("period",)))
        assert_that(written, equal_to(
            [(f"period={EMPTY_PARTITION}", str(table / f"period={EMPTY_PARTITION}" / "part-empty.parquet"), 0)]))
    assert [p.name for p in table.iterdir()] == [f"period={EMPTY_PARTITION}"]
    assert not (tmp_path / "_tmp").exists() or not any((tmp_path / "_tmp").iterdir())  # scratch cleaned up

    got = duckdb.connect().execute(
        f"SELECT count(*), count(DISTINCT brand_id) FROM read_parquet('{table}/*/*.parquet', hive_partitioning=true) "
        "WHERE period = 'week'").fetchall()
    assert got == [(0, 0)]
    frame = pd.read_parquet(table)
    assert len(frame) == 0 and "topic_share" in frame.columns and "period" in frame.columns
    arrow = ds.dataset(table, format="parquet", partitioning="hive").to_table()
    assert arrow.num_rows == 0 and arrow.schema.field("mentions").type == TOPIC_METRIC_SCHEMA.field("mentions").type
    assert len(fastparquet.ParquetFile(str(table)).to_pandas()) == 0


def test_empty_tables_of_a_run_read_back_and_give_way_to_rows(brands_file, tmp_path):
    """A run whose posts name no brand: every table exists and reads as empty; a later windowed run fills it."""
    import duckdb

    from transforms.sinks import EMPTY_PARTITION

    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"id": "n1", "text": "nothing about drinks", "created_at": "2026-09-07T10:00:00Z"})
                     + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run(["--config", str(brands_file), "--input", str(posts), "--output_dir", str(out)],
        model_handler=FakeSentimentHandler())
    con = duckdb.connect()
    for table in ("brand_mentions", "topic_metrics", "alerts", "dead_letters"):
        (part,) = [p.name for p in (out / table).iterdir()]
        assert part.endswith("=" + EMPTY_PARTITION), table
        assert con.execute(f"SELECT count(*) FROM read_parquet('{out}/{table}/*/*.parquet')").fetchone() == (0,)
    # The first rows of the table replace its empty file.
    posts.write_text(json.dumps({"id": "s1", "text": "I love Sprite", "created_at": "2026-09-08T10:00:00Z"})
                     + "\n", encoding="utf-8")
    run(["--config", str(brands_file), "--input", str(posts), "--output_dir", str(out), "--window_start",
         "2026-09-08", "--window_end", "2026-09-09"], model_handler=FakeSentimentHandler())
    assert [p.name for p in (out / "brand_mentions").iterdir()] == ["created_date=2026-09-08"]
    assert con.execute(f"SELECT count(*) FROM read_parquet('{out}/brand_mentions/*/*.parquet')").fetchone() == (1,)


def test_a_bundle_never_buffers_more_than_max_buffered_rows(tmp_path):
    """One big bundle over many partitions (the DirectRunner's case) is written out in slices, then compacted."""
    from transforms.sinks import _WriteBundleFn

    fn = _WriteBundleFn(str(tmp_path / "scratch"), DEAD_LETTER_SCHEMA, _by_step, ("step",), ("source",),
                        max_rows=10_000, max_buffered=50)
    fn.start_bundle()
    written = [out for row in _rows(1000) for out in fn.process(row)]
    written += [wv.value for wv in fn.finish_bundle()]
    assert fn._buffered == 0 and max(n for _rel, (_path, n) in written) <= 50
    assert sum(n for _rel, (_path, n) in written) == 1000

    with TestPipeline() as p:
        _ = (p | beam.Create(_rows(1000))
             | WriteParquetTable(str(tmp_path / "t"), DEAD_LETTER_SCHEMA, _by_step, partition_columns=("step",),
                                 sort_by=("source",), max_buffered_rows=50))
    table = ds.dataset(tmp_path / "t", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 1000
    for part in (tmp_path / "t").iterdir():
        assert len(list(part.glob("*.parquet"))) == 1  # the slices were compacted back into one file
