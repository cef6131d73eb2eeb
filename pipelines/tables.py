"""How each output table is written: schema, partitions, sort order (shared by `run` and `chunked`)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from schemas import (BRAND_MENTION_SCHEMA, DEAD_LETTER_SCHEMA, MENTION_SCHEMA, METRIC_SCHEMA, BrandMention, DeadLetter,
                     Metric)
from schemas.records import (ACCOUNT_SNAPSHOT_SCHEMA, ALERT_SCHEMA, BRAND_REPLY_SCHEMA, LANG_METRIC_SCHEMA,
                             QUEUE_METRIC_SCHEMA, RESPONSE_QUEUE_SCHEMA, TOPIC_METRIC_SCHEMA)
from transforms.sinks import WriteParquetTable


def _by_created_date(row: BrandMention):  # also Mention, BrandReply
    return (("created_date", row.created_at.date().isoformat()),)


def _by_fetched_date(row):
    return (("fetched_date", row.fetched_at.date().isoformat()),)


def _by_period(row: Metric):  # also LangMetric, TopicMetric and Alert
    return (("period", row.period),)


def _by_brand(row):  # ResponseQueueItem
    return (("brand_id", row.brand_id),)


def _by_step(row: DeadLetter):
    return (("step", row.step),)


# How each table is written: schema, partition function, partition columns held in directory names only,
# sort order within a file, and the partition names of an empty table's schema-only file.
TABLE_WRITES = {
    "brand_mentions": (BRAND_MENTION_SCHEMA, _by_created_date, (), ("brand_id", "created_at", "mention_id"),
                       ("created_date",)),
    "metrics": (METRIC_SCHEMA, _by_period, ("period",), ("brand_id", "platform", "period_start"), None),
    "lang_metrics": (LANG_METRIC_SCHEMA, _by_period, ("period",), ("brand_id", "lang", "period_start"), None),
    "topic_metrics": (TOPIC_METRIC_SCHEMA, _by_period, ("period",), ("brand_id", "topic", "period_start"), None),
    "alerts": (ALERT_SCHEMA, _by_period, ("period",), ("period_start", "brand_id", "alert"), None),
    "dead_letters": (DEAD_LETTER_SCHEMA, _by_step, ("step",), ("source", "time"), None),
    "response_queue": (RESPONSE_QUEUE_SCHEMA, _by_brand, ("brand_id",), ("brand_id", "rank"), None),
    "queue_metrics": (QUEUE_METRIC_SCHEMA, _by_period, ("period",), ("brand_id", "match_kind", "period_start"), None),
    "posts": (MENTION_SCHEMA, _by_created_date, (), ("platform", "created_at", "id"), ("created_date",)),
    "brand_replies": (BRAND_REPLY_SCHEMA, _by_created_date, (), ("brand_id", "created_at", "id"), ("created_date",)),
    "account_snapshots": (ACCOUNT_SNAPSHOT_SCHEMA, _by_fetched_date, (), ("brand_id", "platform", "fetched_at"),
                          ("fetched_date",)),
}


def write_table(name: str, rows: beam.PCollection, stage_dir: str, file_prefix: str = "part",
                label: str = "") -> beam.PCollection:
    """Writes `rows` as the staged table `name` under `stage_dir`; outputs (table, partition, file, rows)."""
    schema, partition_fn, columns, sort_by, names = TABLE_WRITES[name]
    label = label or "".join(w.title() for w in name.split("_"))
    return (rows
            | f"Write{label}" >> WriteParquetTable(
                FileSystems.join(stage_dir, name), schema, partition_fn, partition_columns=columns, sort_by=sort_by,
                partition_names=names, file_prefix=file_prefix)
            | f"Tag{label}Files" >> beam.Map(lambda w, table=name: (table,) + tuple(w)))


def count_written(written):
    table, _partition, _path, rows = written
    beam.metrics.Metrics.counter("write", f"{table}_rows").inc(rows)
    beam.metrics.Metrics.counter("write", f"{table}_files").inc()
