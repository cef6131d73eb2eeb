"""The commit stage: the job commits itself, atomically for readers, and the next start repairs a killed commit.

Crash injection: a run's pipeline is run once with its commit held back (its snapshot is
written, nothing is committed), and then its commit alone is run in a child process once
per file operation, killed there by `SOCIAL_LISTENING_CRASH_AT=<n>` (SIGKILL), each time on
a fresh copy of that directory, until a run gets through. After every kill the directory
must hold one run's tables and manifest (the previous run's or the new one's, with the
manifest's row counts equal to the files'), and the next start must leave no debris.
The child is forked from the test process (it starts in milliseconds, where a new
interpreter spends seconds importing Beam); it shares nothing with the test but the disk
and dies as a killed job does, without any cleanup. `tests/test_lease.py` kills whole
jobs started as new processes from the command line.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import signal
import time
import traceback

import pytest

import pipelines.run as job
import transforms.commit as commit_module
import transforms.snapshots as snapshots
from pipelines.run import TABLES, run
from schemas.tables import FETCH_TABLES
from tests.support.fake_model import FakeSentimentHandler
from tests.support.outputs import consistent, debris
from transforms.lease import acquire, read_lease, release
from transforms.snapshots import CRASH_ENV, list_snapshots


def _argv(brands_file, inputs, out, *extra):
    return ["--config", str(brands_file), "--input", str(inputs), "--output_dir", str(out)] + list(extra)


def test_the_job_commits_itself_without_any_launcher_code_after_run(brands_file, mixed_jsonl, tmp_path,
                                                                     monkeypatch):
    out = tmp_path / "out"
    finished = []
    # The launcher's part after pipeline.run() (waiting, the summary) does nothing here.
    monkeypatch.setattr(job, "_finish", lambda result, output_dir, run_id: finished.append(run_id) or result)
    run(_argv(brands_file, mixed_jsonl, out), model_handler=FakeSentimentHandler())
    manifest = consistent(out)
    assert manifest["run_id"] == finished[0]
    assert manifest["counts"]["balanced"] is True and manifest["counts"]["records_read"] > 0
    assert manifest["table_rows"]["brand_mentions"] == manifest["counts"]["brand_mention_rows"] == 6
    assert read_lease(str(out)) is None and debris(out) == []


def _pipeline_without_its_commit(argv, monkeypatch):
    """Runs the job's pipeline with its commit held back; returns the (plan, counts) of that commit."""
    held = []
    with monkeypatch.context() as patch:
        patch.setattr(commit_module, "commit", lambda plan, counts: held.append((plan, list(counts))) or {})
        run(argv, model_handler=FakeSentimentHandler())
    (commit,) = held
    return commit


def _commit_in_child(commit, kill_at: int) -> bool:
    """Runs `commit` (plan, counts) in a forked child killed by SIGKILL at its `kill_at`-th file operation.

    Returns:
        True when the child got through (exit 0), False when it was killed at `kill_at`.
    """
    pid = os.fork()
    if pid == 0:  # the child: it never returns into pytest
        code = 3
        try:
            os.environ[CRASH_ENV] = str(kill_at)
            snapshots._crash_count = 0  # counts this child's file operations from the first
            commit_module.commit(*commit)
            code = 0
        except BaseException:  # noqa: B036 - reported through the exit status, with the traceback on stderr
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 300
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the commit child (kill at {kill_at}) hung for 300 s")
        time.sleep(0.005)
    assert os.WIFEXITED(status) or os.WTERMSIG(status) == signal.SIGKILL, status
    assert not os.WIFEXITED(status) or os.WEXITSTATUS(status) == 0, "the commit failed: see its traceback above"
    return os.WIFEXITED(status)


def _restore(pristine, out):
    shutil.rmtree(out)
    shutil.copytree(pristine, out, symlinks=True)


