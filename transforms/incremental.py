"""Windowed and incremental runs: which days a run processes, what it reads back, and the run log.

A run with `--window_start` / `--window_end` (dates, UTC, end exclusive) or
`--incremental` processes the posts created in its window only; a run without them
processes everything it reads and replaces every table (see `transforms.sinks`).

What a windowed run does (`plan_window` decides, on the launching machine):

- **brand_mentions**: the window's posts are matched and scored; the run replaces the
  `created_date=` partitions of every day in the window, and no other. A rerun of a
  window therefore rewrites the same partitions (a day that lost its posts loses its
  partition), never appends.
- **metrics, lang_metrics, topic_metrics, alerts**: recomputed from the mentions, never
  summed from partial runs. Each period that the window touches (its day(s), week,
  month, quarter) and every later one is recomputed (later periods compare themselves
  with it: growth, trailing-4 benchmarks, alert baselines); rows of the periods before
  stay as committed. The mentions of those periods come from this run's scoring for
  the window and, outside it, from the committed `brand_mentions/` partitions read back,
  starting far enough back (`context_start`) to give the earliest recomputed period its
  previous period, its 4 trailing periods and its alert baseline (for a daily run: the
  quarter's 4 trailing quarters, about 15 months of brand_mentions; reading them back
  is a Parquet scan, not model inference). The tables are small, so the run writes them
  whole (kept rows + recomputed rows) and commits them like a full run.
- **response_queue**: recomputed whole (`transforms.response_queue`) from the same mentions
  (the window's and the committed ones read back, which reach further back than any
  queue horizon) and the replies among the window's and the context's posts, at the
  run's as-of time (midnight after its latest processed day); written whole.
- **queue_metrics**: like the metrics, but recomputed from the periods holding the
  window's start minus the longest queue horizon (a reply in the window can answer an
  item that old); earlier periods stay as committed.
- **dead_letters**: the run's rejects go to files named after the window
  (`step=parse/part-w20260907-20260908-00000.parquet`); a rerun replaces that window's
  files and keeps those of other windows, less the rows this run rejected again (a bad
  line of a file that several windows read is kept once: most bad records have no
  usable date, so they cannot be assigned to a window).
- The run's date range (what `days_in_run` and the zero rows of silent periods follow)
  is the union of the windows processed so far (the *extent*, kept in the run log)
  and this window: a day inside a processed window without any post is a zero day,
  not an unknown one.

The run log `_state/runs.json` holds the high-water mark (the latest window end), the
extent, and the last runs. The job's commit stage (`transforms.commit`) writes it into
the run's snapshot, beside the tables it describes, and both become current in one
atomic step; a run that fails leaves it (and every table) as it was, and
`--incremental` then starts again from the last successful run's end. Everything a
windowed run reads back (the run log, committed partitions) comes from the snapshot
current at its start (`transforms.snapshots`).
"""

from __future__ import annotations

import datetime
import re
import typing
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from schemas import PERIODS, Mention
from schemas.records import TRAILING_PERIODS
from transforms.json_files import read_json_object
from transforms.metrics import next_period_start, period_start
from transforms.sinks import EMPTY_PARTITION
from transforms.snapshots import committed_path, resolve_committed

RUNS_FILE = "runs.json"
STATE_DIR = "_state"
MAX_LOGGED_RUNS = 200
_UTC = datetime.timezone.utc
_READ_BATCH_ROWS = 10_000
_DATE_PARTITION = re.compile(r"^created_date=(\d{4}-\d{2}-\d{2})$")


def runs_path(output_dir: str) -> str:
    """Where the committed run log is: `_state/runs.json` in the current snapshot."""
    return committed_path(output_dir, STATE_DIR, RUNS_FILE)


def load_runs(output_dir: str) -> dict:
    """The run log, or {} before the first windowed run.

    Raises:
        ValueError: when the file exists but is not a JSON object (naming the file).
    """
    return read_json_object(runs_path(output_dir), "run log", "fix it, or delete it and pass --window_start")


def parse_day(value: str, flag: str) -> datetime.date:
    """'2026-09-07' -> date; ValueError naming the flag otherwise."""
    try:
        return datetime.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{flag}: {value!r} is not a date (YYYY-MM-DD, UTC)") from None


