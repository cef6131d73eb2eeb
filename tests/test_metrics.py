"""Metrics against hand-computed expectations, run through the real Beam transform."""

from __future__ import annotations

import datetime
import math
import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas import BrandMention, Mention
from schemas.config import parse_config
from schemas.records import METRIC_CHANGE_RATES, AccountSnapshot, BrandReply
from transforms.metrics import (ComputeMetrics, add_changes, days_in_run, histogram_median, next_period_start,
                                period_start, period_starts, ratio, response_bucket)

UTC = datetime.timezone.utc
CONFIG = parse_config({"brands": [
    {"id": "sprite", "names": ["Sprite"], "handles": ["Sprite", "SpriteHelp"], "competitors": ["cocacola"]},
    {"id": "cocacola", "names": ["Coca-Cola"], "handles": ["CocaCola"], "competitors": ["sprite"]},
    {"id": "fanta", "names": ["Fanta"]},  # no competitive set
]})


def at(day, hour=12, minute=0, second=0, month=9, year=2026):
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def bm(mid, brand, ts, platform="x", kind="untagged", sentiment="neutral", author=None, followers=None,
       likes=None, reposts=None, replies=None, quotes=None, impressions=None, lang=None, is_repost=None,
       topics=(), text="t"):
    probs = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}[sentiment]
    return BrandMention(
        mention_id=mid, platform=platform, created_at=ts, text=text, lang=lang, brand_id=brand, match_kind=kind,
        matched_term="x", matched_rule="names", sentiment=sentiment, p_negative=probs[0], p_neutral=probs[1],
        p_positive=probs[2], sentiment_target="post", model_id="m", url=None, author_id=author,
        author_handle=None,
        author_followers=followers, is_repost=is_repost, repost_of=None, is_reply=None, reply_to=None,
        is_quote=None, quote_of=None, conversation_id=None, likes=likes, reposts=reposts, replies=replies,
        quotes=quotes, impressions=impressions, bookmarks=None, fetched_at=None, connector="file", query=None,
        topics=list(topics), topic_scores={t: 0.9 for t in topics})


def post(pid, ts, handle, reply_to=None, platform="x"):
    """A post as the file connector reads it (a brand account's reply, when `handle` is the brand's)."""
    fields = {name: None for name in Mention._fields}
    fields.update(id=pid, platform=platform, created_at=ts, text="@someone sorry, please DM us", author_handle=handle,
                  is_reply=reply_to is not None, reply_to=reply_to, connector="file")
    return Mention(**fields)


def reply(rid, brand, ts, in_reply_to, platform="x"):
    """A brand reply as the X connector fetches it."""
    return BrandReply(id=rid, platform=platform, brand_id=brand, handle=brand.title(), created_at=ts,
                      in_reply_to_id=in_reply_to, in_reply_to_user_id=None, conversation_id=None, text="sorry",
                      url=None, fetched_at=ts, query=f"from:{brand} is:reply")


def snapshot(handle, ts, followers, brand="sprite"):
    return AccountSnapshot(brand_id=brand, platform="x", handle=handle, account_id=None, followers=followers,
                           following=None, posts=None, fetched_at=ts)


def _dump(rows, path):
    with open(path, "wb") as fh:
        pickle.dump(rows, fh)


def _compute(tmp_path_factory, name, inputs):
    """Runs ComputeMetrics on Create()d inputs.

    Returns:
        {(brand, period, start, platform, lang): row}: Metric rows (lang None) and LangMetric rows (platform None).
    """
    path = str(tmp_path_factory.mktemp(name) / "rows.pkl")
    with TestPipeline() as p:
        pcolls = {key: p | f"Create_{key}" >> beam.Create(values) for key, values in inputs.items()}
        out = pcolls | ComputeMetrics(CONFIG)
        rows = (out["metrics"], out["lang_metrics"]) | beam.Flatten()
        # Every row is valid per the schema's own rules: rates in range, counts consistent.
        assert_that(out["metrics"], _all_rows_consistent, label="MetricsConsistent")
        assert_that(out["lang_metrics"], _all_rows_consistent, label="LangMetricsConsistent")
        _ = rows | beam.combiners.ToList() | beam.Map(_dump, path)
    with open(path, "rb") as fh:
        got = pickle.load(fh)
    assert {type(m).__name__ for m in got} == {"Metric", "LangMetric"}
    return {(m.brand_id, m.period, m.period_start.isoformat(), getattr(m, "platform", None),
             getattr(m, "lang", None)): m for m in got}


