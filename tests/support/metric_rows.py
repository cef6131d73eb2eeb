"""BrandMention rows written by hand, and the ComputeMetrics harness that the metric tests run them through.

`bm(...)` builds one matched mention with only what a test sets (the rest unknown, as a
platform that does not report it); `compute_metrics` runs `transforms.metrics.ComputeMetrics`
on them in a real Beam pipeline, checks every row against the schema's own rules and
returns the rows by key.
"""

from __future__ import annotations

import datetime
import pickle

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas import BrandMention
from schemas.config import parse_config
from transforms.metrics import ComputeMetrics

UTC = datetime.timezone.utc
CONFIG = parse_config({"brands": [
    {"id": "sprite", "names": ["Sprite"], "handles": ["Sprite", "SpriteHelp"], "competitors": ["cocacola"]},
    {"id": "cocacola", "names": ["Coca-Cola"], "handles": ["CocaCola"], "competitors": ["sprite"]},
    {"id": "fanta", "names": ["Fanta"]},  # no competitive set
]})


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 9, year: int = 2026
       ) -> datetime.datetime:
    """A UTC time, in September 2026 unless told."""
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def bm(mid, brand, ts, platform="x", kind="untagged", sentiment="neutral", author=None, followers=None,
       likes=None, reposts=None, replies=None, quotes=None, impressions=None, lang=None, is_repost=None,
       topics=(), text="t") -> BrandMention:
    """One matched mention of `brand`: what a test does not set is unknown (None), as a platform that does not
    report it."""
    probs = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}[sentiment]
    return BrandMention(
        mention_id=mid, platform=platform, created_at=ts, text=text, lang=lang, brand_id=brand, match_kind=kind,
        matched_term="x", matched_rule="names", sentiment=sentiment, p_negative=probs[0], p_neutral=probs[1],
        p_positive=probs[2], sentiment_target="post", model_id="m", url=None, author_id=author, author_handle=None,
        author_followers=followers, is_repost=is_repost, repost_of=None, is_reply=None, reply_to=None,
        is_quote=None, quote_of=None, conversation_id=None, likes=likes, reposts=reposts, replies=replies,
        quotes=quotes, impressions=impressions, bookmarks=None, fetched_at=None, connector="file", query=None,
        topics=list(topics), topic_scores={t: 0.9 for t in topics})


def _dump(rows: list, path: str) -> None:
    with open(path, "wb") as fh:
        pickle.dump(rows, fh)


def compute_metrics(tmp_path_factory, name: str, inputs: dict) -> dict:
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
        assert_that(out["metrics"], all_rows_consistent, label="MetricsConsistent")
        assert_that(out["lang_metrics"], all_rows_consistent, label="LangMetricsConsistent")
        _ = rows | beam.combiners.ToList() | beam.Map(_dump, path)
    with open(path, "rb") as fh:
        got = pickle.load(fh)
    assert {type(m).__name__ for m in got} == {"Metric", "LangMetric"}
    return {(m.brand_id, m.period, m.period_start.isoformat(), getattr(m, "platform", None),
             getattr(m, "lang", None)): m for m in got}


def all_rows_consistent(rows) -> None:
    """Every Metric or LangMetric row keeps the schema's own rules: rates in range, counts that add up."""
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
