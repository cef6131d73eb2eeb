"""The whole job, run for real on small files, with its Parquet outputs read back.

One run on the mixed input (the session's `mixed_run`, tests/conftest.py) is shared by
the tests that only read its outputs; a test that reruns into an output directory works
on its own copy. The
sentiment model here is the fast lexicon double of `tests/support/fake_model.py`; the
real model runs through the same job in `tests/test_real_model_e2e.py`.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import duckdb
import fastparquet
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines.run import main, run
from schemas import BRAND_MENTION_SCHEMA, DEAD_LETTER_SCHEMA, METRIC_SCHEMA
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import BAD_LINES, GOOD_RECORDS


def _run(brands_file, inputs, out, handler=None, extra=()):
    argv = ["--config", str(brands_file), "--output_dir", str(out)]
    for path in inputs:
        argv += ["--input", str(path)]
    run(argv + list(extra), model_handler=handler or FakeSentimentHandler())
    return json.loads((out / "manifest.json").read_text())


def _table(out: pathlib.Path, name: str) -> pa.Table:
    return ds.dataset(out / name, format="parquet", partitioning="hive").to_table()


def test_counts_add_up_and_every_bad_record_is_a_dead_letter(mixed_run):
    _brands, mixed_jsonl, out, manifest = mixed_run
    counts = manifest["counts"]

    records_in = len(GOOD_RECORDS) + 1 + len(BAD_LINES)  # +1 duplicate; the blank line is not a record
    assert counts["records_read"] == records_in
    assert counts["duplicates_dropped"] == 1
    assert counts["mentions_matched"] == 4  # g1 g2 g3 g5; g4 is excluded ("fairy sprite"), g6 has no brand
    assert counts["mentions_unmatched"] == 2
    assert counts["balanced"] is True

    dead = _table(out, "dead_letters").to_pylist()
    assert len(dead) == len(BAD_LINES) == counts["dead_letter_rows"]
    reasons = [d["reason"] for d in dead]
    for _line, expected in BAD_LINES:
        assert sum(expected in r for r in reasons) >= 1, (expected, reasons)
    assert all(d["source"].startswith(str(mixed_jsonl) + ":") for d in dead)
    assert {d["step"] for d in dead} == {"parse", "validate"}

    brand_mentions = _table(out, "brand_mentions")
    matched_ids = set(brand_mentions.column("mention_id").to_pylist())
    # records in = matched + unmatched + duplicates + dead letters
    assert records_in == len(matched_ids) + counts["mentions_unmatched"] + 1 + len(dead)


def test_brand_mentions_rows(mixed_run):
    out = mixed_run[2]
    rows = {(r["mention_id"], r["brand_id"]): r for r in _table(out, "brand_mentions").to_pylist()}
    assert set(rows) == {("g1", "sprite"), ("g2", "sprite"), ("g3", "sprite"), ("g3", "cocacola"),
                         ("g5", "cocacola"), ("g5", "fanta")}
    assert rows[("g2", "sprite")]["match_kind"] == "tagged"
    assert rows[("g2", "sprite")]["matched_term"] == "@Sprite"
    assert rows[("g3", "cocacola")]["match_kind"] == "untagged"
    assert rows[("g3", "cocacola")]["matched_term"] == "Кока-Кола"
    assert rows[("g2", "sprite")]["sentiment"] == "negative"
    assert rows[("g1", "sprite")]["sentiment"] == "positive"
    # +03:00 is converted to UTC, which moves the post to the previous day.
    assert rows[("g3", "sprite")]["created_at"].isoformat() == "2026-09-07T23:00:00+00:00"
    assert str(rows[("g3", "sprite")]["created_date"]) == "2026-09-07"
    g1 = rows[("g1", "sprite")]
    assert (g1["likes"], g1["impressions"], g1["author_followers"], g1["lang"]) == (3, 200, 100, "en")
    assert rows[("g2", "sprite")]["impressions"] is None  # not reported stays unknown, not 0
    assert rows[("g2", "sprite")]["topics"] == ["purchase_delivery"]
    assert dict(rows[("g2", "sprite")]["topic_scores"])["purchase_delivery"] == pytest.approx(0.9)
    assert rows[("g1", "sprite")]["topics"] == []
    for r in rows.values():
        assert r["p_negative"] + r["p_neutral"] + r["p_positive"] == pytest.approx(1.0, abs=1e-5)
        assert r["model_id"] == "fake-lexicon-v1"


def test_outputs_are_hive_partitioned_and_match_the_schemas(mixed_run):
    out = mixed_run[2]
    assert sorted(p.name for p in (out / "metrics").iterdir()) == ["period=day", "period=month", "period=quarter",
                                                                 "period=week"]
    assert {p.name for p in (out / "brand_mentions").iterdir()} == {
        "created_date=2026-09-07", "created_date=2026-09-09"}
    for table, schema, part_cols in (("brand_mentions", BRAND_MENTION_SCHEMA, ()),
                                     ("metrics", METRIC_SCHEMA, ("period",)),
                                     ("dead_letters", DEAD_LETTER_SCHEMA, ("step",))):
        for f in (out / table).rglob("*.parquet"):
            file_schema = pq.read_schema(f)
            expected = [fld for fld in schema if fld.name not in part_cols]
            assert [(x.name, x.type) for x in file_schema] == [(x.name, x.type) for x in expected], f
    # Small bundle files were compacted: one file per partition at this size.
    for part in (out / "brand_mentions").iterdir():
        assert len(list(part.glob("*.parquet"))) == 1


def test_readable_by_pyarrow_fastparquet_pandas_and_duckdb(mixed_run):
    out = mixed_run[2]
    n = _table(out, "brand_mentions").num_rows
    assert n == 6

    pf = fastparquet.ParquetFile(str(out / "metrics"))
    fp = pf.to_pandas()
    assert set(fp["period"].astype(str)) == {"day", "week", "month", "quarter"}
    assert "share_of_voice" in fp.columns

    import pandas as pd

    pdf = pd.read_parquet(out / "brand_mentions")
    assert len(pdf) == n and "created_date" in pdf.columns

    con = duckdb.connect()
    got = con.execute(
        f"SELECT brand_id, sum(mentions) FROM read_parquet('{out}/metrics/*/*.parquet', hive_partitioning=true) "
        "WHERE period = 'week' AND platform IS NULL GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("cocacola", 2), ("fanta", 1), ("sprite", 3)]


def test_rerun_replaces_outputs_instead_of_duplicating(mixed_run, tmp_path):
    brands_file, mixed_jsonl, first_run, _manifest = mixed_run
    out = tmp_path / "out"
    shutil.copytree(first_run, out, symlinks=True)  # the first run's outputs, as it left them (relative links)
    first = sorted(map(str, _table(out, "brand_mentions").column("mention_id").to_pylist()))
    metrics_first = _table(out, "metrics").num_rows
    _run(brands_file, [mixed_jsonl], out)
    assert sorted(map(str, _table(out, "brand_mentions").column("mention_id").to_pylist())) == first
    assert _table(out, "metrics").num_rows == metrics_first
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def test_csv_and_parquet_inputs_give_the_same_rows_as_jsonl(mixed_run, tmp_path):
    import csv

    brands_file, _inputs, out_jsonl, _manifest = mixed_run  # the good records in JSON Lines, among bad lines

    fields = sorted({k for r in GOOD_RECORDS for k in r})
    csv_path = tmp_path / "in" / "posts.csv"
    csv_path.parent.mkdir()
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in GOOD_RECORDS[:3]:
            writer.writerow(r)
    pq_path = tmp_path / "in" / "posts.parquet"
    # Every row carries every column, as an export would (from_pylist infers from row 0).
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in fields} for r in GOOD_RECORDS[3:]]), pq_path)

    out_mixed = tmp_path / "a"
    _run(brands_file, [tmp_path / "in" / "*"], out_mixed)
    cols = ["mention_id", "brand_id", "match_kind", "created_at", "likes", "impressions", "sentiment"]
    order = [("mention_id", "ascending"), ("brand_id", "ascending")]
    a = _table(out_mixed, "brand_mentions").select(cols).sort_by(order)
    b = _table(out_jsonl, "brand_mentions").select(cols).sort_by(order)
    assert a.to_pylist() == b.to_pylist()


def test_model_failure_sends_the_batch_to_dead_letters(brands_file, mixed_jsonl, tmp_path):
    out = tmp_path / "out"
    manifest = _run(brands_file, [mixed_jsonl], out, handler=FakeSentimentHandler(fail_on="awful"))
    dead = [d for d in _table(out, "dead_letters").to_pylist() if d["step"] == "sentiment"]
    assert dead and all("poisoned batch" in d["reason"] for d in dead)
    assert any("awful" in json.loads(d["record"])["text"] for d in dead)
    assert manifest["counts"]["balanced"] is True


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.__setitem__(a.index("--config") + 1, "missing.yaml"), "cannot read the brand config"),
    (lambda a: a.__setitem__(a.index("--input") + 1, "/nonexistent/*.jsonl"), "matches no file"),
    (lambda a: a.remove("--output_dir") or a.pop(a.index("--input") + 2), "--output_dir is required"),
])
def test_misconfiguration_stops_before_any_work(brands_file, mixed_jsonl, tmp_path, capsys, mutate, message):
    argv = ["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(tmp_path / "o")]
    mutate(argv)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