def _all_rows_consistent(rows):
    assert rows
    for m in rows:
        assert m.tagged_mentions + m.untagged_mentions == m.mentions
        assert m.negative_mentions + m.neutral_mentions + m.positive_mentions == m.mentions
        for rate in (m.negative_rate, m.neutral_rate, m.positive_rate, m.untagged_share, m.share_of_voice,
                     m.engagement_share_of_voice, m.sentiment_share_of_voice, m.negative_reply_rate):
            assert rate is None or 0.0 <= rate <= 1.0
        assert m.net_sentiment is None or -1.0 <= m.net_sentiment <= 1.0
        assert (m.service_negative_mentions is None) == (m.answered_negative_mentions is None)
        assert m.answered_negative_mentions is None or m.answered_negative_mentions <= m.service_negative_mentions
        for n, total in ((m.impression_reporting_mentions, m.engagement_reporting_mentions),
                         (m.follower_reporting_mentions, m.engagement_reporting_mentions),
                         (m.like_reporting_mentions, m.mentions), (m.reply_reporting_mentions, m.mentions),
                         (m.amplification_reporting_mentions, m.mentions)):
            assert 0 <= n <= total
        assert 1 <= m.days_in_run <= 92


# ---- fixture A: the first issue's cases (midnight UTC, zero denominators, no competitors) ----------

ROWS = [
    bm("1", "sprite", at(7, 10), kind="tagged", sentiment="positive", author="u1", followers=500, likes=10,
       reposts=2, impressions=1000),
    # One second before midnight UTC: still Monday the 7th.
    bm("2", "sprite", at(7, 23, 59, 59), sentiment="negative", author="u2", followers=100, likes=0),
    # Midnight UTC: Tuesday the 8th; reports nothing at all.
    bm("3", "sprite", at(8, 0), platform="reddit", author="u1"),
    # Impressions reported as 0: a known zero denominator, so the rate is null, not infinite.
    bm("4", "cocacola", at(7, 12), sentiment="negative", author="u3", likes=5, impressions=0),
    # Sunday 23:00 belongs to the ISO week that started on Monday the 7th.
    bm("5", "fanta", at(13, 23), sentiment="positive"),
]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    dates = [r.created_at.date() for r in ROWS] + [datetime.date(2026, 9, 9)]
    got = _compute(tmp_path_factory, "metrics", {"brand_mentions": ROWS, "mention_dates": dates})
    # The first issue's tests address rows by (brand, period, start, platform): the all-language rows.
    return {k[:4]: m for k, m in got.items() if k[4] is None} | {("lang",) + k: m for k, m in got.items()
                                                                   if k[4] is not None}


def test_row_set_is_dense_over_the_run_range(metrics):
    # Series: 3 brand totals, 4 (brand, platform), 3 (brand, 'und') language ones; each over
    # 7 days + 1 week + 1 month + 1 quarter.
    assert len(metrics) == (3 + 4 + 3) * 10
    days = sorted(k[2] for k in metrics if k[0] == "fanta" and k[1] == "day" and k[3] is None)
    assert days == [f"2026-09-{d:02d}" for d in range(7, 14)]
    assert metrics[("fanta", "month", "2026-09-01", None)].mentions == 1
    assert metrics[("sprite", "quarter", "2026-07-01", None)].mentions == 3


