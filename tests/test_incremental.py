"""Windowed and incremental runs: windows, the run log, partition rewrites, metrics recomputed from mentions.

Six weeks of posts (2026-08-03 .. 2026-09-13, `tests.support.inputs.write_six_weeks`) are
processed once in full (the session's `six_weeks_run`, shared with tests/test_runners.py)
and once as a chain of incremental runs whose windows cut weeks and months in two; every
table of the chain must equal the full run's, row for row. The model is the lexicon double.
"""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from pipelines.run import main, run
from schemas.tables import JOB_TABLES
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import BAD_LINES, write_six_weeks
from tests.support.outputs import rows
from transforms.incremental import RunWindow, plan_window, previous_period_start, updated_runs
from transforms.snapshots import current_snapshot

# Every table of a run from files but the dead letters (a windowed run files them under its window).
TABLES = tuple(t for t in JOB_TABLES if t != "dead_letters")


@pytest.fixture
def posts(tmp_path) -> str:
    """This test's own copy of the six weeks (three files): a test may change them."""
    return write_six_weeks(tmp_path / "in")


def _run(brands_file, posts, out, *flags, handler=None):
    argv = ["--config", str(brands_file), "--input", str(posts), "--output_dir", str(out)] + list(flags)
    return run(argv, model_handler=handler or FakeSentimentHandler())


def _dead(out: pathlib.Path) -> list:
    return rows(out, "dead_letters")  # without the time each was rejected


def _files(out: pathlib.Path) -> dict:
    """The committed files (the current snapshot's) and their times: a file carried forward keeps its own."""
    snapshot = pathlib.Path(current_snapshot(str(out)))
    return {str(p.relative_to(snapshot)): p.stat().st_mtime_ns for p in snapshot.rglob("*.parquet")}


class _BrokenModel(FakeSentimentHandler):
    def load_model(self):
        raise RuntimeError("model store unreachable")


def test_a_chain_of_incremental_runs_with_a_failed_one_equals_one_full_run(six_weeks_run, tmp_path, capsys):
    brands_file, posts, full = six_weeks_run
    chain = tmp_path / "chain"
    # Windows that cut a week (Aug 17-23) and a month (August) between runs.
    _run(brands_file, posts, chain, "--incremental", "--window_start", "2026-08-03", "--window_end", "2026-08-20")
    _run(brands_file, posts, chain, "--incremental", "--window_end", "2026-09-02")
    manifest = json.loads((chain / "manifest.json").read_text())
    assert manifest["window"]["start"] == "2026-08-20" and manifest["window"]["end"] == "2026-09-02"
    assert manifest["counts"]["balanced"] is True and manifest["counts"]["mentions_outside_window"] > 0

    # A run that fails (its model cannot load) changes nothing: files, run log and manifest stay the last run's.
    before, log, manifest = _files(chain), (chain / "_state" / "runs.json").read_text(), \
        (chain / "manifest.json").read_text()
    with pytest.raises(Exception, match="model store unreachable"):
        _run(brands_file, posts, chain, "--incremental", "--window_end", "2026-09-14", handler=_BrokenModel())
    assert _files(chain) == before
    assert (chain / "_state" / "runs.json").read_text() == log
    assert (chain / "manifest.json").read_text() == manifest
    # The next run resumes from the last good run's watermark.
    _run(brands_file, posts, chain, "--incremental", "--window_end", "2026-09-14")
    assert json.loads((chain / "manifest.json").read_text())["window"]["start"] == "2026-09-02"

    for table in TABLES:
        assert rows(chain, table) == rows(full, table), table
    # The week and the month that span runs count every mention of them, not the last run's.
    metrics = [r for r in rows(chain, "metrics") if r["brand_id"] == "sprite" and r["platform"] is None]
    mentions = rows(chain, "brand_mentions")
    for period, start, end in (("week", "2026-08-17", "2026-08-24"), ("month", "2026-08-01", "2026-09-01")):
        (row,) = [r for r in metrics if r["period"] == period and str(r["period_start"]) == start]
        assert row["mentions"] == sum(1 for m in mentions if m["brand_id"] == "sprite"
                                      and start <= m["created_at"].date().isoformat() < end)

    log = json.loads((chain / "_state" / "runs.json").read_text())
    assert log["watermark"] == "2026-09-14"
    assert (log["first_date"], log["last_date"]) == ("2026-08-03", "2026-09-13")
    assert [r["start"] for r in log["runs"]] == ["2026-08-03", "2026-08-20", "2026-09-02"]
    assert not (chain / "_staging").exists() and not (chain / "_lease.json").exists()

    # Up to date: the next scheduled run with the same end has nothing to do and touches nothing.
    before = _files(chain)
    assert _run(brands_file, posts, chain, "--incremental", "--window_end", "2026-09-14") is None
    assert "Nothing to do" in capsys.readouterr().out
    assert _files(chain) == before