def _crash_at_every_step(brands_file, inputs, tmp_path, monkeypatch, first_flags, second_flags, earlier=None):
    """Kills the second run's commit at each of its file operations in turn; returns the counts seen.

    `earlier`: the committed outputs of a run made with `first_flags` (copied), in place of the first of the two
    runs before.
    """
    out = tmp_path / "out"
    # Two runs before: the new run's commit also removes the oldest snapshot, after its switch.
    if earlier is not None:
        shutil.copytree(earlier, out, symlinks=True)  # its links inside are relative
    for _ in range(1 if earlier is not None else 2):
        run(_argv(brands_file, inputs, out, *first_flags), model_handler=FakeSentimentHandler())
    old = consistent(out)
    assert len(list_snapshots(str(out))) == 2
    commit = _pipeline_without_its_commit(_argv(brands_file, inputs, out, *second_flags), monkeypatch)
    plan = commit[0]
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine, symlinks=True)
    # The whole commit, uninterrupted: what the new run's outputs are.
    assert _commit_in_child(commit, 10**6)
    new = consistent(out)
    assert new["run_id"] == plan.run_id and debris(out) == []
    expected = {old["run_id"]: old["table_rows"], new["run_id"]: new["table_rows"]}
    seen = []
    kill_at = 1
    while True:
        _restore(pristine, out)
        if _commit_in_child(commit, kill_at):
            break
        after_kill = consistent(out)
        assert after_kill["table_rows"] == expected[after_kill["run_id"]], kill_at
        # The next start (any run's): the lease of the killed run has expired; it repairs and removes debris.
        later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        acquire(str(out), "99990101T000000Z-next", now=later)
        commit_module.recover(str(out), "99990101T000000Z-next", TABLES + FETCH_TABLES)
        assert consistent(out)["run_id"] == after_kill["run_id"], kill_at
        assert release(str(out), "99990101T000000Z-next")
        assert debris(out) == [], kill_at
        seen.append(after_kill["run_id"])
        kill_at += 1
    # Both sides of the switch were hit, and every kill left one run's outputs.
    assert seen[0] == old["run_id"] and seen[-1] == new["run_id"] and len(seen) == kill_at - 1
    switch = seen.index(new["run_id"])
    assert set(seen[:switch]) == {old["run_id"]} and set(seen[switch:]) == {new["run_id"]}
    # A real next run after a kill just before the switch and one just after succeeds, leaving no debris.
    for kill in (switch, switch + 1):
        _restore(pristine, out)
        assert not _commit_in_child(commit, kill)
        run(_argv(brands_file, inputs, out, *second_flags, "--lease_minutes", "0.001"),
            model_handler=FakeSentimentHandler())
        assert consistent(out)["table_rows"] == new["table_rows"] and debris(out) == []
    print(f"crash injection: {kill_at - 1} kill points ({switch} before the switch), each consistent after the "
          f"kill and after the next start; {kill_at + 3} commit processes, 2 next runs")
    return kill_at - 1


@pytest.mark.slow  # four runs and some 15 killed commits
def test_a_full_runs_commit_killed_at_any_step_leaves_one_runs_outputs(mixed_run, tmp_path, monkeypatch):
    brands_file, mixed_jsonl, first_run, _manifest = mixed_run  # the session's full run is the first run before
    kill_points = _crash_at_every_step(brands_file, mixed_jsonl, tmp_path, monkeypatch, (),
                                       ("--lease_minutes", "0.001"), earlier=first_run)
    assert kill_points >= 6  # scratch, the manifest, the two steps of the switch, the oldest snapshot, the lease


@pytest.mark.slow  # five runs and some 15 killed commits each
def test_a_windowed_runs_commit_killed_at_any_step_leaves_one_runs_outputs(brands_file, mixed_jsonl, tmp_path,
                                                                            monkeypatch):
    # The second window replaces the partitions of 2026-09-08 .. 09-09 and keeps 09-07 and the dead letters
    # of the first window: the commit links those into the new snapshot, one step each.
    kill_points = _crash_at_every_step(
        brands_file, mixed_jsonl, tmp_path, monkeypatch, ("--window_start", "2026-09-07", "--window_end", "2026-09-08"),
        ("--window_start", "2026-09-08", "--window_end", "2026-09-10", "--lease_minutes", "0.001"))
    # The full run's steps, plus the run log and the carried partition of 2026-09-07.
    assert kill_points >= 8


def test_an_output_of_the_old_layout_is_moved_into_a_snapshot_at_the_next_start(tmp_path):
    out = tmp_path / "out"
    (out / "metrics" / "period=day").mkdir(parents=True)
    (out / "metrics" / "period=day" / "part-00000.parquet").write_bytes(b"old")
    (out / "manifest.json").write_text('{"run_id": "old"}')
    (out / "_staging" / "20260101T000000Z-aaaaaa").mkdir(parents=True)
    (out / "_trash" / "0123").mkdir(parents=True)
    current = commit_module.recover(str(out), "20270101T000000Z-bbbbbb", TABLES)
    assert pathlib.Path(current).name == "0-legacy"
    assert (out / "metrics" / "period=day" / "part-00000.parquet").read_bytes() == b"old"  # through the links
    assert (out / "metrics").is_symlink() and json.loads((out / "manifest.json").read_text()) == {"run_id": "old"}
    assert not (out / "_staging").exists() and not (out / "_trash").exists()


def test_a_copy_that_followed_the_links_is_repaired_at_the_next_start(tmp_path):
    out = tmp_path / "out"
    (out / "metrics" / "period=day").mkdir(parents=True)
    (out / "metrics" / "period=day" / "part-00000.parquet").write_bytes(b"rows")
    commit_module.recover(str(out), "20270101T000000Z-bbbbbb", TABLES)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # follows the links: `_current` and the tables become directories
    assert not (copy / "_current").is_symlink()
    commit_module.recover(str(copy), "20270102T000000Z-cccccc", TABLES)
    assert (copy / "_current").is_symlink() and (copy / "metrics").is_symlink()
    assert (copy / "metrics" / "period=day" / "part-00000.parquet").read_bytes() == b"rows"
    assert list_snapshots(str(copy)) == ["0-copied"]  # the copy's old snapshot was older than this start