def test_day_all_platforms(metrics):
    m = metrics[("sprite", "day", "2026-09-07", None)]
    assert (m.mentions, m.tagged_mentions, m.untagged_mentions, m.untagged_share) == (2, 1, 1, 0.5)
    assert m.unique_authors == 2
    assert (m.negative_mentions, m.neutral_mentions, m.positive_mentions) == (1, 0, 1)
    assert (m.negative_rate, m.neutral_rate, m.positive_rate, m.net_sentiment) == (0.5, 0.0, 0.5, 0.0)
    assert m.previous_mentions is None and m.mentions_growth_rate is None  # first period of the run
    assert (m.engagements, m.engagement_reporting_mentions) == (12, 2)
    assert (m.impressions, m.impression_reporting_mentions) == (1000, 1)
    assert m.engagement_rate_impressions == pytest.approx(12 / 1000)
    assert m.beyond_likes_rate == pytest.approx(2 / 1000)  # the 2 reposts, without the 10 likes
    assert (m.follower_reach, m.follower_reporting_mentions) == (600, 2)
    assert m.engagement_rate_followers == pytest.approx(12 / 600)
    assert (m.likes, m.like_reporting_mentions, m.applause_rate) == (10, 2, 5.0)
    assert (m.amplifications, m.amplification_reporting_mentions, m.amplification_rate) == (2, 1, 2.0)
    assert (m.replies, m.reply_reporting_mentions, m.conversation_rate) == (0, 0, None)  # none reported
    assert m.competitive_set_mentions == 3 and m.competitive_set == "cocacola,sprite"
    assert m.share_of_voice == pytest.approx(2 / 3)
    assert (m.competitive_set_engagements, m.engagement_share_of_voice) == (17, pytest.approx(12 / 17))
    assert (m.competitive_set_positive_mentions, m.sentiment_share_of_voice) == (1, 1.0)
    # No brand replies known anywhere, no snapshots: unknown, not 0.
    assert m.service_negative_mentions is None and m.negative_reply_rate is None
    assert m.account_followers is None and m.follower_growth_rate is None


def test_growth_and_empty_periods(metrics):
    tue = metrics[("sprite", "day", "2026-09-08", None)]
    assert (tue.mentions, tue.previous_mentions, tue.mentions_growth_rate) == (1, 2, -0.5)
    assert tue.net_sentiment is None  # no positive and no negative
    assert tue.engagement_rate_impressions is None and tue.impression_reporting_mentions == 0
    assert tue.engagement_rate_followers is None and tue.follower_reporting_mentions == 0
    assert tue.applause_rate is None and tue.amplification_rate is None and tue.beyond_likes_rate is None
    assert tue.share_of_voice == 1.0  # cocacola has 0 that day
    assert tue.engagement_share_of_voice is None  # the set has 0 engagements
    assert tue.sentiment_share_of_voice is None  # ... and no positive mention
    assert tue.net_sentiment_change is None and tue.untagged_share_change == pytest.approx(1.0 - 0.5)
    wed = metrics[("sprite", "day", "2026-09-09", None)]
    assert (wed.mentions, wed.mentions_growth_rate) == (0, -1.0)
    assert wed.negative_rate is None and wed.untagged_share is None and wed.negative_rate_change is None
    assert wed.competitive_set_mentions == 0 and wed.share_of_voice is None
    thu = metrics[("sprite", "day", "2026-09-10", None)]
    assert thu.previous_mentions == 0 and thu.mentions_growth_rate is None  # from 0: no rate
    assert thu.mentions_trailing4 is None  # only 3 days before it in the run
    fri = metrics[("sprite", "day", "2026-09-11", None)]
    assert fri.mentions_trailing4 == pytest.approx((2 + 1 + 0 + 0) / 4)
    assert fri.mentions_vs_trailing4 == pytest.approx(-1.0)
    # No mention that day: no rate, so nothing to compare with the benchmark either.
    assert fri.negative_rate is None and fri.negative_rate_vs_trailing4 is None


