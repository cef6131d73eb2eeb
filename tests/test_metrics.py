"""Metrics against hand-computed expectations, run through the real Beam transform."""

from __future__ import annotations

import datetime
import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas import BrandMention
from schemas.config import parse_config
from transforms.metrics import ComputeMetrics, period_start, period_starts, ratio

UTC = datetime.timezone.utc
CONFIG = parse_config({"brands": [
    {"id": "sprite", "names": ["Sprite"], "competitors": ["cocacola"]},
    {"id": "cocacola", "names": ["Coca-Cola"], "competitors": ["sprite"]},
    {"id": "fanta", "names": ["Fanta"]},  # no competitive set
]})


def bm(mid, brand, ts, platform="x", kind="untagged", sentiment="neutral", author=None, followers=None,
       likes=None, reposts=None, replies=None, quotes=None, impressions=None):
    probs = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}[sentiment]
    return BrandMention(
        mention_id=mid, platform=platform, created_at=ts, text="t", lang=None, brand_id=brand, match_kind=kind,
        matched_term="x", matched_rule="names", sentiment=sentiment, p_negative=probs[0], p_neutral=probs[1], p_positive=probs[2],
        model_id="m", url=None, author_id=author, author_handle=None, author_followers=followers, is_repost=None,
        repost_of=None, is_reply=None, reply_to=None, is_quote=None, quote_of=None, conversation_id=None,
        likes=likes, reposts=reposts, replies=replies, quotes=quotes, impressions=impressions, bookmarks=None,
        fetched_at=None, connector="file", query=None, topics=[], topic_scores={})


ROWS = [
    bm("1", "sprite", datetime.datetime(2026, 9, 7, 10, tzinfo=UTC), kind="tagged", sentiment="positive",
       author="u1", followers=500, likes=10, reposts=2, impressions=1000),
    # One second before midnight UTC: still Monday the 7th.
    bm("2", "sprite", datetime.datetime(2026, 9, 7, 23, 59, 59, tzinfo=UTC), sentiment="negative",
       author="u2", followers=100, likes=0),
    # Midnight UTC: Tuesday the 8th; reports nothing at all.
    bm("3", "sprite", datetime.datetime(2026, 9, 8, 0, 0, 0, tzinfo=UTC), platform="reddit", author="u1"),
    # Impressions reported as 0: a known zero denominator, so the rate is null, not infinite.
    bm("4", "cocacola", datetime.datetime(2026, 9, 7, 12, tzinfo=UTC), sentiment="negative", author="u3",
       likes=5, impressions=0),
    # Sunday 23:00 belongs to the ISO week that started on Monday the 7th.
    bm("5", "fanta", datetime.datetime(2026, 9, 13, 23, tzinfo=UTC), sentiment="positive"),
]


def _dump(rows, path):
    with open(path, "wb") as fh:
        pickle.dump(rows, fh)


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("metrics") / "rows.pkl")
    with TestPipeline() as p:
        rows = p | "Rows" >> beam.Create(ROWS)
        dates = p | "Dates" >> beam.Create([r.created_at.date() for r in ROWS] + [datetime.date(2026, 9, 9)])
        metrics = (rows, dates) | ComputeMetrics(CONFIG)
        # Every row is valid per the schema's own rules: rates in range, counts consistent.
        assert_that(metrics, _all_rows_consistent)
        _ = metrics | beam.combiners.ToList() | beam.Map(_dump, path)
    with open(path, "rb") as fh:
        got = pickle.load(fh)
    return {(m.brand_id, m.period, m.period_start.isoformat(), m.platform): m for m in got}


def _all_rows_consistent(rows):
    for m in rows:
        assert m.tagged_mentions + m.untagged_mentions == m.mentions
        assert m.negative_mentions + m.neutral_mentions + m.positive_mentions == m.mentions
        for rate in (m.negative_rate, m.positive_rate, m.untagged_share, m.share_of_voice):
            assert rate is None or 0.0 <= rate <= 1.0
        assert m.net_sentiment is None or -1.0 <= m.net_sentiment <= 1.0


def test_row_set_is_dense_over_the_run_range(metrics):
    # 3 brands x (7 days + 1 week) for all platforms, plus 4 (brand, platform) series x 8.
    assert len(metrics) == 3 * 8 + 4 * 8
    days = sorted(k[2] for k in metrics if k[0] == "fanta" and k[1] == "day" and k[3] is None)
    assert days == [f"2026-09-{d:02d}" for d in range(7, 14)]


