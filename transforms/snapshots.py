"""Where a job's committed outputs live: versioned snapshots and the one atomic pointer to the current one.

Layout of `--output_dir` (local disk or an object store such as gs://)::

    _snapshots/<run_id>/           one run's tables, connector state, run log and manifest
        brand_mentions/created_date=.../part-00000.parquet, metrics/..., ...
        _state/runs.json, _state/<connector>.json
        manifest.json
    _current -> _snapshots/<run_id>          (local disk: a symbolic link, the pointer)
    brand_mentions -> _current/brand_mentions, ..., manifest.json -> _current/manifest.json
                                             (local disk: stable paths through the pointer)
    manifest.json                            (object store: the pointer, a copy of the snapshot's manifest)
    _lease.json                              (the running job's lease, `transforms.lease`)

A run writes every file into its own snapshot directory, which no reader looks at,
and commits by switching the pointer in one atomic step (`switch_pointer`): on a local
disk by renaming a new symbolic link over `_current` (rename(2) replaces it atomically);
on an object store by writing `manifest.json` in one upload (an object appears whole or
not at all). A crash before the switch leaves the previous snapshot current, and the
new one is debris that the next run removes; after it, the new run is committed. No
table is ever moved or copied into place, so an object store, where a rename is a copy
of every object, costs nothing more than a local disk.

Readers resolve the pointer once and read everything from that snapshot
(`current_snapshot`, `committed_path`); then they see one run's tables and manifest,
however many runs commit meanwhile (the previous snapshot is kept until the next run
commits; older ones go). On a local disk `out/brand_mentions/*/*.parquet` also works,
through the links, but resolves the pointer once per path it opens.

`crash_point` is the hook the crash-injection tests use: with
`SOCIAL_LISTENING_CRASH_AT=<n>` in the environment the process kills itself at the
n-th file operation of the commit and of the recovery.
"""

from __future__ import annotations

import json
import os
import signal
import uuid

from apache_beam.io.filesystems import FileSystems

SNAPSHOTS_DIR = "_snapshots"
POINTER = "_current"
MANIFEST = "manifest.json"
STATE_DIR = "_state"
CRASH_ENV = "SOCIAL_LISTENING_CRASH_AT"
_crash_count = 0


def is_local(path: str) -> bool:
    """Whether `path` is on a local disk (no `scheme://`)."""
    return "://" not in path