def test_zero_denominator_and_no_competitors(metrics):
    coke = metrics[("cocacola", "day", "2026-09-07", None)]
    assert coke.impression_reporting_mentions == 1 and coke.impressions == 0
    assert coke.engagement_rate_impressions is None and coke.beyond_likes_rate is None
    assert coke.share_of_voice == pytest.approx(1 / 3)
    assert coke.engagement_share_of_voice == pytest.approx(5 / 17)
    assert coke.sentiment_share_of_voice == 0.0  # the set has a positive mention, coke none
    fanta = metrics[("fanta", "week", "2026-09-07", None)]
    assert fanta.mentions == 1 and fanta.competitive_set_mentions is None and fanta.share_of_voice is None
    assert fanta.competitive_set is None and fanta.competitive_set_engagements is None
    assert fanta.engagement_share_of_voice is None and fanta.sentiment_share_of_voice is None


def test_week_platform_and_language_breakdowns(metrics):
    week = metrics[("sprite", "week", "2026-09-07", None)]
    assert (week.mentions, week.tagged_mentions, week.unique_authors, week.days_in_run) == (3, 1, 2, 7)
    assert week.share_of_voice == pytest.approx(3 / 4)
    assert week.net_sentiment == 0.0
    x = metrics[("sprite", "day", "2026-09-07", "x")]
    assert x.mentions == 2 and x.share_of_voice == pytest.approx(2 / 3)
    reddit = metrics[("sprite", "day", "2026-09-08", "reddit")]
    assert reddit.mentions == 1 and reddit.previous_mentions == 0 and reddit.share_of_voice == 1.0
    assert ("cocacola", "day", "2026-09-07", "reddit") not in metrics
    # lang_metrics: posts with no language reported are 'und'; the set is compared within it.
    und = metrics[("lang", "sprite", "day", "2026-09-07", None, "und")]
    assert und.mentions == 2 and und.share_of_voice == pytest.approx(2 / 3)
    month = metrics[("sprite", "month", "2026-09-01", None)]
    assert (month.mentions, month.days_in_run, month.previous_mentions) == (3, 7, None)


# ---- fixture B: every new rate, service and audience ----------------------------------------------

B_ROWS = [
    # Monday 2026-09-14: every engagement count reported or not, in two languages and one repost.
    bm("m1", "sprite", at(14, 9), kind="tagged", sentiment="positive", author="a1", followers=1000, likes=10,
       reposts=3, replies=4, quotes=1, impressions=200, lang="en"),
    bm("m2", "sprite", at(14, 10), sentiment="negative", author="a2", replies=2, lang="ru"),
    bm("m3", "sprite", at(14, 11), platform="bluesky", author="a1", likes=6, reposts=0, replies=0, quotes=0,
       lang="en"),
    bm("m4", "sprite", at(14, 12), sentiment="negative", author="a3", is_repost=True),  # a repost: no service
    bm("m8", "cocacola", at(14, 13), sentiment="positive", likes=14, lang="en"),
    # Tuesday: one complaint answered after 90 minutes, one not, one on a platform without replies.
    bm("m5", "sprite", at(15, 8), sentiment="negative", lang="en"),
    bm("m6", "sprite", at(15, 9), sentiment="negative", lang="en"),
    bm("m7", "sprite", at(15, 10), platform="bluesky", sentiment="negative", lang="en"),
    # fanta (no competitors), daily: 1, 2, 3, 0, 4 mentions with 1, 1, 0, -, 1 negatives.
    bm("f1", "fanta", at(13), sentiment="negative"),
    bm("f2", "fanta", at(14), sentiment="negative"), bm("f3", "fanta", at(14)),
    bm("f4", "fanta", at(15)), bm("f5", "fanta", at(15)), bm("f6", "fanta", at(15)),
    bm("f7", "fanta", at(17), sentiment="negative"), bm("f8", "fanta", at(17)), bm("f9", "fanta", at(17)),
    bm("f10", "fanta", at(17)),
]
B_POSTS = [
    post("r1", at(14, 10, 30), "sprite", reply_to="m2"),  # the brand account's reply, any case of its handle
    post("r2", at(15, 8, 59), "Sprite", reply_to="m6"),  # before m6 was posted: cannot answer it
    post("r3", at(15, 9, 30), "CocaCola", reply_to="m6"),  # another brand's account
    post("r4", at(15, 9, 40), "someone", reply_to="m6"),  # not a brand account
]
B_REPLIES = [reply("c1", "sprite", at(15, 9, 30), "m5"), reply("c2", "sprite", at(15, 11), "m5")]
B_SNAPSHOTS = [
    snapshot("Sprite", at(13, 23), 1000),
    snapshot("Sprite", at(14, 8), 1040),
    snapshot("Sprite", at(14, 20), 1100),  # the day's last snapshot counts
    snapshot("Sprite", at(15, 12), None),  # not reported: skipped
    snapshot("Sprite", at(16, 12), 1210),
    snapshot("SpriteHelp", at(14, 10), 500),
    snapshot("SpriteHelp", at(16, 10), 550),
]


