"""Every output table, declared once: record type, arrow schema, partitioning, sort order and description.

`TABLES` is the one list of tables. Everything else that names tables is derived
from it: the data dictionary, docs/data-dictionary.md (`schemas.docs`), how each table is written
(`transforms.write_tables.write_table`), which tables a run writes and commits
(`run_tables`), and the tests that compare runs table by table.

A table is partitioned by one directory column (Hive style, `column=value/`):
either a column of the record held in the directory name only (`period`, `step`,
`brand_id`), or the UTC day of one of the record's timestamps (`created_date` from
`created_at`), which is then a directory and not a column at all.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass

import pyarrow as pa

from schemas.fields import Field
from schemas.records import (
    ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA, ALERT_FIELDS, ALERT_SCHEMA, BRAND_MENTION_FIELDS,
    BRAND_MENTION_SCHEMA, BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA, DEAD_LETTER_FIELDS, DEAD_LETTER_SCHEMA,
    LANG_METRIC_FIELDS, LANG_METRIC_SCHEMA, MENTION_FIELDS, MENTION_SCHEMA, METRIC_FIELDS, METRIC_SCHEMA,
    QUEUE_METRIC_FIELDS, QUEUE_METRIC_SCHEMA, REJECTED_MATCH_FIELDS, REJECTED_MATCH_SCHEMA, RESPONSE_QUEUE_FIELDS,
    RESPONSE_QUEUE_SCHEMA, TOPIC_METRIC_FIELDS, TOPIC_METRIC_SCHEMA, AccountSnapshot, Alert, BrandMention, BrandReply,
    DeadLetter, LangMetric, Mention, Metric, QueueMetric, RejectedMatch, ResponseQueueItem, TopicMetric)

# Who writes a table: every run ("job"), or only runs with a platform --source ("fetch").
JOB = "job"
FETCH = "fetch"


def _partition_of(column: str, day_of: str | None, row: typing.Any) -> tuple[tuple[str, str]]:
    """The partition of `row`: ((column, value),), the value being the UTC day of `day_of` or the column itself."""
    value = getattr(row, day_of).date().isoformat() if day_of else getattr(row, column)
    return ((column, value),)


@dataclass(frozen=True)
class TableSpec:
    """One output table.

    Attributes:
        name: The table's directory under --output_dir.
        record: The NamedTuple the pipeline carries for a row.
        fields: The record's field list (columns and their docs).
        schema: The pyarrow schema, partition column included when it is a record column.
        partition: The partition directory's column (`period=day/`, `created_date=2026-09-01/`).
        partition_day_of: The timestamp field whose UTC day names the partition; None when
            `partition` is a record column (then held in the directory names only).
        sort_by: The order of rows within a file.
        description: How the table is partitioned and what a row is (the data dictionary's text).
        written_by: JOB (every run) or FETCH (runs with a platform --source).
    """

    name: str
    record: type
    fields: tuple[Field, ...]
    schema: pa.Schema
    partition: str
    partition_day_of: str | None
    sort_by: tuple[str, ...]
    description: str
    written_by: str = JOB

    @property
    def partition_columns(self) -> tuple[str, ...]:
        """Schema columns that live in the directory names only (not in the files)."""
        return () if self.partition_day_of else (self.partition,)

    @property
    def partition_fn(self) -> typing.Callable[[typing.Any], tuple[tuple[str, str]]]:
        """Row -> ((partition column, value),): a picklable function for the writers."""
        return functools.partial(_partition_of, self.partition, self.partition_day_of)

    @property
    def label(self) -> str:
        """The table's name as a step label: 'brand_mentions' -> 'BrandMentions'."""
        return "".join(w.title() for w in self.name.split("_"))


_DAY_DIR = "(UTC day of `{}`; a directory, not a column{})"
_PERIODS = "`period=day|week|month|quarter`"

def _by_period(name: str, record: type, fields: tuple[Field, ...], schema: pa.Schema,
               sort_by: tuple[str, ...], description: str) -> TableSpec:
    """A table of per-period rows, partitioned by its `period` column (`period=day/`, ..., `period=quarter/`).

    Args:
        description: What a row is; the partitioning's text goes before it.
    """
    return TableSpec(name, record, fields, schema, "period", None, sort_by, _PERIODS + description)


TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (
    TableSpec("brand_mentions", BrandMention, BRAND_MENTION_FIELDS, BRAND_MENTION_SCHEMA, "created_date", "created_at",
              ("brand_id", "created_at", "mention_id"),
              "`created_date=YYYY-MM-DD` " + _DAY_DIR.format("created_at", " in the files")),
    TableSpec("rejected_matches", RejectedMatch, REJECTED_MATCH_FIELDS, REJECTED_MATCH_SCHEMA, "created_date",
              "created_at", ("brand_id", "created_at", "mention_id"),
              "`created_date=YYYY-MM-DD` " + _DAY_DIR.format("created_at", "") + ". One row per match on an "
              "ambiguous brand name that the relevance step judged not about the brand (docs/relevance.md): the "
              "diagnostic beside `brand_mentions`, for review; a windowed run replaces its window's days"),
    _by_period("metrics", Metric, METRIC_FIELDS, METRIC_SCHEMA, ("brand_id", "platform", "period_start"),
               " (the `period` column lives in the directory name). One row per brand, period and platform, and one "
               "with `platform` null for all platforms together (the total); every period of the run has a row, also "
               "without mentions. Files sorted by `brand_id`, `platform`, `period_start`"),
    _by_period("lang_metrics", LangMetric, LANG_METRIC_FIELDS, LANG_METRIC_SCHEMA, ("brand_id", "lang", "period_start"),
               ", like `metrics/`. The same metrics per brand, period and language, all platforms together (sum over "
               "`lang` = the total row of `metrics/`)"),
    _by_period("topic_metrics", TopicMetric, TOPIC_METRIC_FIELDS, TOPIC_METRIC_SCHEMA,
               ("brand_id", "topic", "period_start"),
               ". One row per brand, period and topic the brand had in the run (all platforms and languages "
               "together), every period of the run"),
    TableSpec("alerts", Alert, ALERT_FIELDS, ALERT_SCHEMA, "period", None, ("period_start", "brand_id", "alert"),
              "`period=day|week` (the periods the config's `alerts.periods` checks). One row per alert: brand, "
              "period and test; see docs/outputs.md, 'Early warnings'"),
    TableSpec("dead_letters", DeadLetter, DEAD_LETTER_FIELDS, DEAD_LETTER_SCHEMA, "step", None, ("source", "time"),
              "`step=<step>` (the `step` column lives in the directory name)"),
    TableSpec("response_queue", ResponseQueueItem, RESPONSE_QUEUE_FIELDS, RESPONSE_QUEUE_SCHEMA, "brand_id", None,
              ("brand_id", "rank"),
              "`brand_id=<id>` (the `brand_id` column lives in the directory name). Recomputed whole by every run: "
              "one row per open item (brand, platform, mention), files sorted by `rank`; see "
              "docs/response-queue.md"),
    _by_period("queue_metrics", QueueMetric, QUEUE_METRIC_FIELDS, QUEUE_METRIC_SCHEMA,
               ("brand_id", "match_kind", "period_start"),
               ". One row per brand, period and `match_kind` (null: both), every period of the run; see "
               "docs/response-queue.md"),
    TableSpec("posts", Mention, MENTION_FIELDS, MENTION_SCHEMA, "created_date", "created_at",
              ("platform", "created_at", "id"),
              "`created_date=YYYY-MM-DD` " + _DAY_DIR.format("created_at", "") + ". Every post the platform "
              "connectors fetched, over all runs, once per (`platform`, `id`): the archive that incremental runs "
              "add to and read back. Every column of the file connector's input format, so "
              "`--input 'out/posts/*/*.parquet'` reads it", FETCH),
    TableSpec("brand_replies", BrandReply, BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA, "created_date", "created_at",
              ("brand_id", "created_at", "id"),
              "`created_date=YYYY-MM-DD` " + _DAY_DIR.format("created_at", "") + ". The brand accounts' own replies "
              "(X: `from:<handle> is:reply`), over all runs, once per (`platform`, `id`)", FETCH),
    TableSpec("account_snapshots", AccountSnapshot, ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA, "fetched_date",
              "fetched_at", ("brand_id", "platform", "fetched_at"),
              "`fetched_date=YYYY-MM-DD` " + _DAY_DIR.format("fetched_at", "") + ". One row per brand account (X) and "
              "run, kept over all runs: follower growth", FETCH),
)}

# The tables every run writes, and those only runs with a platform --source write (and read back).
JOB_TABLES: tuple[str, ...] = tuple(n for n, s in TABLES.items() if s.written_by == JOB)
FETCH_TABLES: tuple[str, ...] = tuple(n for n, s in TABLES.items() if s.written_by == FETCH)


def run_tables(fetches: bool) -> tuple[str, ...]:
    """The tables a run writes and commits: JOB_TABLES, and FETCH_TABLES when it fetches from a platform."""
    return JOB_TABLES + (FETCH_TABLES if fetches else ())