def previous_period_start(start: datetime.date, period: str) -> datetime.date:
    """The first day of the period before the one starting on `start`."""
    guess = period_start(datetime.datetime.combine(start - datetime.timedelta(days=1), datetime.time(), _UTC),
                         period)
    assert next_period_start(guess, period) == start, (start, period)
    return guess


@dataclass(frozen=True)
class RunWindow:
    """What a windowed run processes and recomputes (built by `plan_window`).

    Attributes:
        start: First day of the window (UTC).
        end: Day after the window's last day (exclusive).
        incremental: Whether the start came from the run log (`--incremental`).
        context_start: First day of the committed brand_mentions read back.
        recompute_from: Period -> first period_start recomputed; rows of earlier periods stay.
        extent: (first, last) day covered by the committed runs, before this one; None if none.
    """

    start: datetime.date
    end: datetime.date
    incremental: bool = False
    context_start: datetime.date = None
    recompute_from: dict[str, datetime.date] = field(default_factory=dict)
    extent: tuple[datetime.date, datetime.date] | None = None

    @property
    def key(self) -> str:
        """'w20260907-20260908': names this window's dead-letter files."""
        return f"w{self.start:%Y%m%d}-{self.end:%Y%m%d}"

    def days(self) -> list[datetime.date]:
        """Every day of the window."""
        return [self.start + datetime.timedelta(days=i) for i in range((self.end - self.start).days)]

    def contains(self, day: datetime.date) -> bool:
        return self.start <= day < self.end

    def date_bounds(self) -> list[datetime.date]:
        """The days that fix the run's date range: the window and the committed extent (clipped to the context)."""
        bounds = [self.start, self.end - datetime.timedelta(days=1)]
        if self.extent is not None:
            first, last = self.extent
            if last >= self.context_start:
                bounds += [max(first, self.context_start), last]
        return bounds

    def describe(self) -> dict:
        """The window as the manifest and the run log record it."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "incremental": self.incremental,
                "context_start": self.context_start.isoformat(),
                "recompute_from": {p: d.isoformat() for p, d in self.recompute_from.items()}}


def lookback_periods(alerts: typing.Any) -> dict[str, int]:
    """Periods of history each period type's metrics look back on: trailing-4 and the alert baselines."""
    periods = set(getattr(alerts, "periods", ()) or ())
    baselines = dict(getattr(alerts, "baseline_periods", {}) or {})
    return {p: max(TRAILING_PERIODS, baselines.get(p, 0) if p in periods else 0) for p in PERIODS}


def committed_extent(output_dir: str, runs: dict) -> tuple[datetime.date, datetime.date] | None:
    """The days covered by the committed outputs: the run log's extent, else the brand_mentions partitions."""
    if runs.get("first_date") and runs.get("last_date"):
        return datetime.date.fromisoformat(runs["first_date"]), datetime.date.fromisoformat(runs["last_date"])
    days = sorted(committed_days(output_dir))
    return (days[0], days[-1]) if days else None


def partition_day(path: str) -> datetime.date | None:
    """The day of a file in a `created_date=` partition directory; None for any other file."""
    match = _DATE_PARTITION.match(path.rsplit("/", 2)[-2])
    return datetime.date.fromisoformat(match.group(1)) if match else None


def partition_days(table_dir: str) -> set[datetime.date]:
    """The `created_date=` partitions of a table that hold rows."""
    return {day for day in map(partition_day, _committed_files(table_dir)) if day is not None}


def partition_rows(table_dir: str) -> dict[datetime.date, int]:
    """Rows per `created_date=` partition of a table, from the Parquet files' footers (no data is read)."""
    rows: dict[datetime.date, int] = {}
    for path in _committed_files(table_dir):
        day = partition_day(path)
        if day is not None:
            with FileSystems.open(path) as fh:
                rows[day] = rows.get(day, 0) + pq.ParquetFile(fh).metadata.num_rows
    return rows


def committed_days(output_dir: str) -> set[datetime.date]:
    """The `created_date=` partitions of the committed brand_mentions table."""
    return partition_days(committed_path(output_dir, "brand_mentions"))


