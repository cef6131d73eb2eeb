"""`--chunk_days`: a full run in slices of days gives the outputs of a one-pass run."""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from pipelines import chunked
from pipelines.run import main, run
from pipelines.synthetic import brands_from_config, generate, write_files
from tests.fakes import FakeSentimentHandler

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "brands.yaml")
TABLES = ("brand_mentions", "metrics", "lang_metrics", "topic_metrics", "alerts", "dead_letters")
BAD_LINES = [b'{"id": "bad1", "text": "Apple", "created_at": "not a time"}', b"{broken json"]


def _complaint_and_reply():
    """A complaint on the first day answered by the brand's account two days later (another slice)."""
    complaint = {"id": "c1", "platform": "x", "text": "Apple support is the worst, broken again",
                 "created_at": "2026-07-01T08:00:00Z", "author_id": "u1", "author_handle": "someone", "lang": "en"}
    reply = {"id": "r1", "platform": "x", "text": "@someone sorry, we are on it", "created_at": "2026-07-03T09:00:00Z",
             "author_id": "apple", "author_handle": "Apple", "is_reply": True, "reply_to": "c1", "lang": "en"}
    return [complaint, reply]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("chunked-in")
    records = list(generate(1500, seed=7, days=8, brands=brands_from_config(CONFIG))) + _complaint_and_reply()
    write_files(records, str(folder), 3)
    with open(folder / "bad.jsonl", "wb") as fh:
        fh.write(b"\n".join(BAD_LINES) + b"\n")
    return folder


def _run(inputs: pathlib.Path, out: pathlib.Path, *extra: str) -> dict:
    run(["--config", CONFIG, "--input", str(inputs / "*.jsonl"), "--output_dir", str(out), *extra],
        model_handler=FakeSentimentHandler())
    return json.loads((out / "manifest.json").read_text())


def _rows(out: pathlib.Path, table: str):
    rows = ds.dataset(out / table, format="parquet", partitioning="hive").to_table().to_pylist()
    for row in rows:
        row.pop("time", None)  # a dead letter's wall-clock time
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


@pytest.fixture(scope="module")
def one_pass(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("one-pass")
    return out, _run(inputs, out)


@pytest.fixture(scope="module")
def sliced(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("sliced")
    return out, _run(inputs, out, "--chunk_days", "2")  # 4 slices; the reply comes a slice after the complaint


def test_slices_give_the_tables_and_counts_of_one_pass(one_pass, sliced):
    expected_out, expected = one_pass
    out, manifest = sliced
    for table in TABLES:
        got, want = _rows(out, table), _rows(expected_out, table)
        assert len(got) == len(want) and got == want, table
    assert manifest["counts"] == expected["counts"]
    assert manifest["counts"]["balanced"] is True and manifest["counts"]["duplicates_dropped"] > 0
    assert manifest["chunk_days"] == 2
    # Nothing of the passes is left behind: no staged posts, no empty partition beside real ones.
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())
    assert not (out / "posts").exists()
    assert not list((out / "brand_mentions").glob("*__empty__*"))


def test_the_complaint_is_answered_across_slices(sliced):
    out, _manifest = sliced
    rows = ds.dataset(out / "metrics", format="parquet", partitioning="hive").to_table().to_pylist()
    day = [r for r in rows if r["brand_id"] == "apple" and r["period"] == "day" and r["platform"] is None
           and r["period_start"] == datetime.date(2026, 7, 1)]
    assert len(day) == 1 and day[0]["negative_reply_rate"] is not None and day[0]["negative_reply_rate"] > 0


def test_a_failed_slice_leaves_the_previous_outputs(inputs, one_pass, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _run(inputs, out)
    before = {t: _rows(out, t) for t in TABLES}

    def broken(*_args, **_kwargs):
        raise RuntimeError("the metrics pass died")

    monkeypatch.setattr(chunked, "build_metrics", broken)
    with pytest.raises(RuntimeError, match="metrics pass died"):
        _run(inputs, out, "--chunk_days", "3")
    assert {t: _rows(out, t) for t in TABLES} == before
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def test_slices_cover_the_days_with_posts_only():
    d = datetime.date
    days = [d(2026, 7, 1), d(2026, 7, 2), d(2026, 7, 9), d(2026, 7, 30)]
    assert chunked.slices(days, 7) == [(d(2026, 7, 1), d(2026, 7, 8)), (d(2026, 7, 8), d(2026, 7, 15)),
                                       (d(2026, 7, 29), d(2026, 8, 5))]
    assert chunked.slices(days, 100) == [(d(2026, 7, 1), d(2026, 10, 9))]
    assert chunked.slices([], 7) == []
    with pytest.raises(ValueError):
        chunked.slices(days, 0)


@pytest.mark.parametrize("extra, message", [
    (["--chunk_days", "-1"], "--chunk_days must not be negative"),
    (["--chunk_days", "7", "--window_start", "2026-07-01"], "--chunk_days slices a full run"),
    (["--chunk_days", "7", "--source", "file,x"], "--chunk_days reads --input files only"),
    (["--chunk_days", "7", "--dry_run", "true"], "--dry_run builds one"),
])
def test_chunk_days_misconfiguration_stops_before_any_work(inputs, tmp_path, capsys, extra, message):
    code = main(["--config", CONFIG, "--input", str(inputs / "*.jsonl"), "--output_dir", str(tmp_path / "o"), *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_sliced_run_does_not_load_the_command_line_module_twice():
    # `python -m pipelines.run` runs as __main__: a second import of pipelines.run would define its
    # options class twice, and Beam would refuse the repeated --config when the first pass runs.
    code = "import sys, pipelines.chunked; sys.exit('pipelines.run' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_an_input_without_valid_posts_gives_empty_tables(tmp_path):
    bad = tmp_path / "in" / "bad.jsonl"
    bad.parent.mkdir()
    bad.write_bytes(b"\n".join(BAD_LINES) + b"\n")
    out = tmp_path / "out"
    manifest = _run(bad.parent, out, "--chunk_days", "1")
    assert manifest["counts"]["records_read"] == 2 and manifest["counts"]["balanced"] is True
    assert len(_rows(out, "dead_letters")) == 2
    for table in ("brand_mentions", "metrics", "alerts"):
        assert _rows(out, table) == []  # the schema-only file: an empty table, not a missing one
