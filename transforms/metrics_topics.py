"""Sentiment per topic: per brand, period and topic, from the `topics` column of BrandMentions.

Topics are whatever the model names (the column is a list of topic names above the
model's threshold); nothing here knows them in advance. Steps:

1. `Aggregate`: sentiment counts per (brand, period, period_start, topic), counted per
   (brand, day, topic) inside each bundle and merged into the periods (`transforms.combine`),
   with topic None for all the brand's mentions (the denominators of `topic_share` and
   `negative_share`).
2. `Fill`: per (brand, period), every topic the brand had in the run gets a row for
   every period of the run (zeros where it was not talked about), its rates, and
   their change against the previous period and the 4 periods before.

Topic rows are for all platforms and languages together; for finer cuts, query
`brand_mentions` with `UNNEST(topics)`.
"""

from __future__ import annotations

import datetime

import apache_beam as beam
from apache_beam.pvalue import AsSingleton

from schemas import BrandMention
from schemas.records import TOPIC_CHANGE_RATES, TopicMetric
from transforms.combine import CombineExploded, MergeAccumulatorsFn
from transforms.metrics import (UTC, RunDateRange, add_changes, days_in_run, iso_period_starts_of_day,
                                period_starts, ratio)

_ZERO = (0, 0, 0, 0)  # mentions, negative, neutral, positive


class SentimentCountsFn(beam.CombineFn):
    """(mentions, negative, neutral, positive) of a stream of sentiment labels."""

    def create_accumulator(self):
        return _ZERO

    def add_input(self, acc, sentiment: str):
        m, neg, neu, pos = acc
        return (m + 1, neg + (sentiment == "negative"), neu + (sentiment == "neutral"),
                pos + (sentiment == "positive"))

    def merge_accumulators(self, accs):
        return tuple(map(sum, zip(_ZERO, *accs)))

    def extract_output(self, acc):
        return acc


def _day_cells(row: BrandMention):
    """(brand, UTC day, topic) for each of the mention's topics, and topic None (all its mentions)."""
    day = row.created_at.astimezone(UTC).date().isoformat()
    yield (row.brand_id, day, None), row.sentiment
    for topic in dict.fromkeys(row.topics or ()):
        yield (row.brand_id, day, topic), row.sentiment


def _day_to_periods(cell):
    (brand_id, day, topic), counts = cell
    for period, start in iso_period_starts_of_day(datetime.date.fromisoformat(day)):
        yield (brand_id, period, start, topic), counts


def _topic_rows(keyed, date_range):
    (brand_id, period), values = keyed
    if date_range is None:
        return
    first, last = date_range
    totals: dict[str, tuple] = {}
    by_topic: dict[str, dict[str, tuple]] = {}
    for topic, start, counts in values:
        if topic is None:
            totals[start] = counts
        else:
            by_topic.setdefault(topic, {})[start] = counts
    starts = period_starts(first, last, period)
    for topic in sorted(by_topic):
        rows = []
        for start in starts:
            m, neg, neu, pos = by_topic[topic].get(start.isoformat(), _ZERO)
            brand_m, brand_neg, _, _ = totals.get(start.isoformat(), _ZERO)
            rows.append({
                "brand_id": brand_id,
                "period": period,
                "period_start": start,
                "topic": topic,
                "days_in_run": days_in_run(start, period, first, last),
                "brand_total_mentions": brand_m,
                "brand_negative_mentions": brand_neg,
                "mentions": m,
                "topic_share": ratio(m, brand_m),
                "negative_mentions": neg,
                "neutral_mentions": neu,
                "positive_mentions": pos,
                "negative_rate": ratio(neg, m),
                "neutral_rate": ratio(neu, m),
                "positive_rate": ratio(pos, m),
                "net_sentiment": ratio(pos - neg, pos + neg),
                "negative_share": ratio(neg, brand_neg),
            })
        add_changes(rows, TOPIC_CHANGE_RATES)
        for row in rows:
            yield TopicMetric(**row)


class ComputeTopicMetrics(beam.PTransform):
    """(brand_mentions, mention_dates) -> TopicMetric rows (see the module docstring)."""

    def expand(self, inputs):
        brand_mentions, mention_dates = inputs
        date_range = mention_dates | "RunDateRange" >> RunDateRange()
        return (
            brand_mentions
            | "AggregateDays" >> CombineExploded(_day_cells, SentimentCountsFn(), extract=False)
            | "DaysToPeriods" >> beam.FlatMap(_day_to_periods)
            | "Aggregate" >> beam.CombinePerKey(MergeAccumulatorsFn(SentimentCountsFn()))
            | "KeyByBrandPeriod" >> beam.Map(lambda kv: ((kv[0][0], kv[0][1]), (kv[0][3], kv[0][2], kv[1])))
            | "GroupBrandPeriods" >> beam.GroupByKey()
            | "Fill" >> beam.FlatMap(_topic_rows, AsSingleton(date_range, default_value=None))
            .with_output_types(TopicMetric)
        )
