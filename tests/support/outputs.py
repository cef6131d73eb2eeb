"""Reading a run's outputs back: its tables as rows to compare, and the checks of a committed output directory.

`rows` normalises what two equivalent runs may write differently (float rounding in the
last digits, dates as strings, the wall-clock `time` of a dead letter) and sorts, so that
the tables of two runs compare with `==`. `consistent` and `debris` are the commit
stage's invariants, checked by the commit, lease and crash-injection tests.
"""

from __future__ import annotations

import json
import pathlib
import typing

import pyarrow as pa
import pyarrow.dataset as ds

import transforms.commit as commit_module
from transforms.snapshots import current_snapshot, list_snapshots

VOLATILE = ("time",)  # when a dead letter was rejected: differs between any two runs


def table(out: pathlib.Path, name: str) -> pa.Table:
    """Table `name` of the output directory `out` (hive-partitioned Parquet), partition columns included."""
    return ds.dataset(out / name, format="parquet", partitioning="hive").to_table()


def row_count(path: pathlib.Path) -> int:
    """The rows of the hive-partitioned Parquet dataset at `path`."""
    return ds.dataset(path, format="parquet", partitioning="hive").count_rows()


def rows(out: pathlib.Path, name: str, drop: typing.Iterable[str] = VOLATILE) -> list:
    """Table `name`'s rows as dicts, floats rounded to 9 places, dates as strings, `drop` left out, sorted."""
    drop = set(drop)
    norm = [{k: (round(v, 9) if isinstance(v, float) else str(v) if k.endswith("_date") else v)
             for k, v in r.items() if k not in drop} for r in table(out, name).to_pylist()]
    return sorted(norm, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def consistent(out: pathlib.Path) -> dict:
    """Checks that `out` holds one run's tables and manifest, as a reader sees them; returns the manifest."""
    snapshot = pathlib.Path(current_snapshot(str(out)))
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert json.loads((out / "manifest.json").read_text()) == manifest  # the stable path reads the same
    assert manifest["snapshot"] == f"_snapshots/{snapshot.name}" == f"_snapshots/{manifest['run_id']}"
    on_disk = {p.name for p in snapshot.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert on_disk == set(manifest["table_rows"]) == set(manifest["tables"])
    for name, count in manifest["table_rows"].items():
        assert row_count(out / name) == count == row_count(snapshot / name), name
    if "window" in manifest:
        log = json.loads((out / "_state" / "runs.json").read_text())
        assert log["runs"][-1]["run_id"] == manifest["run_id"]
    return manifest


def debris(out: pathlib.Path) -> list:
    """What a finished run must not leave: other runs' snapshots, scratch, old-layout folders, a lease, broken links."""
    found = [p.name for p in out.iterdir() if p.name.startswith(".") or p.name in ("_staging", "_trash", "_lease.json")]
    current = current_snapshot(str(out))
    previous = json.loads((out / "manifest.json").read_text()).get("previous_snapshot")
    keep = {pathlib.Path(current).name} | ({pathlib.Path(previous).name} if previous else set())
    found += [f"_snapshots/{n}" for n in list_snapshots(str(out)) if n not in keep]
    found += [str(p.relative_to(out)) for n in keep for p in (out / "_snapshots" / n).iterdir()
              if p.name in commit_module.SCRATCH]
    # Every stable link leads somewhere.
    found += [f"broken link {p.name}" for p in out.iterdir() if p.is_symlink() and not p.exists()]
    return found