@pytest.fixture(scope="module")
def rates(tmp_path_factory):
    dates = [datetime.date(2026, 9, 13), datetime.date(2026, 9, 21)]
    return _compute(tmp_path_factory, "rates", {
        "brand_mentions": B_ROWS, "mention_dates": dates, "posts": B_POSTS, "brand_replies": B_REPLIES,
        "account_snapshots": B_SNAPSHOTS})


def test_volume_sentiment_and_engagement_rates(rates):
    m = rates[("sprite", "day", "2026-09-14", None, None)]
    assert (m.mentions, m.tagged_mentions, m.untagged_share, m.unique_authors) == (4, 1, 0.75, 3)
    assert (m.negative_rate, m.neutral_rate, m.positive_rate) == (0.5, 0.25, 0.25)
    assert m.net_sentiment == pytest.approx(-1 / 3)
    # engagements: m1 10+3+4+1, m2 2, m3 6, m4 none reported
    assert (m.engagements, m.engagement_reporting_mentions) == (26, 3)
    assert (m.impressions, m.impression_reporting_mentions) == (200, 1)
    assert m.engagement_rate_impressions == pytest.approx(18 / 200)
    assert m.beyond_likes_rate == pytest.approx(8 / 200)
    assert (m.follower_reach, m.follower_reporting_mentions, m.engagement_rate_followers) == (
        1000, 1, pytest.approx(18 / 1000))
    assert (m.amplifications, m.amplification_reporting_mentions, m.amplification_rate) == (4, 2, 2.0)
    assert (m.replies, m.reply_reporting_mentions, m.conversation_rate) == (6, 3, 2.0)
    assert (m.likes, m.like_reporting_mentions, m.applause_rate) == (16, 2, 8.0)


def test_share_of_voice_by_engagement_and_sentiment(rates):
    m = rates[("sprite", "day", "2026-09-14", None, None)]
    assert (m.competitive_set_mentions, m.share_of_voice) == (5, pytest.approx(4 / 5))
    assert (m.competitive_set_engagements, m.engagement_share_of_voice) == (40, pytest.approx(26 / 40))
    assert (m.competitive_set_positive_mentions, m.sentiment_share_of_voice) == (2, 0.5)
    coke = rates[("cocacola", "day", "2026-09-14", None, None)]
    assert coke.engagement_share_of_voice == pytest.approx(14 / 40) and coke.sentiment_share_of_voice == 0.5
    tue = rates[("sprite", "day", "2026-09-15", None, None)]
    assert tue.sentiment_share_of_voice is None  # no positive mention in the set
    en = rates[("sprite", "day", "2026-09-14", None, "en")]
    assert (en.mentions, en.competitive_set_mentions) == (2, 3)
    assert en.share_of_voice == pytest.approx(2 / 3)
    assert rates[("sprite", "day", "2026-09-14", None, "ru")].mentions == 1
    assert rates[("sprite", "day", "2026-09-14", None, "und")].mentions == 1


