"""Writes the response queue as CSV for a helpdesk import (one row per open item, by brand and rank).

    python -m report.queue_export --output_dir out/                     # -> out/response_queue.csv
    python -m report.queue_export --output_dir out/ --brand apple --csv apple.csv
    make queue                                                          # the same, on `make run`'s outputs

Reads `response_queue/` (written by every run of `pipelines.run`) of the run committed in `<output_dir>`
(its current snapshot, `transforms.snapshots`). List columns
(`reasons`, `topics`) are joined with ';'; times are ISO 8601 in UTC; unknown counts are empty.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import sys
import typing

import pyarrow.dataset as ds

from transforms.snapshots import current_snapshot

COLUMNS = ("brand_id", "rank", "priority", "reasons", "created_at", "age_hours", "breached_target",
           "target_minutes", "platform", "url", "author_handle", "author_followers", "engagement",
           "author_complaints", "match_kind", "sentiment", "p_negative", "lang", "topics", "text", "mention_id",
           "as_of")


def _cell(value: typing.Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def queue_rows(output_dir: str, brand: str | None = None) -> list[dict]:
    """The committed queue's rows, by brand and rank (only `brand`'s when given).

    Raises:
        FileNotFoundError: when `output_dir` holds no response_queue table.
    """
    path = os.path.join(current_snapshot(output_dir) or output_dir, "response_queue")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no response queue (run the job first, e.g. `make run`)")
    rows = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pylist()
    rows = [r for r in rows if brand is None or r["brand_id"] == brand]
    return sorted(rows, key=lambda r: (r["brand_id"], r["rank"]))


def write_csv(rows: typing.Iterable[dict], path: str) -> int:
    """Writes the rows as CSV (UTF-8, a header line); returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in COLUMNS])
            n += 1
    return n


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Command-line entry point: writes the CSV and prints where; exit 2 without a queue."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True, help="The job's --output_dir (local).")
    parser.add_argument("--csv", default=None, help="Where to write (default <output_dir>/response_queue.csv).")
    parser.add_argument("--brand", default=None, help="Only this brand's items (its config id).")
    args = parser.parse_args(argv)
    try:
        rows = queue_rows(args.output_dir, args.brand)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = args.csv or os.path.join(args.output_dir, "response_queue.csv")
    n = write_csv(rows, path)
    print(f"response queue: {n} item(s) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