def test_rerunning_a_window_rewrites_its_partitions_and_nothing_else(brands_file, posts, tmp_path):
    out = tmp_path / "out"
    _run(brands_file, posts, out, "--window_start", "2026-08-03", "--window_end", "2026-08-10")
    _run(brands_file, posts, out, "--window_start", "2026-08-10", "--window_end", "2026-08-17")
    first_week = {k: v for k, v in _files(out).items() if "brand_mentions" in k and "2026-08-0" in k}
    mentions, dead = rows(out, "brand_mentions"), _dead(out)
    assert len(dead) == len(BAD_LINES)  # two windows read the same bad lines: each is kept once

    # The input loses Aug 12, and the second window is rerun: its partitions are replaced (every other
    # mention of it is there once, not appended), Aug 12's goes, the first week's files are untouched.
    for path in pathlib.Path(posts).parent.glob("*.jsonl"):
        kept = [line for line in path.read_bytes().splitlines() if b'"created_at": "2026-08-12' not in line]
        path.write_bytes(b"\n".join(kept) + b"\n")
    _run(brands_file, posts, out, "--window_start", "2026-08-10", "--window_end", "2026-08-17")
    lost = [m for m in mentions if m["created_at"].date() == datetime.date(2026, 8, 12)]
    assert lost and rows(out, "brand_mentions") == [m for m in mentions if m not in lost]
    # The bad lines are still kept once each (their line numbers moved with the lines taken out).
    assert sorted((d["step"], d["reason"], d["record"]) for d in _dead(out)) == sorted(
        (d["step"], d["reason"], d["record"]) for d in dead)
    assert {k: v for k, v in _files(out).items() if k in first_week} == first_week  # other days untouched
    days = sorted(p.name for p in (out / "brand_mentions").iterdir())
    assert "created_date=2026-08-12" not in days and "created_date=2026-08-11" in days
    assert "created_date=2026-08-05" in days
    week = [r for r in rows(out, "metrics") if r["period"] == "week" and r["platform"] is None]
    recount = rows(out, "brand_mentions")
    for row in week:
        start = datetime.date.fromisoformat(str(row["period_start"]))
        assert row["mentions"] == sum(
            1 for m in recount if m["brand_id"] == row["brand_id"]
            and start <= m["created_at"].date() < start + datetime.timedelta(days=7)), row


@pytest.mark.parametrize("flags, message", [
    (["--incremental"], "give --window_start for the first one"),
    (["--window_end", "2026-09-01"], "--window_end needs --window_start"),
    (["--window_start", "2026-09-31"], "--window_start: '2026-09-31' is not a date"),
    (["--window_start", "2026-09-10", "--window_end", "2026-09-01"], "--window_start must be before"),
    (["--window_start", "2026-09-10", "--window_end", "2999-01-01"], "is in the future"),
])
def test_window_misconfiguration_stops_before_any_work(brands_file, posts, tmp_path, capsys, flags, message):
    argv = ["--config", str(brands_file), "--input", str(posts), "--output_dir", str(tmp_path / "o")] + flags
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_window_plan_looks_back_far_enough_for_every_period(tmp_path):
    today = datetime.date(2026, 11, 22)
    window = plan_window(str(tmp_path), start=datetime.date(2026, 9, 9), end=datetime.date(2026, 9, 10),
                         incremental=False, today=today)
    assert window.days() == [datetime.date(2026, 9, 9)]
    assert window.recompute_from == {"day": datetime.date(2026, 9, 9), "week": datetime.date(2026, 9, 7),
                                     "month": datetime.date(2026, 9, 1), "quarter": datetime.date(2026, 7, 1)}
    # The quarter's previous 4 quarters are the longest look-back (days: 28 for the alert baseline).
    assert window.context_start == datetime.date(2025, 7, 1)
    assert previous_period_start(datetime.date(2026, 1, 5), "week") == datetime.date(2025, 12, 29)
    assert window.key == "w20260909-20260910"
    log = updated_runs({}, window, "r1", datetime.datetime(2026, 9, 10, tzinfo=datetime.timezone.utc))
    assert (log["watermark"], log["first_date"], log["last_date"]) == ("2026-09-10", "2026-09-09", "2026-09-09")
    # A backfill of an earlier window neither moves the high-water mark back nor shrinks the extent.
    older = RunWindow(datetime.date(2026, 8, 1), datetime.date(2026, 8, 3), context_start=datetime.date(2025, 7, 1),
                      extent=(datetime.date(2026, 9, 9), datetime.date(2026, 9, 9)))
    log = updated_runs(log, older, "r2", datetime.datetime(2026, 9, 11, tzinfo=datetime.timezone.utc))
    assert (log["watermark"], log["first_date"], log["last_date"]) == ("2026-09-10", "2026-08-01", "2026-09-09")
    assert plan_window(str(tmp_path), start=datetime.date(2026, 9, 1), end=None, incremental=True,
                       today=today).end == today
