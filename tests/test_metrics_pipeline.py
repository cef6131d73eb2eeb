"""The metric tables and alerts from the whole job (`pipelines.run`), read back as an analyst would.

A generated input of five weeks for three brands (one without competitors), in three
languages and platforms, with engagement counts, the brand account's own replies and a
negative spike, goes through the job with the keyword model of `tests/support/fake_model.py`. The
example DuckDB and pandas queries of docs/outputs.md run against the outputs.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import connectors.base
import connectors.x
from pipelines.run import run
from schemas.tables import TABLES
from tests.support.clock import freeze
from tests.support.fake_model import FakeSentimentHandler
from tests.support.inputs import METRICS_BRANDS_YAML as BRANDS_YAML
from tests.support.inputs import SPIKE
from tests.support.platforms import TOKEN, UTC, FakeX, serve, x_dataset

@pytest.fixture(scope="module")
def out(metrics_job):
    """The job's outputs on `tests.support.inputs.metrics_posts()` (the session's run, shared with test_report)."""
    return metrics_job


def _df(out, table):
    return ds.dataset(out / table, format="parquet", partitioning="hive").to_table().to_pandas()


def test_every_table_partitioned_by_period_and_compacted(out):
    for table in ("metrics", "lang_metrics", "topic_metrics"):
        assert sorted(p.name for p in (out / table).iterdir()) == [
            "period=day", "period=month", "period=quarter", "period=week"]
    assert sorted(p.name for p in (out / "alerts").iterdir()) == ["period=day", "period=week"]
    for table in ("metrics", "lang_metrics", "topic_metrics", "alerts"):
        schema = TABLES[table].schema
        for part in (out / table).iterdir():
            (f,) = part.glob("*.parquet")  # one file per partition at this size
            assert [x.name for x in pq.read_schema(f)] == [x.name for x in schema if x.name != "period"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"metrics", "lang_metrics", "topic_metrics", "alerts"} <= set(manifest["tables"])


def test_breakdowns_add_up_to_the_totals(out):
    metrics, langs = _df(out, "metrics"), _df(out, "lang_metrics")
    mentions = _df(out, "brand_mentions").groupby("brand_id").size().to_dict()
    for period in ("day", "week", "month", "quarter"):
        rows = metrics[metrics["period"] == period]
        assert rows[rows["platform"].isna()].groupby("brand_id")["mentions"].sum().to_dict() == mentions
        assert rows[rows["platform"].notna()].groupby("brand_id")["mentions"].sum().to_dict() == mentions
        by_lang = langs[langs["period"] == period]
        assert by_lang.groupby("brand_id")["mentions"].sum().to_dict() == mentions
        # One total row per brand and period start: `platform IS NULL` never double counts.
        assert not rows[rows["platform"].isna()].duplicated(["brand_id", "period_start"]).any()
    day = metrics[metrics["period"] == "day"]
    reddit = day[(day["brand_id"] == "cocacola") & (day["platform"] == "reddit")]
    assert reddit["impression_reporting_mentions"].sum() == 0 and reddit["engagement_rate_impressions"].isna().all()
    # "Coca-Cola with pizza" arrives without a lang: the job detects it (transforms.language), so no 'und'.
    assert set(langs[langs["brand_id"] == "cocacola"]["lang"]) == {"en", "ru"}
    assert langs["account_followers"].isna().all()


def test_midnight_utc_and_offsets(out):
    metrics = _df(out, "metrics")
    sunday = metrics[(metrics["period"] == "day") & (metrics["period_start"] == datetime.date(2026, 9, 6))
                     & (metrics["brand_id"] == "sprite") & metrics["platform"].isna()]
    # The day's 3 + 2 (an odd day) posts, and the ones at 23:59:59Z and at 00:30+01:00 on the 7th.
    assert int(sunday["mentions"].iloc[0]) == 3 + 2 + 2
    week = metrics[(metrics["period"] == "week") & (metrics["period_start"] == datetime.date(2026, 8, 31))
                   & (metrics["brand_id"] == "sprite") & metrics["platform"].isna()]
    assert int(week["days_in_run"].iloc[0]) == 6  # Tuesday 1st to Sunday 6th


def test_service_rate_from_the_brand_accounts_own_replies(out):
    metrics = _df(out, "metrics")
    spike = metrics[(metrics["period"] == "day") & (metrics["period_start"] == SPIKE)
                    & (metrics["brand_id"] == "sprite") & metrics["platform"].isna()].iloc[0]
    assert (spike["service_negative_mentions"], spike["answered_negative_mentions"]) == (25, 5)
    assert spike["negative_reply_rate"] == pytest.approx(0.2)
    assert spike["median_response_minutes"] == pytest.approx(45, rel=0.01)
    fanta = metrics[metrics["brand_id"] == "fanta"]
    assert fanta["service_negative_mentions"].isna().all()  # fanta's replies are unknown, not 0


def test_alerts_flag_the_spike_with_its_topics_and_terms(out):
    alerts = _df(out, "alerts")
    day = alerts[(alerts["period"] == "day") & (alerts["brand_id"] == "sprite")]
    spike = day[day["alert"] == "negative_spike"]
    assert list(spike["period_start"]) == [SPIKE]
    row = spike.iloc[0]
    # The baseline alternates 0 and 1 negative a day: median 0.5, MAD 0.5.
    assert (row["value"], row["baseline_median"], row["baseline_mad"]) == (25, 0.5, 0.5)
    assert row["z_score"] == pytest.approx(24.5 / 1.0)  # the Poisson floor sqrt(max(0.5, 1)) beats 1.4826 x 0.5
    assert list(row["top_topics"])[0] == "purchase_delivery" and list(row["top_topic_mentions"])[0] == 25
    assert {"order", "arrived", "broken", "awful"} <= set(row["top_terms"])
    assert "sprite" not in set(row["top_terms"])
    weekly = alerts[(alerts["period"] == "week") & (alerts["alert"] == "negative_spike")]
    assert list(zip(weekly["brand_id"], weekly["period_start"])) == [("sprite", datetime.date(2026, 9, 28))]
    # Nothing fires outside the spike's day and week.
    assert set(alerts["period_start"]) <= {SPIKE, datetime.date(2026, 9, 28)}


def test_topic_metrics_name_the_driver_of_negative_sentiment(out):
    topics = _df(out, "topic_metrics")
    week = topics[(topics["period"] == "week") & (topics["period_start"] == datetime.date(2026, 9, 28))
                  & (topics["brand_id"] == "sprite")].set_index("topic")
    assert week.loc["purchase_delivery", "negative_mentions"] == 25
    assert week.loc["purchase_delivery", "negative_share"] > week.loc["price_promotion", "negative_share"]


def _docs_examples(language: str) -> list:
    text = pathlib.Path("docs/outputs.md").read_text(encoding="utf-8")
    section = text[text.index("## Example queries"):]
    end = section.find("\n## ", 1)  # the section runs to the next heading of its level, or to the end
    return re.findall(rf"```{language}\n(.*?)```", section if end < 0 else section[:end], re.S)


def test_docs_duckdb_examples_run_on_the_outputs(out):
    queries = [q for block in _docs_examples("sql") for q in block.split(";") if q.strip()]
    assert len(queries) >= 5
    con = duckdb.connect()
    for query in queries:
        rows = con.execute(query.replace("'out/", f"'{out}/")).fetchall()
        assert rows, query


def test_docs_pandas_examples_run_on_the_outputs(out, monkeypatch):
    blocks = _docs_examples("python")
    assert blocks
    monkeypatch.chdir(out.parent)
    for block in blocks:
        scope: dict = {}
        exec(compile(block, "docs/outputs.md", "exec"), scope)  # noqa: S102 - the docs' own examples
        frames = [v for v in scope.values() if isinstance(v, (pd.DataFrame, pd.Series))]
        assert frames and all(len(f) for f in frames), block


# ---- with the X connector: the brand's replies and account snapshots from the platform --------

# A fixed instant: the posts, the fetch window and the account snapshot's time all lie on 2026-09-10, whatever the
# day the test runs (the connector's clock is frozen there; full-archive search reaches back to it).
FETCHED_AT = datetime.datetime(2026, 9, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def x_fake(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    for module in (connectors.base, connectors.x):  # the posts' fetch time and the snapshot's, and the bounds
        freeze(monkeypatch, module, FETCHED_AT)
    tweets, users = x_dataset(FETCHED_AT)
    with serve(FakeX(tweets, users)) as fake:
        yield fake


def test_x_connector_replies_and_snapshots_feed_service_and_audience(tmp_path, x_fake):
    (tmp_path / "brands.yaml").write_text(BRANDS_YAML, encoding="utf-8")
    out = tmp_path / "out"
    run(["--config", str(tmp_path / "brands.yaml"), "--output_dir", str(out), "--source", "x", "--x_base_url",
         x_fake.url, "--x_search", "all", "--start_time", "2026-09-10T00:00:00Z", "--end_time",
         "2026-09-10T20:00:00Z", "--http_timeout", "2", "--http_max_attempts", "2"],
        model_handler=FakeSentimentHandler())
    mentions = _df(out, "brand_mentions")
    complaint = next(t for t in x_fake.tweets if t["text"].startswith("@Sprite your can"))
    day = datetime.datetime.fromisoformat(complaint["created_at"].replace("Z", "+00:00")).date()
    assert day == FETCHED_AT.date()
    sprite_x = mentions[(mentions["brand_id"] == "sprite") & (mentions["platform"] == "x")
                        & (mentions["sentiment"] == "negative") & ~mentions["is_repost"].fillna(False).astype(bool)
                        & (mentions["created_at"].dt.date == day)]
    metrics = _df(out, "metrics")
    row = metrics[(metrics["period"] == "day") & (metrics["period_start"] == day) & (metrics["brand_id"] == "sprite")
                  & (metrics["platform"] == "x")].iloc[0]
    assert row["service_negative_mentions"] == len(sprite_x) and row["answered_negative_mentions"] == 1
    assert row["median_response_minutes"] == pytest.approx(20, rel=0.01)  # the first of its two replies
    (snapshot,) = _df(out, "account_snapshots").query("handle == 'Sprite'")["fetched_at"]
    assert snapshot == FETCHED_AT
    snap = metrics[(metrics["period"] == "day") & (metrics["period_start"] == FETCHED_AT.date())
                   & (metrics["brand_id"] == "sprite") & metrics["platform"].isna()]
    assert len(snap) == 1
    assert snap.iloc[0]["account_followers"] == 250_000 and pd.isna(snap.iloc[0]["follower_growth_rate"])
    coke = metrics[(metrics["brand_id"] == "cocacola") & (metrics["platform"] == "x")]
    assert (coke["service_negative_mentions"].dropna() >= 0).all() and coke["service_negative_mentions"].notna().any()