def test_service_replies_from_posts_and_connector(rates):
    mon = rates[("sprite", "day", "2026-09-14", None, None)]
    # m2 answered after 30 min; m4 is a repost (left out).
    assert (mon.service_negative_mentions, mon.answered_negative_mentions, mon.negative_reply_rate) == (1, 1, 1.0)
    assert mon.median_response_minutes == pytest.approx(30, rel=0.01)
    tue = rates[("sprite", "day", "2026-09-15", None, None)]
    # m5 answered after 90 min (the first of two replies), m6 not (replies before it, or by others),
    # m7 on bluesky where no reply of the brand is known: not in the denominator.
    assert (tue.service_negative_mentions, tue.answered_negative_mentions) == (2, 1)
    assert tue.negative_reply_rate == 0.5
    assert tue.median_response_minutes == pytest.approx(90, rel=0.01)
    week = rates[("sprite", "week", "2026-09-14", None, None)]
    assert (week.service_negative_mentions, week.answered_negative_mentions) == (3, 2)
    assert week.negative_reply_rate == pytest.approx(2 / 3)
    assert week.median_response_minutes == pytest.approx(60, rel=0.01)  # of 30 and 90
    assert rates[("sprite", "day", "2026-09-15", "bluesky", None)].service_negative_mentions is None
    x = rates[("sprite", "day", "2026-09-15", "x", None)]
    assert (x.service_negative_mentions, x.negative_reply_rate) == (2, 0.5)
    # cocacola's account replied once (to a sprite post), so its replies are known: 0 complaints, rate null.
    coke = rates[("cocacola", "day", "2026-09-14", None, None)]
    assert (coke.service_negative_mentions, coke.answered_negative_mentions, coke.negative_reply_rate) == (0, 0, None)
    assert rates[("fanta", "day", "2026-09-14", None, None)].service_negative_mentions is None
    empty = rates[("sprite", "day", "2026-09-18", None, None)]
    assert (empty.service_negative_mentions, empty.median_response_minutes) == (0, None)


def test_audience_follower_growth(rates):
    def row(day, platform=None, period="day"):
        return rates[("sprite", period, f"2026-09-{day:02d}", platform, None)]

    assert (row(13).account_followers, row(13).follower_growth_rate) == (1000, None)  # nothing before
    assert row(14).account_followers == 1100 + 500
    assert row(14).follower_growth_rate == pytest.approx(100 / 1000)  # SpriteHelp has nothing before
    assert (row(15).account_followers, row(15).follower_growth_rate) == (None, None)
    assert row(16).account_followers == 1210 + 550
    assert row(16).follower_growth_rate == pytest.approx((110 + 50) / (1100 + 500))
    assert row(16, "x").follower_growth_rate == row(16).follower_growth_rate
    week = row(14, period="week")
    assert (week.account_followers, week.follower_growth_rate) == (1760, pytest.approx(210 / 1000))
    assert rates[("sprite", "day", "2026-09-14", None, "en")].account_followers is None  # no language
    assert rates[("cocacola", "day", "2026-09-14", None, None)].account_followers is None