def plan_window(output_dir: str, *, start: datetime.date | None, end: datetime.date | None,
                incremental: bool, today: datetime.date, alerts: typing.Any = None) -> RunWindow | None:
    """Decides the run's window from the flags and the run log.

    Args:
        output_dir: The job's output directory (where the run log and the committed tables are).
        start: --window_start (with --incremental: only for the first run, when the log is empty).
        end: --window_end (default: today, so that a scheduled run processes whole days).
        incremental: --incremental: start where the last successful run ended.
        today: Today's date (UTC).
        alerts: The config's alert thresholds (their baselines widen the look-back).

    Returns:
        The window, or None when an incremental run has nothing new to process.

    Raises:
        ValueError: an empty or future window, a missing start, a broken run log; the
            message names the flag or the file.
    """
    runs = load_runs(output_dir)
    if incremental and runs.get("watermark"):
        start = datetime.date.fromisoformat(runs["watermark"])
    elif start is None:
        if incremental:
            raise ValueError(f"--incremental: no earlier windowed run in {runs_path(output_dir)}; give "
                             "--window_start for the first one (e.g. --incremental --window_start 2026-01-01)")
        raise ValueError("--window_end needs --window_start (or --incremental)")
    end = end or today
    if end > today + datetime.timedelta(days=1):
        raise ValueError(f"--window_end {end} is in the future (today is {today}, UTC)")
    if start >= end:
        if incremental:
            return None
        raise ValueError(f"--window_start must be before --window_end (got {start} .. {end})")
    lookback = lookback_periods(alerts)
    recompute_from = {p: period_start(datetime.datetime.combine(start, datetime.time(), _UTC), p) for p in PERIODS}
    context_start = start
    for period, first in recompute_from.items():
        day = first
        for _ in range(lookback[period]):
            day = previous_period_start(day, period)
        context_start = min(context_start, day)
    return RunWindow(start, end, incremental, context_start, recompute_from, committed_extent(output_dir, runs))


def updated_runs(runs: dict, window: RunWindow, run_id: str, finished_at: datetime.datetime,
                 counts: dict | None = None) -> dict:
    """The run log after `window` succeeded: the high-water mark, the extent and the run appended."""
    first, last = window.start, window.end - datetime.timedelta(days=1)
    if window.extent is not None:
        first, last = min(first, window.extent[0]), max(last, window.extent[1])
    watermark = max(filter(None, [runs.get("watermark"), window.end.isoformat()]))
    entry = {"run_id": run_id, "finished_at": finished_at.isoformat(), **window.describe()}
    if counts:
        entry["counts"] = counts
    return {"watermark": watermark, "first_date": first.isoformat(), "last_date": last.isoformat(),
            "runs": (list(runs.get("runs", [])) + [entry])[-MAX_LOGGED_RUNS:]}


# ---- the window inside the pipeline -----------------------------------------------------------

WINDOW, CONTEXT, OUTSIDE = "window", "context", "outside"


class _SplitFn(beam.DoFn):
    def __init__(self, window: RunWindow):
        self._window = window
        self._outside = beam.metrics.Metrics.counter("window", "outside_mentions")

    def process(self, mention: Mention):
        day = mention.created_at.astimezone(_UTC).date()
        if self._window.contains(day):
            yield mention
            return
        self._outside.inc()
        if day >= self._window.context_start:
            yield beam.pvalue.TaggedOutput(CONTEXT, mention)


class SplitByWindow(beam.PTransform):
    """Mentions -> {'window': created in the window, 'context': outside it but after the context start}.

    Posts outside the window are counted (`window.outside_mentions`) and not scored;
    those of the context still go to the metrics as posts (the brand accounts' own
    replies among them answer complaints).
    """

    def __init__(self, window: RunWindow):
        super().__init__()
        self._window = window

    def expand(self, mentions):
        split = mentions | "Split" >> beam.ParDo(_SplitFn(self._window)).with_outputs(CONTEXT, main=WINDOW)
        return {WINDOW: split[WINDOW], CONTEXT: split[CONTEXT]}


def _committed_files(table_dir: str) -> list[str]:
    """Every Parquet file of a committed table, schema-only files left out."""
    if not FileSystems.exists(table_dir):
        return []
    pattern = FileSystems.join(table_dir, "*", "*.parquet")
    paths = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
    return sorted(p for p in paths if not p.rsplit("/", 2)[-2].endswith("=" + EMPTY_PARTITION))


def _partition_values(path: str) -> dict[str, str]:
    key, _, value = path.rsplit("/", 2)[-2].partition("=")
    return {key: value} if value else {}


