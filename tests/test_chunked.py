"""`--chunk_days` / `--chunk_posts`: a full run in slices of days or posts gives the outputs of a one-pass run.

The input is three days of generated posts (~190 a day, 1 % duplicates, three files) plus a
complaint and the brand's answer two days later and two bad lines: enough for two slices of
days, two parts by post id of every day, and a reply that arrives a slice after its
complaint. Each way of slicing runs once per module (`one_pass`, `sliced`, `by_posts`); the
tests only read those outputs.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import shutil
import subprocess
import sys

import pyarrow.dataset as ds
import pytest

from pipelines import chunked
from pipelines.run import main, run
from tools.synthetic_mentions import brands_from_config, generate, write_files
from schemas.tables import JOB_TABLES
from tests.support.fake_model import FakeSentimentHandler
from tests.support.outputs import rows

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "brands.yaml")
TABLES = JOB_TABLES  # every table a run from files writes
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
    records = list(generate(570, seed=7, days=3, brands=brands_from_config(CONFIG))) + _complaint_and_reply()
    write_files(records, str(folder), 3)
    with open(folder / "bad.jsonl", "wb") as fh:
        fh.write(b"\n".join(BAD_LINES) + b"\n")
    return folder


def _run(inputs: pathlib.Path, out: pathlib.Path, *extra: str) -> dict:
    run(["--config", CONFIG, "--input", str(inputs / "*.jsonl"), "--output_dir", str(out), *extra],
        model_handler=FakeSentimentHandler())
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def one_pass(inputs, tmp_path_factory):
    """The one-pass run, asked for with `--chunk_posts 0` on an input over the automatic slicing's limits."""
    import pipelines.options as job

    out = tmp_path_factory.mktemp("one-pass")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job, "AUTO_CHUNK_BYTES", 10_000)  # the fixture's input is some 270 KB
        patch.setattr(job, "AUTO_CHUNK_POSTS", 400)
        return out, _run(inputs, out, "--chunk_posts", "0")


