"""One run at a time per output directory: a lease file with an owner and an expiry.

`acquire` is called by the launcher at start, before any work: it creates
`<output_dir>/_lease.json` naming the owner (host, pid, run id) and when the lease
expires, or raises `LeaseHeld` naming the holder (the launcher exits 2 with it). The
commit stage, the job's last step, releases it (`release`), wherever it runs; a run
that fails in a launcher that waits releases it there too.

A lease whose expiry has passed is stale (its run died, or was killed before its
commit) and the next run takes it over. The expiry (`--lease_minutes`, default 6 hours)
must exceed the longest run: a launcher that submits and returns (a Flex Template)
cannot renew it, and a job still running past its expiry could then meet a second
writer. A run killed by hand can be followed at once by deleting the file.

How the file is taken:
- local disk: created with O_CREAT|O_EXCL, which exactly one of several starting runs
  wins; a stale lease is first renamed away (one rename wins), then created again.
- object store (gs://, s3://): Beam's FileSystems offers no create-if-absent, so a
  run writes its claim, waits `SETTLE_SECONDS`, and reads it back; of runs that start
  within the same instant the last writer keeps the lease and the others exit 2. Two
  runs whose check and write are further apart than the settle time cannot both win.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from transforms.snapshots import crash_point, is_local

LEASE_FILE = "_lease.json"
DEFAULT_LEASE_MINUTES = 360.0
SETTLE_SECONDS = 2.0
_UTC = datetime.timezone.utc


class LeaseHeld(Exception):
    """Another run holds the output directory's lease (the message names it)."""


@dataclass(frozen=True)
class Lease:
    """A held lease: the owner and when it expires (UTC, ISO 8601)."""

    output_dir: str
    run_id: str
    host: str
    pid: int
    expires_at: str

    def as_json(self) -> dict:
        return {"run_id": self.run_id, "host": self.host, "pid": self.pid, "expires_at": self.expires_at}


def lease_path(output_dir: str) -> str:
    """`<output_dir>/_lease.json`."""
    return FileSystems.join(output_dir.rstrip("/"), LEASE_FILE)


def read_lease(output_dir: str) -> dict | None:
    """The lease file's owner record; None when there is none. An unreadable file reads as an expired lease."""
    path = lease_path(output_dir)
    try:
        with FileSystems.open(path) as fh:
            raw = fh.read()
    except Exception:  # absent (FileNotFoundError locally, BeamIOError elsewhere)
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
        if isinstance(value, dict) and isinstance(value.get("expires_at"), str):
            return value
    except (ValueError, UnicodeDecodeError):
        pass
    # Half written (its writer died while writing): nobody can hold it.
    return {"run_id": "?", "host": "?", "pid": 0, "expires_at": "1970-01-01T00:00:00+00:00"}


def _expired(record: dict, now: datetime.datetime) -> bool:
    try:
        return datetime.datetime.fromisoformat(record["expires_at"]) <= now
    except (ValueError, TypeError):
        return True


def describe(record: dict) -> str:
    """'run R (host H, pid P) until T' for messages."""
    return (f"run {record.get('run_id')} (host {record.get('host')}, pid {record.get('pid')}) "
            f"until {record.get('expires_at')}")


def acquire(output_dir: str, run_id: str, minutes: float = DEFAULT_LEASE_MINUTES,
            now: datetime.datetime | None = None) -> Lease:
    """Takes the output directory's lease for `run_id`, or raises LeaseHeld naming the holder.

    Args:
        output_dir: The job's output directory.
        run_id: This run's id.
        minutes: How long the lease holds without a commit (`--lease_minutes`).
        now: The current time (tests).

    Raises:
        LeaseHeld: an unexpired lease of another run is there.
    """
    now = now or datetime.datetime.now(_UTC)
    lease = Lease(output_dir.rstrip("/"), run_id, socket.gethostname(), os.getpid(),
                  (now + datetime.timedelta(minutes=minutes)).isoformat())
    body = json.dumps(lease.as_json(), indent=2).encode("utf-8")
    path = lease_path(output_dir)
    held = read_lease(output_dir)
    if held is not None and not _expired(held, now):
        raise LeaseHeld(_held_message(output_dir, held))
    if is_local(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if held is not None:
            # Only one of several runs taking over the stale lease renames it away.
            stale = f"{path}.stale-{uuid.uuid4().hex}"
            try:
                os.rename(path, stale)
                os.unlink(stale)
            except FileNotFoundError:
                pass
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise LeaseHeld(_held_message(output_dir, read_lease(output_dir) or {})) from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        return lease
    with FileSystems.create(path) as fh:
        fh.write(body)
    time.sleep(SETTLE_SECONDS)
    held = read_lease(output_dir)
    if not held or held.get("run_id") != run_id:
        raise LeaseHeld(_held_message(output_dir, held or {}))
    return lease


def _held_message(output_dir: str, record: dict) -> str:
    return (f"--output_dir {output_dir}: another run is writing there: {describe(record)}. Wait for it to "
            f"finish; if that run died, its lease expires then (or delete {lease_path(output_dir)} once you are "
            "sure it is not running)")


def release(output_dir: str, run_id: str) -> bool:
    """Removes the lease if `run_id` holds it (the commit stage's last step); True if it was released."""
    held = read_lease(output_dir)
    if held is None or held.get("run_id") != run_id:
        return False
    crash_point(f"release {LEASE_FILE}")
    path = lease_path(output_dir)
    try:
        FileSystems.delete([path])
    except Exception:  # already gone: a retried commit released it
        return not FileSystems.exists(path)
    return True