def test_changes_against_previous_period_and_trailing_four(rates):
    def fanta(day):
        return rates[("fanta", "day", f"2026-09-{day:02d}", None, None)]

    assert [fanta(d).mentions for d in range(13, 18)] == [1, 2, 3, 0, 4]
    assert fanta(15).negative_rate_change == pytest.approx(0.0 - 0.5)
    assert fanta(16).negative_rate is None and fanta(16).negative_rate_change is None
    assert fanta(16).mentions_growth_rate == -1.0
    assert fanta(16).negative_rate_vs_trailing4 is None  # only 3 days before it
    seventeen = fanta(17)
    assert seventeen.negative_rate == 0.25 and seventeen.negative_rate_change is None  # 16th undefined
    assert seventeen.negative_rate_vs_trailing4 == pytest.approx(0.25 - (1.0 + 0.5 + 0.0) / 3)
    assert seventeen.mentions_trailing4 == pytest.approx(1.5)
    assert seventeen.mentions_vs_trailing4 == pytest.approx((4 - 1.5) / 1.5)
    assert seventeen.net_sentiment_vs_trailing4 == pytest.approx(-1.0 - (-1.0 + -1.0) / 2)
    for rate in METRIC_CHANGE_RATES:  # every listed rate has both columns
        assert hasattr(seventeen, f"{rate}_change") and hasattr(seventeen, f"{rate}_vs_trailing4")


def test_partial_periods_say_how_many_days_they_cover(rates):
    assert rates[("fanta", "week", "2026-09-07", None, None)].days_in_run == 1  # Sunday 13th only
    assert rates[("fanta", "week", "2026-09-14", None, None)].days_in_run == 7
    assert rates[("fanta", "week", "2026-09-21", None, None)].days_in_run == 1
    assert rates[("fanta", "month", "2026-09-01", None, None)].days_in_run == 9
    assert rates[("fanta", "quarter", "2026-07-01", None, None)].days_in_run == 9


# ---- fixture C: across a year boundary with ISO week 53, month and quarter edges -------------------

C_ROWS = [
    bm("y1", "fanta", datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), sentiment="negative"),
    bm("y2", "fanta", datetime.datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), sentiment="positive"),
    # 00:30 in Belgrade on Monday Jan 4th is still Sunday Jan 3rd (ISO week 53) in UTC.
    bm("y3", "fanta", datetime.datetime(2027, 1, 4, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))),
]


@pytest.fixture(scope="module")
def year_end(tmp_path_factory):
    dates = [datetime.date(2026, 12, 27), datetime.date(2027, 1, 5)]
    got = _compute(tmp_path_factory, "year_end", {"brand_mentions": C_ROWS, "mention_dates": dates})
    return {k[1:3]: m for k, m in got.items() if k[0] == "fanta" and k[3] is None and k[4] is None}


def test_week_53_month_and_quarter_boundaries(year_end):
    weeks = sorted(start for period, start in year_end if period == "week")
    assert weeks == ["2026-12-21", "2026-12-28", "2027-01-04"]
    assert year_end[("week", "2026-12-28")].mentions == 3  # Dec 31, Jan 1 and Jan 3 (UTC) are all in week 53
    assert year_end[("week", "2026-12-28")].net_sentiment == 0.0
    assert year_end[("month", "2026-12-01")].mentions == 1 and year_end[("month", "2027-01-01")].mentions == 2
    assert year_end[("quarter", "2026-10-01")].mentions == 1 and year_end[("quarter", "2027-01-01")].mentions == 2
    assert year_end[("quarter", "2027-01-01")].previous_mentions == 1
    assert year_end[("quarter", "2027-01-01")].mentions_growth_rate == 1.0
    assert year_end[("quarter", "2026-10-01")].days_in_run == 5  # Dec 27..31
    assert year_end[("day", "2027-01-03")].mentions == 1 and year_end[("day", "2027-01-04")].mentions == 0


# ---- pure functions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ts, period, expected", [
    (at(7, 0), "day", "2026-09-07"),
    (datetime.datetime(2026, 9, 7, 1, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=3))), "day",
     "2026-09-06"),
    (at(13, 23, 59, 59), "week", "2026-09-07"),
    # 2026 has an ISO week 53 (Mon 2026-12-28 .. Sun 2027-01-03).
    (datetime.datetime(2027, 1, 2, 12, tzinfo=UTC), "week", "2026-12-28"),
    (datetime.datetime(2027, 1, 4, 0, tzinfo=UTC), "week", "2027-01-04"),
    (at(30, 23, 59, 59), "month", "2026-09-01"),
    (at(1, 0, month=10), "month", "2026-10-01"),
    (at(30, 23, 59, 59), "quarter", "2026-07-01"),
    (at(1, 0, month=10), "quarter", "2026-10-01"),
    (datetime.datetime(2027, 3, 31, 23, tzinfo=UTC), "quarter", "2027-01-01"),
])
def test_period_start(ts, period, expected):
    assert period_start(ts, period).isoformat() == expected