@pytest.fixture(scope="module")
def sliced(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("sliced")
    return out, _run(inputs, out, "--chunk_days", "2")  # 2 slices; the reply comes a slice after the complaint


@pytest.fixture(scope="module")
def by_posts(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("by-posts")
    # ~190 posts a day: every day alone is over the limit and split into 2 parts by post id (6 slices).
    return out, _run(inputs, out, "--chunk_posts", "120")


def _same_as_one_pass(one_pass, out, manifest):
    expected_out, expected = one_pass
    for table in TABLES:
        got, want = rows(out, table), rows(expected_out, table)
        assert len(got) == len(want) and got == want, table
    assert manifest["counts"] == expected["counts"]
    assert manifest["counts"]["balanced"] is True and manifest["counts"]["duplicates_dropped"] > 0


def test_slices_give_the_tables_and_counts_of_one_pass(one_pass, sliced):
    out, manifest = sliced
    _same_as_one_pass(one_pass, out, manifest)
    assert (manifest["chunk_days"], manifest["chunk_posts"]) == (2, 0)
    # Nothing of the passes is left behind: no staged posts, no empty partition beside real ones.
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())
    assert not (out / "posts").exists()
    assert not list((out / "brand_mentions").glob("*__empty__*"))


@pytest.mark.slow  # six slices by post id and a metrics pass
def test_days_split_by_post_id_give_the_tables_and_counts_of_one_pass(one_pass, by_posts):
    out, manifest = by_posts
    _same_as_one_pass(one_pass, out, manifest)  # with the copies of a post in one part: same dedupe
    assert (manifest["chunk_days"], manifest["chunk_posts"]) == (0, 120)
    files = list((out / "brand_mentions" / "created_date=2026-07-02").glob("*.parquet"))
    assert sorted(f.name for f in files) == ["part-1of2-00000.parquet", "part-2of2-00000.parquet"]


def test_the_complaint_is_answered_across_slices(sliced):
    out, _manifest = sliced
    rows = ds.dataset(out / "metrics", format="parquet", partitioning="hive").to_table().to_pylist()
    day = [r for r in rows if r["brand_id"] == "apple" and r["period"] == "day" and r["platform"] is None
           and r["period_start"] == datetime.date(2026, 7, 1)]
    assert len(day) == 1 and day[0]["negative_reply_rate"] is not None and day[0]["negative_reply_rate"] > 0


def test_a_failed_slice_leaves_the_previous_outputs(inputs, one_pass, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(one_pass[0], out, symlinks=True)  # a previous run's committed outputs
    before = {t: rows(out, t) for t in TABLES}

    def broken(*_args, **_kwargs):
        raise RuntimeError("the metrics pass died")

    monkeypatch.setattr(chunked, "build_metrics", broken)
    with pytest.raises(RuntimeError, match="metrics pass died"):
        _run(inputs, out, "--chunk_days", "2")
    assert {t: rows(out, t) for t in TABLES} == before
    assert not (out / "_staging").exists() or not any((out / "_staging").iterdir())


def test_slices_cover_the_days_with_posts_only():
    d = datetime.date
    posts = {d(2026, 7, 1): 10, d(2026, 7, 2): 10, d(2026, 7, 5): 0, d(2026, 7, 9): 10, d(2026, 7, 30): 10}
    assert chunked.plan_slices(posts, 7, 0) == [
        (d(2026, 7, 1), d(2026, 7, 3), 0, 1), (d(2026, 7, 9), d(2026, 7, 10), 0, 1),
        (d(2026, 7, 30), d(2026, 7, 31), 0, 1)]
    assert chunked.plan_slices(posts, 100, 0) == [(d(2026, 7, 1), d(2026, 7, 31), 0, 1)]
    assert chunked.plan_slices({}, 7, 0) == []
    with pytest.raises(ValueError):
        chunked.plan_slices(posts, 0, 0)
    with pytest.raises(ValueError):
        chunked.plan_slices(posts, 7, -1)


def test_slices_hold_at_most_chunk_posts_and_split_a_busy_day():
    d = datetime.date
    posts = {d(2026, 7, 1): 40, d(2026, 7, 2): 50, d(2026, 7, 3): 250, d(2026, 7, 4): 100, d(2026, 7, 5): 1}
    assert chunked.plan_slices(posts, 0, 100) == [
        (d(2026, 7, 1), d(2026, 7, 3), 0, 1),  # 90 posts
        (d(2026, 7, 3), d(2026, 7, 4), 0, 3), (d(2026, 7, 3), d(2026, 7, 4), 1, 3),
        (d(2026, 7, 3), d(2026, 7, 4), 2, 3),
        (d(2026, 7, 4), d(2026, 7, 5), 0, 1),  # exactly 100: not split
        (d(2026, 7, 5), d(2026, 7, 6), 0, 1)]
    # Both limits: a slice ends at whichever comes first.
    assert chunked.plan_slices(posts, 1, 1000) == [(d(2026, 7, day), d(2026, 7, day + 1), 0, 1) for day in range(1, 6)]
    assert str(chunked.Slice(d(2026, 7, 3), d(2026, 7, 4), 1, 3)) == (
        "2026-07-03 .. 2026-07-04 (exclusive), part 2 of 3 by post id")


def test_parts_keep_the_copies_of_a_post_together_and_cover_every_post():
    from schemas import Mention

    def post(pid, platform="x", fetched="a"):
        return Mention(**{**{f: None for f in Mention._fields}, "id": pid, "platform": platform, "url": fetched})

    posts = [post(str(i)) for i in range(3000)] + [post(str(i), "reddit") for i in range(3000)]
    owners = [[p for p in posts if chunked.in_part(p, part, 3)] for part in range(3)]
    assert sum(map(len, owners)) == len(posts) and all(1800 < len(o) < 2200 for o in owners)
    for p in posts[:50]:
        assert chunked.in_part(p._replace(url="another copy"), 1, 3) == chunked.in_part(p, 1, 3)


@pytest.mark.parametrize("extra, message", [
    (["--chunk_days", "-1"], "--chunk_days must not be negative"),
    (["--chunk_posts", "-5"], "--chunk_posts must not be negative"),
    (["--chunk_posts", "1000", "--incremental"], "--chunk_posts slices a full run"),
    (["--chunk_days", "7", "--window_start", "2026-07-01"], "--chunk_days slices a full run"),
    (["--chunk_days", "7", "--source", "file,x"], "--chunk_days reads --input files only"),
    (["--chunk_days", "7", "--dry_run", "true"], "--dry_run builds one"),
])
def test_chunk_days_misconfiguration_stops_before_any_work(inputs, tmp_path, capsys, extra, message):
    code = main(["--config", CONFIG, "--input", str(inputs / "*.jsonl"), "--output_dir", str(tmp_path / "o"), *extra])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # a new interpreter
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
    assert len(rows(out, "dead_letters")) == 2
    for table in ("brand_mentions", "metrics", "alerts"):
        assert rows(out, table) == []  # the schema-only file: an empty table, not a missing one


@pytest.mark.slow  # two slices, a metrics pass and one more run
def test_a_large_input_on_the_direct_runner_is_sliced_by_itself(inputs, one_pass, tmp_path, monkeypatch, capsys):
    import pipelines.options as job

    monkeypatch.setattr(job, "AUTO_CHUNK_BYTES", 10_000)  # the fixture's input is some 270 KB
    monkeypatch.setattr(job, "AUTO_CHUNK_POSTS", 400)
    out = tmp_path / "auto"
    manifest = _run(inputs, out)
    assert "running in slices of 400 posts" in capsys.readouterr().out
    assert (manifest["chunk_days"], manifest["chunk_posts"]) == (0, 400)
    _same_as_one_pass(one_pass, out, manifest)
    # `one_pass` ran on the same input under the same limits with `--chunk_posts 0`: asked for one pass, one pass.
    assert "chunk_posts" not in one_pass[1] and "chunk_days" not in one_pass[1]


@pytest.mark.parametrize("extra, sources, expected", [
    ([], ("file",), 400),
    (["--chunk_posts", "0"], ("file",), 0),
    (["--chunk_posts", "900"], ("file",), 900),
    (["--chunk_days", "7"], ("file",), 0),  # slices of days asked for: no post limit added
    (["--runner", "DataflowRunner"], ("file",), 0),  # a runner that shuffles through disk
    (["--runner", "DaskRunner"], ("file",), 0),
    (["--runner", "DirectRunner", "--direct_num_workers", "2"], ("file",), 400),
    (["--window_start", "2026-07-01"], ("file",), 0),
    (["--dry_run", "true"], ("file",), 0),
    ([], ("file", "x"), 0),
])
def test_automatic_slices_only_for_a_full_run_from_files_on_the_direct_runner(inputs, tmp_path, monkeypatch, extra,
                                                                              sources, expected):
    from apache_beam.options.pipeline_options import PipelineOptions

    import pipelines.options as job
    from pipelines.plan import plan_slicing

    monkeypatch.setattr(job, "AUTO_CHUNK_BYTES", 10_000)
    monkeypatch.setattr(job, "AUTO_CHUNK_POSTS", 400)
    config = job.validate(PipelineOptions(["--config", CONFIG, "--input", str(inputs / "*.jsonl"), "--source",
                                           ",".join(sources), "--output_dir", str(tmp_path / "o"), *extra]))
    days = 7 if "--chunk_days" in extra else 0
    assert plan_slicing(config) == (days, expected)
    monkeypatch.setattr(job, "AUTO_CHUNK_BYTES", 10 ** 12)  # a small input: one pass
    assert plan_slicing(config) == (days, 900 if "900" in extra else 0)


def test_the_slices_apply_the_jobs_one_composite_rather_than_composing_the_job_again():
    import ast

    tree = ast.parse((ROOT / "pipelines" / "chunked.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "transforms.job" in imported
    steps = {"transforms.matching", "transforms.scoring", "transforms.metrics", "transforms.metrics_topics",
             "transforms.alerts", "transforms.response_queue"}
    assert not imported & steps, imported & steps
