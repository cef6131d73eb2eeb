"""Per-topic sentiment against hand-computed expectations, through the real Beam transform."""

from __future__ import annotations

import datetime
import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from tests.support.metric_rows import at, bm
from transforms.metrics_topics import ComputeTopicMetrics

ROWS = [
    bm("t1", "sprite", at(7, 9), sentiment="negative", topics=["price", "delivery"]),
    bm("t2", "sprite", at(7, 10), sentiment="negative", topics=["price"]),
    bm("t3", "sprite", at(7, 11), sentiment="positive", topics=["delivery"]),
    bm("t4", "sprite", at(7, 12)),  # no topic: counts for the brand's totals only
    bm("t5", "sprite", at(8, 9), topics=["price"]),
    bm("t6", "cocacola", at(8, 9), sentiment="positive"),  # a brand without topics has no rows
    bm("t7", "sprite", at(9, 9), sentiment="negative", topics=["price", "price"]),  # once, however listed
]


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    path = tmp_path_factory.mktemp("topics") / "rows.pkl"
    with TestPipeline() as p:
        rows = p | "Rows" >> beam.Create(ROWS)
        dates = p | "Dates" >> beam.Create([datetime.date(2026, 9, 7), datetime.date(2026, 9, 9)])
        _ = ((rows, dates) | ComputeTopicMetrics()
             | beam.combiners.ToList() | beam.Map(lambda got: path.write_bytes(pickle.dumps(got))))
    return {(t.brand_id, t.period, t.period_start.isoformat(), t.topic): t for t in pickle.loads(path.read_bytes())}


def test_rows_are_dense_per_topic_the_brand_had(topics):
    assert {k[0] for k in topics} == {"sprite"}
    assert len(topics) == 2 * (3 + 1 + 1 + 1)  # 2 topics x (3 days, 1 week, 1 month, 1 quarter)


def test_rates_and_shares_by_hand(topics):
    price = topics[("sprite", "day", "2026-09-07", "price")]
    assert (price.brand_total_mentions, price.brand_negative_mentions, price.mentions) == (4, 2, 2)
    assert (price.negative_rate, price.net_sentiment, price.topic_share, price.negative_share) == (1.0, -1.0, 0.5, 1.0)
    delivery = topics[("sprite", "day", "2026-09-07", "delivery")]
    assert (delivery.mentions, delivery.negative_mentions, delivery.positive_mentions) == (2, 1, 1)
    assert (delivery.negative_rate, delivery.positive_rate, delivery.net_sentiment) == (0.5, 0.5, 0.0)
    assert delivery.negative_share == 0.5


def test_zero_denominators_empty_periods_and_changes(topics):
    price = topics[("sprite", "day", "2026-09-08", "price")]
    assert (price.topic_share, price.negative_rate, price.neutral_rate) == (1.0, 0.0, 1.0)
    assert price.net_sentiment is None and price.negative_share is None  # the brand had no negative mention
    assert price.negative_rate_change == -1.0 and price.topic_share_change == 0.5
    delivery = topics[("sprite", "day", "2026-09-08", "delivery")]
    assert (delivery.mentions, delivery.previous_mentions, delivery.mentions_growth_rate) == (0, 2, -1.0)
    assert delivery.negative_rate is None and delivery.topic_share == 0.0
    assert topics[("sprite", "day", "2026-09-09", "delivery")].negative_share == 0.0
    assert topics[("sprite", "day", "2026-09-09", "price")].negative_share == 1.0


def test_week_month_and_quarter(topics):
    week = topics[("sprite", "week", "2026-09-07", "price")]
    assert (week.mentions, week.negative_mentions, week.brand_total_mentions, week.brand_negative_mentions) == (
        4, 3, 6, 3)
    assert week.negative_share == 1.0 and week.days_in_run == 3
    assert topics[("sprite", "week", "2026-09-07", "delivery")].negative_share == pytest.approx(1 / 3)
    assert topics[("sprite", "quarter", "2026-07-01", "price")].mentions == 4