def crash_point(what: str) -> None:
    """Counts one file operation of the commit; kills the process at the n-th when SOCIAL_LISTENING_CRASH_AT=n.

    Args:
        what: The operation about to happen (printed, so that a test names the kill point).
    """
    global _crash_count
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    _crash_count += 1
    if _crash_count == int(target):
        print(f"{CRASH_ENV}={target}: killed before {what}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def snapshot_dir(output_dir: str, run_id: str) -> str:
    """Where run `run_id` writes everything it commits: `<output_dir>/_snapshots/<run_id>`."""
    return FileSystems.join(output_dir.rstrip("/"), SNAPSHOTS_DIR, run_id)


def current_snapshot(output_dir: str) -> str | None:
    """The current snapshot's directory, read from the pointer once; None before the first commit.

    Raises:
        ValueError: an object store's manifest.json that is not a pointer (naming the file).
    """
    output_dir = output_dir.rstrip("/")
    if is_local(output_dir):
        link = os.path.join(output_dir, POINTER)
        if not os.path.islink(link):
            return None
        return os.path.normpath(os.path.join(output_dir, os.readlink(link)))
    path = FileSystems.join(output_dir, MANIFEST)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as fh:
        try:
            manifest = json.loads(fh.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a valid manifest ({exc})") from None
    snapshot = manifest.get("snapshot") if isinstance(manifest, dict) else None
    # A manifest written before snapshots existed names no snapshot: the tables are where it says.
    return FileSystems.join(output_dir, snapshot) if snapshot else None


def committed_path(output_dir: str, *parts: str) -> str:
    """`<current snapshot>/<parts>` (or `<output_dir>/<parts>` for an output of the old layout, or none yet)."""
    return FileSystems.join(current_snapshot(output_dir) or output_dir.rstrip("/"), *parts)


def resolve_committed(path: str) -> str:
    """`<output_dir>/<name>` -> the same name in `<output_dir>`'s current snapshot; other paths unchanged."""
    parent, name = FileSystems.split(path.rstrip("/"))
    if not parent or not name:
        return path
    try:
        snapshot = current_snapshot(parent)
    except ValueError:
        return path
    return FileSystems.join(snapshot, name) if snapshot else path


def list_snapshots(output_dir: str) -> list[str]:
    """The run ids under `<output_dir>/_snapshots/`, oldest first (ids start with their UTC time)."""
    root = FileSystems.join(output_dir.rstrip("/"), SNAPSHOTS_DIR)
    if is_local(root):
        return sorted(os.listdir(root)) if os.path.isdir(root) else []
    prefix = root + "/"
    names = {m.path[len(prefix):].split("/", 1)[0]
             for r in FileSystems.match([prefix + "**"]) for m in r.metadata_list}
    return sorted(n for n in names if n)


def switch_pointer(output_dir: str, run_id: str, manifest: dict) -> None:
    """The commit point: makes snapshot `run_id` the current one in one atomic step.

    Args:
        output_dir: The output directory.
        run_id: The snapshot to point to (its manifest.json is already written).
        manifest: Its manifest (an object store's pointer is a copy of it).
    """
    output_dir = output_dir.rstrip("/")
    if is_local(output_dir):
        tmp = os.path.join(output_dir, f".{POINTER}-{uuid.uuid4().hex}")
        crash_point(f"link {tmp}")
        os.symlink(os.path.join(SNAPSHOTS_DIR, run_id), tmp)
        crash_point(f"rename {tmp} over {POINTER}")
        os.replace(tmp, os.path.join(output_dir, POINTER))
        return
    crash_point(f"write {MANIFEST}")
    with FileSystems.create(FileSystems.join(output_dir, MANIFEST)) as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))


def link_entries(output_dir: str) -> None:
    """On a local disk: `out/<name>` -> `_current/<name>` for each entry of the current snapshot.

    Links that point nowhere now (a table the current run has not) go; a link is made
    under a temporary name and renamed into place, so that a crash leaves no half link.
    A path that is not a link (an output of the old layout) is left alone: `migrate_legacy`
    moves it first.
    """
    output_dir = output_dir.rstrip("/")
    snapshot = current_snapshot(output_dir)
    if snapshot is None or not is_local(output_dir):
        return
    wanted = {n for n in os.listdir(snapshot) if not n.startswith(".")}
    for name in sorted(wanted):
        path = os.path.join(output_dir, name)
        if os.path.islink(path) or os.path.lexists(path):
            continue
        tmp = os.path.join(output_dir, f".{name}-{uuid.uuid4().hex}")
        crash_point(f"link {name}")
        os.symlink(os.path.join(POINTER, name), tmp)
        crash_point(f"rename link {name}")
        os.replace(tmp, path)
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        if (os.path.islink(path) and name != POINTER and os.readlink(path) == os.path.join(POINTER, name)
                and name not in wanted):
            crash_point(f"unlink {name}")
            os.unlink(path)


def _unless_gone(_function, _path, exc_info) -> None:
    if not issubclass(exc_info[0], FileNotFoundError):
        raise exc_info[1]


def delete_path(path: str) -> None:
    """Deletes a file, a link or a directory tree (or every object under a prefix); no error if absent."""
    if is_local(path):
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            import shutil

            # The sinks' own cleanup may be removing part of the same scratch tree at the same time.
            shutil.rmtree(path, onerror=_unless_gone)
        return
    if FileSystems.exists(path):
        FileSystems.delete([path])
        return
    paths = [m.path for r in FileSystems.match([FileSystems.join(path, "**")]) for m in r.metadata_list]
    if paths:
        FileSystems.delete(paths)