def test_period_starts_spans_the_year_boundary():
    starts = period_starts(datetime.date(2026, 12, 30), datetime.date(2027, 1, 5), "week")
    assert [s.isoformat() for s in starts] == ["2026-12-28", "2027-01-04"]
    assert datetime.date(2026, 12, 28).isocalendar()[1] == 53
    quarters = period_starts(datetime.date(2026, 8, 30), datetime.date(2027, 2, 1), "quarter")
    assert [s.isoformat() for s in quarters] == ["2026-07-01", "2026-10-01", "2027-01-01"]
    assert next_period_start(datetime.date(2026, 12, 1), "month") == datetime.date(2027, 1, 1)
    assert days_in_run(datetime.date(2026, 9, 1), "month", datetime.date(2026, 9, 7), datetime.date(2026, 10, 3)) == 24


@pytest.mark.parametrize("num, den, expected", [(1, 2, 0.5), (0, 5, 0.0), (3, 0, None), (None, 3, None),
                                                (3, None, None)])
def test_ratio(num, den, expected):
    assert ratio(num, den) == expected


@pytest.mark.parametrize("seconds, expected", [
    ([1800.0], 1800.0), ([1800.0, 5400.0], 3600.0), ([60.0, 120.0, 86400.0], 120.0), ([0.2, 0.4], 0.0), ([], None)])
def test_histogram_median_is_within_one_percent(seconds, expected):
    hist = {}
    for s in seconds:
        hist[response_bucket(s)] = hist.get(response_bucket(s), 0) + 1
    got = histogram_median(hist)
    assert got == expected if expected in (None, 0.0) else math.isclose(got, expected, rel_tol=0.01)


def test_add_changes_on_a_hand_series():
    rows = [{"mentions": m, "r": r} for m, r in ((1, 0.1), (2, None), (3, 0.3), (4, 0.5), (5, 0.2), (6, 0.4))]
    add_changes(rows, ["r"])
    assert [row["r_change"] for row in rows] == [None, None, None, pytest.approx(0.2), pytest.approx(-0.3),
                                                  pytest.approx(0.2)]
    assert rows[3]["r_vs_trailing4"] is None
    assert rows[4]["r_vs_trailing4"] == pytest.approx(0.2 - (0.1 + 0.3 + 0.5) / 3)
    assert rows[5]["r_vs_trailing4"] == pytest.approx(0.4 - (0.3 + 0.5 + 0.2) / 3)
    assert [row["mentions_growth_rate"] for row in rows][:3] == [None, 1.0, 0.5]


@pytest.mark.parametrize("table, record", [("metrics", "Metric"), ("lang_metrics", "LangMetric"),
                                           ("topic_metrics", "TopicMetric"), ("alerts", "Alert")])
def test_new_records_agree_with_their_schemas(table, record):
    import typing

    import schemas.records as records
    from schemas import TABLES

    fields, schema = TABLES[table].fields, TABLES[table].schema
    cls = getattr(records, record)
    assert list(cls._fields) == schema.names == [f.name for f in fields]
    hints = typing.get_type_hints(cls)
    for fld in fields:
        assert schema.field(fld.name).nullable == fld.nullable
        assert (hints[fld.name] == typing.Optional[fld.pytype]) == fld.nullable, fld.name
    for rate in METRIC_CHANGE_RATES:
        if table in ("metrics", "lang_metrics"):
            assert rate in schema.names and f"{rate}_change" in schema.names and f"{rate}_vs_trailing4" in schema.names