def read_committed_rows(path: str, record_type: type, schema: pa.Schema,
                        columns: typing.Sequence[str] | None = None) -> typing.Iterator[typing.Any]:
    """The rows of one committed Parquet file as records; the partition column comes from the directory.

    With `columns`, only those are read and the record's other fields are None.
    """
    with FileSystems.open(path) as fh:
        data = pa.BufferReader(fh.read())
    parts = _partition_values(path)
    maps = {f.name for f in schema if pa.types.is_map(f.type)}
    names = record_type._fields
    # Batch by batch: a file holds up to 250,000 rows, and a row as a Python dict is far larger than in Parquet.
    for batch in pq.ParquetFile(data).iter_batches(batch_size=_READ_BATCH_ROWS, columns=columns):
        for row in batch.to_pylist():
            values = {**parts, **row}
            for name in maps:
                if values.get(name) is not None:
                    values[name] = dict(values[name])
            yield record_type(**{n: values.get(n) for n in names})


class ReadCommitted(beam.PTransform):
    """pbegin -> the rows of a committed table's chosen files (listed now, on the launching machine).

    Args:
        table_dir: The committed table (`<output>/<table>`: read from the current snapshot).
        record_type: The NamedTuple of its rows.
        schema: Its pyarrow schema.
        keep_file: Path -> whether to read it (e.g. by its `created_date=` directory).
        columns: Read only these columns (stored in the files, not partition columns); the
            records' other fields are None.
    """

    def __init__(self, table_dir: str, record_type: type, schema: pa.Schema,
                 keep_file: typing.Callable[[str], bool] = lambda _path: True,
                 columns: typing.Sequence[str] | None = None):
        super().__init__()
        self._files = [p for p in _committed_files(resolve_committed(table_dir)) if keep_file(p)]
        self._record_type = record_type
        self._schema = schema
        self._columns = tuple(columns) if columns is not None else None

    def expand(self, pbegin):
        return (pbegin
                | "Files" >> beam.Create(self._files)
                | "SpreadFiles" >> beam.Reshuffle()
                | "Rows" >> beam.FlatMap(read_committed_rows, self._record_type, self._schema, self._columns)
                # Records with fields left out hold None where the schema has none: not a RowCoder's.
                .with_output_types(self._record_type if self._columns is None else typing.Any))


def context_file(window: RunWindow) -> typing.Callable[[str], bool]:
    """Keeps the committed brand_mentions files from the context start on, outside the window."""
    def keep(path: str) -> bool:
        day = partition_day(path)
        return day is not None and day >= window.context_start and not window.contains(day)
    return keep


def recomputed(row: typing.Any, recompute_from: typing.Mapping[str, datetime.date]) -> bool:
    """Whether a metric / alert row belongs to a period the window recomputes."""
    return row.period_start >= recompute_from[row.period]


class MergeRecomputed(beam.PTransform):
    """(recomputed rows, committed rows) -> the new table: recomputed periods from the run, the rest as committed.

    Args:
        window: The run's window.
        record_type: The rows' type (Metric, LangMetric, TopicMetric, Alert, QueueMetric).
        recompute_from: Period -> first period_start recomputed, when not the window's own (`queue_metrics`
            recomputes from a horizon before the window: `transforms.response_queue.queue_recompute_from`).
    """

    def __init__(self, window: RunWindow, record_type: type,
                 recompute_from: typing.Mapping[str, datetime.date] | None = None):
        super().__init__()
        self._from = dict(recompute_from if recompute_from is not None else window.recompute_from)
        self._record_type = record_type

    def expand(self, inputs):
        new, committed = inputs
        keep_from = self._from
        return (
            (new | "Recomputed" >> beam.Filter(recomputed, keep_from),
             committed | "Earlier" >> beam.Filter(lambda row, f: not recomputed(row, f), keep_from))
            | "Merge" >> beam.Flatten().with_output_types(self._record_type)
        )


__all__ = ["CONTEXT", "MergeRecomputed", "ReadCommitted", "RunWindow", "SplitByWindow", "WINDOW",
           "committed_days", "committed_extent", "context_file", "load_runs", "lookback_periods", "parse_day",
           "plan_window", "previous_period_start", "read_committed_rows", "runs_path", "updated_runs"]
