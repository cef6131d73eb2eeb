"""One run at a time per output directory: the lease, and two real runs started at once."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tests.support import fake_job
from tests.support.outputs import consistent, debris
from transforms.lease import LeaseHeld, acquire, lease_path, read_lease, release

ROOT = pathlib.Path(__file__).resolve().parents[1]
_UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 9, 7, 12, 0, tzinfo=_UTC)


def test_a_held_lease_names_its_holder_and_a_stale_one_is_taken_over(tmp_path):
    out = str(tmp_path / "out")
    first = acquire(out, "20260907T120000Z-aaaaaa", minutes=10, now=NOW)
    with pytest.raises(LeaseHeld, match=f"run 20260907T120000Z-aaaaaa \\(host {first.host}, pid {os.getpid()}\\)"):
        acquire(out, "20260907T120500Z-bbbbbb", minutes=10, now=NOW + datetime.timedelta(minutes=5))
    assert not release(out, "20260907T120500Z-bbbbbb")  # not the holder: nothing happens
    assert read_lease(out)["run_id"] == "20260907T120000Z-aaaaaa"
    # Its run died: after the expiry the next run takes the lease over.
    acquire(out, "20260907T121100Z-cccccc", minutes=10, now=NOW + datetime.timedelta(minutes=11))
    assert read_lease(out)["run_id"] == "20260907T121100Z-cccccc"
    assert release(out, "20260907T121100Z-cccccc") and read_lease(out) is None


def test_a_half_written_lease_is_stale(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pathlib.Path(lease_path(str(out))).write_bytes(b'{"run_id": "2026')  # its writer was killed mid-write
    acquire(str(out), "20260907T120000Z-aaaaaa", now=NOW)
    assert read_lease(str(out))["run_id"] == "20260907T120000Z-aaaaaa"


def _job(brands_file, inputs, out, *extra):
    argv = ["--config", str(brands_file), "--input", str(inputs), "--output_dir", str(out)] + list(extra)
    return subprocess.Popen([sys.executable, "-m", "tests.support.fake_job"] + argv, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # jobs in new processes; waits out a lease
def test_two_runs_started_at_once_one_runs_and_the_other_exits_2_naming_it(brands_file, mixed_jsonl, tmp_path):
    out = tmp_path / "out"
    jobs = [_job(brands_file, mixed_jsonl, out), _job(brands_file, mixed_jsonl, out)]
    results = [(job.wait(timeout=600), *job.communicate()) for job in jobs]
    assert sorted(rc for rc, _out, _err in results) == [0, 2]
    (winner,) = [r for r in results if r[0] == 0]
    (loser,) = [r for r in results if r[0] == 2]
    manifest = consistent(out)
    winner_pid = jobs[[r[0] for r in results].index(0)].pid
    assert f"another run is writing there: run {manifest['run_id']} (host " in loser[2]
    assert f"pid {winner_pid})" in loser[2]
    assert manifest["run_id"] in winner[1] and debris(out) == []


@pytest.mark.slow  # jobs in new processes; waits out a lease
def test_a_killed_runs_lease_holds_until_it_expires_then_the_next_run_takes_over(brands_file, mixed_jsonl,
                                                                                 tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--config", str(brands_file), "--input", str(mixed_jsonl), "--output_dir", str(out)]
    killed = _job(brands_file, mixed_jsonl, out, "--lease_minutes", "0.1")
    deadline = time.monotonic() + 300
    while (read_lease(str(out)) or {}).get("pid") != killed.pid and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    held = read_lease(str(out))
    assert held["pid"] == killed.pid
    # Before its expiry (6 s after it took the lease, a moment ago) the killed run still holds the directory.
    assert fake_job.main(argv) == 2
    assert f"run {held['run_id']} (host " in capsys.readouterr().err
    expires = datetime.datetime.fromisoformat(held["expires_at"])
    time.sleep(max(0.0, (expires - datetime.datetime.now(_UTC)).total_seconds()) + 0.5)
    assert fake_job.main(argv) == 0
    manifest = consistent(out)
    assert manifest["run_id"] != held["run_id"] and debris(out) == []
    assert json.loads((out / "manifest.json").read_text())["counts"]["balanced"] is True