def test_day_all_platforms(metrics):
    m = metrics[("sprite", "day", "2026-09-07", None)]
    assert (m.mentions, m.tagged_mentions, m.untagged_mentions, m.untagged_share) == (2, 1, 1, 0.5)
    assert m.unique_authors == 2
    assert (m.negative_mentions, m.neutral_mentions, m.positive_mentions) == (1, 0, 1)
    assert (m.negative_rate, m.positive_rate, m.net_sentiment) == (0.5, 0.5, 0.0)
    assert m.previous_mentions is None and m.mentions_growth_rate is None  # first period of the run
    assert (m.engagements, m.engagement_reporting_mentions) == (12, 2)
    assert (m.impressions, m.impression_reporting_mentions) == (1000, 1)
    assert m.engagement_rate_impressions == pytest.approx(12 / 1000)
    assert (m.follower_reach, m.follower_reporting_mentions) == (600, 2)
    assert m.engagement_rate_followers == pytest.approx(12 / 600)
    assert m.competitive_set_mentions == 3
    assert m.share_of_voice == pytest.approx(2 / 3)


def test_growth_and_empty_periods(metrics):
    tue = metrics[("sprite", "day", "2026-09-08", None)]
    assert (tue.mentions, tue.previous_mentions, tue.mentions_growth_rate) == (1, 2, -0.5)
    assert tue.net_sentiment is None  # no positive and no negative
    assert tue.engagement_rate_impressions is None and tue.impression_reporting_mentions == 0
    assert tue.engagement_rate_followers is None and tue.follower_reporting_mentions == 0
    assert tue.share_of_voice == 1.0  # cocacola has 0 that day
    wed = metrics[("sprite", "day", "2026-09-09", None)]
    assert (wed.mentions, wed.mentions_growth_rate) == (0, -1.0)
    assert wed.negative_rate is None and wed.untagged_share is None
    assert wed.competitive_set_mentions == 0 and wed.share_of_voice is None
    thu = metrics[("sprite", "day", "2026-09-10", None)]
    assert thu.previous_mentions == 0 and thu.mentions_growth_rate is None  # from 0: no rate


def test_zero_denominator_and_no_competitors(metrics):
    coke = metrics[("cocacola", "day", "2026-09-07", None)]
    assert coke.impression_reporting_mentions == 1 and coke.impressions == 0
    assert coke.engagement_rate_impressions is None
    assert coke.share_of_voice == pytest.approx(1 / 3)
    fanta = metrics[("fanta", "week", "2026-09-07", None)]
    assert fanta.mentions == 1 and fanta.competitive_set_mentions is None and fanta.share_of_voice is None


def test_week_and_platform_breakdowns(metrics):
    week = metrics[("sprite", "week", "2026-09-07", None)]
    assert (week.mentions, week.tagged_mentions, week.unique_authors) == (3, 1, 2)
    assert week.share_of_voice == pytest.approx(3 / 4)
    assert week.net_sentiment == 0.0
    x = metrics[("sprite", "day", "2026-09-07", "x")]
    assert x.mentions == 2 and x.share_of_voice == pytest.approx(2 / 3)
    reddit = metrics[("sprite", "day", "2026-09-08", "reddit")]
    assert reddit.mentions == 1 and reddit.previous_mentions == 0 and reddit.share_of_voice == 1.0
    assert ("cocacola", "day", "2026-09-07", "reddit") not in metrics


@pytest.mark.parametrize("ts, period, expected", [
    (datetime.datetime(2026, 9, 7, 0, 0, tzinfo=UTC), "day", "2026-09-07"),
    (datetime.datetime(2026, 9, 7, 1, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=3))), "day",
     "2026-09-06"),
    (datetime.datetime(2026, 9, 13, 23, 59, 59, tzinfo=UTC), "week", "2026-09-07"),
    # 2026 has an ISO week 53 (Mon 2026-12-28 .. Sun 2027-01-03).
    (datetime.datetime(2027, 1, 2, 12, tzinfo=UTC), "week", "2026-12-28"),
    (datetime.datetime(2027, 1, 4, 0, tzinfo=UTC), "week", "2027-01-04"),
])
def test_period_start(ts, period, expected):
    assert period_start(ts, period).isoformat() == expected


def test_period_starts_spans_the_year_boundary():
    starts = period_starts(datetime.date(2026, 12, 30), datetime.date(2027, 1, 5), "week")
    assert [s.isoformat() for s in starts] == ["2026-12-28", "2027-01-04"]
    assert datetime.date(2026, 12, 28).isocalendar()[1] == 53


@pytest.mark.parametrize("num, den, expected", [(1, 2, 0.5), (0, 5, 0.0), (3, 0, None), (None, 3, None),
                                                (3, None, None)])
def test_ratio(num, den, expected):
    assert ratio(num, den) == expected
