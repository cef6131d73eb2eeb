"""Early warnings: they fire on an injected spike, stay quiet on noise, and carry what triggered them."""

from __future__ import annotations

import datetime
import math
import pickle
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from schemas.config import AlertThresholds, ConfigError, parse_config
from tests.support.metric_rows import bm
from transforms.alerts import DetectAlerts, Figures, brand_prefixes, detect, robust_z, terms_of
from transforms.metrics import ComputeMetrics

UTC = datetime.timezone.utc
DEFAULTS = AlertThresholds()
DAY0 = datetime.date(2026, 1, 1)


def _day(i: int) -> str:
    return (DAY0 + datetime.timedelta(days=i)).isoformat()


def noise(seed: int, days: int = 90, mean: float = 100, p: float = 0.1, sov: float = 0.5, set_mentions: int = 200):
    """A brand's daily figures: Poisson-like volume, binomial negatives and share of voice."""
    rng = random.Random(seed)
    out = []
    for i in range(days):
        mentions = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        negative = sum(rng.random() < p for _ in range(mentions))
        brand = sum(rng.random() < sov for _ in range(set_mentions))
        out.append((_day(i), Figures(mentions, negative, negative / mentions if mentions else None,
                                     brand / set_mentions, set_mentions)))
    return out


def _alerts(series, period="day", thresholds=DEFAULTS):
    return [(start, kind) for start, kind, _metric, _rz, _n, _value in detect(series, period, thresholds)]


def test_robust_z_by_hand():
    # median 3; deviations 2 1 0 1 97 -> MAD 1; 1.4826 x 1 < the Poisson floor sqrt(3)
    rz = robust_z(10, [1, 2, 3, 4, 100], floor=math.sqrt(3))
    assert (rz.median, rz.mad, rz.scale) == (3, 1, pytest.approx(math.sqrt(3)))
    assert rz.z == pytest.approx(7 / math.sqrt(3))
    wide = robust_z(10, [0, 10, 20, 30, 40], floor=1.0)  # median 20, MAD 10
    assert (wide.scale, wide.z) == (pytest.approx(14.826), pytest.approx(-10 / 14.826))


def test_quiet_on_noise():
    flagged = days = 0
    for seed in range(40):
        series = noise(seed, days=120)
        flagged += len(_alerts(series))
        days += len(series)
    # Poisson tails beyond 3.5 robust sigmas: a few per thousand brand-days at most.
    assert flagged / days < 0.005
    assert _alerts(noise(7)) == []


def test_fires_on_an_injected_spike_with_its_figures():
    series = noise(7)
    start, fig = series[60]
    series[60] = (start, fig._replace(negative_mentions=45, negative_rate=45 / fig.mentions))
    got = list(detect(series, "day", DEFAULTS))
    assert [(s, kind) for s, kind, *_ in got] == [(start, "negative_spike"), (start, "negative_rate_spike")]
    _s, _k, metric, rz, n, value = got[0]
    baseline = [f.negative_mentions for _d, f in series[32:60]]
    assert (metric, value, n) == ("negative_mentions", 45.0, 28)
    assert rz.median == sorted(baseline)[13] / 2 + sorted(baseline)[14] / 2
    assert rz.z >= DEFAULTS.z_threshold and rz.z == pytest.approx((45 - rz.median) / rz.scale)
    assert _alerts(series[:60] + series[61:]) == []  # nothing else


@pytest.mark.parametrize("baseline, value, fires", [
    ([1] * 20, 2, False),  # 2 negatives after 1 is not a spike
    ([0] * 20, 9, False),  # below min_negative_mentions (10), however flat the baseline
    ([0] * 20, 12, True),  # 12 against a flat zero: z = 12 / 1
    ([10, 12, 9, 11, 10, 13, 8, 10, 11, 9], 16, False),  # within Poisson noise of ~10
    ([10, 12, 9, 11, 10, 13, 8, 10, 11, 9], 25, True),
])
def test_minimum_volume_and_noise_floor(baseline, value, fires):
    series = [(_day(i), Figures(100, n, n / 100, None, None)) for i, n in enumerate(baseline + [value])]
    kinds = {kind for start, kind in _alerts(series) if start == _day(len(baseline))}
    assert ("negative_spike" in kinds) is fires


def test_too_short_a_baseline_never_alerts():
    series = [(_day(i), Figures(100, n, n / 100, 0.5, 200)) for i, n in enumerate([1, 1, 1, 1, 1, 90])]
    assert _alerts(series) == []  # 5 days before it, 7 needed
    assert _alerts(series, thresholds=AlertThresholds(min_baseline_periods={"day": 5, "week": 3})) != []


def test_share_of_voice_drop():
    series = noise(11)
    start, fig = series[70]
    series[70] = (start, fig._replace(share_of_voice=0.3))
    assert _alerts(series) == [(start, "share_of_voice_drop")]
    # A brand without competitors has no share of voice: nothing to test.
    assert _alerts([(d, f._replace(share_of_voice=None, competitive_set_mentions=None)) for d, f in series]) == []
    # A significant drop smaller than min_share_of_voice_drop stays quiet.
    flat = [(_day(i), Figures(100, 10, 0.1, 0.5, 100_000)) for i in range(30)]
    flat.append((_day(30), Figures(100, 10, 0.1, 0.46, 100_000)))
    assert _alerts(flat) == []
    flat[-1] = (_day(30), Figures(100, 10, 0.1, 0.44, 100_000))
    assert _alerts(flat) == [(_day(30), "share_of_voice_drop")]


def test_negative_rate_needs_enough_mentions():
    series = [(_day(i), Figures(12, 1, 1 / 12, None, None)) for i in range(20)]
    series.append((_day(20), Figures(12, 11, 11 / 12, None, None)))  # 12 < min_mentions (20)
    assert _alerts(series) == [(_day(20), "negative_spike")]


def test_terms_leave_out_stop_words_links_handles_and_the_brand():
    excluded = brand_prefixes(parse_config({"brands": [
        {"id": "samsung", "names": ["Samsung", "Самсунг"], "handles": ["SamsungMobile"]}]}))["samsung"]
    assert excluded == ("samsung", "samsungmobile", "самсунг")
    text = ("У меня тоже вздулась батарея на Самсунге! @SamsungMobile https://t.co/x1 это позор, батарея "
            "and the Samsung's battery is overheating")
    assert terms_of(text, excluded) == ("вздулась", "батарея", "позор", "battery", "overheating")


@pytest.mark.parametrize("section, message", [
    ({"z_threshold": "high"}, "alerts.z_threshold: expected a number"),
    ({"z_threshold": 0}, "alerts.z_threshold: expected a number >= 0.5"),
    ({"min_negative_mentions": 2.5}, "alerts.min_negative_mentions: expected an integer"),
    ({"periods": ["fortnight"]}, "alerts.periods[0]: unknown period 'fortnight'"),
    ({"baseline_periods": {"day": 0}}, "alerts.baseline_periods.day: expected an integer >= 1"),
    ({"baseline_periods": {"year": 3}}, "alerts.baseline_periods: unknown period(s) ['year']"),
    ({"min_baseline_periods": 10, "baseline_periods": 5}, "alerts.min_baseline_periods.day: 10 is more than"),
    ({"min_share_of_voice_drop": 2}, "alerts.min_share_of_voice_drop: expected a number in [0.0, 1.0]"),
    ({"thresholds": 1}, "alerts: unknown key(s) ['thresholds']"),
    ([1, 2], "alerts: expected a mapping"),
])
def test_alert_config_errors_name_the_field(section, message):
    with pytest.raises(ConfigError) as err:
        parse_config({"brands": [{"id": "a", "names": ["A"]}], "alerts": section}, "b.yaml")
    assert str(err.value).startswith("b.yaml: ") and message in str(err.value)


def test_alert_config_defaults_and_overrides():
    assert parse_config({"brands": [{"id": "a", "names": ["A"]}]}).alerts == AlertThresholds()
    cfg = parse_config({"brands": [{"id": "a", "names": ["A"]}], "alerts": {
        "periods": ["week"], "baseline_periods": {"week": 12}, "z_threshold": 3, "top_terms": 3}}).alerts
    assert cfg.periods == ("week",) and cfg.baseline_periods["week"] == 12 and cfg.baseline_periods["day"] == 28
    assert cfg.z_threshold == 3.0 and cfg.top_terms == 3 and cfg.min_mentions == 20
    with pytest.raises(ConfigError, match="unknown top-level key"):
        parse_config({"brands": [{"id": "a", "names": ["A"]}], "alert": {}})


# ---- through Beam, from mentions to Alert rows --------------------------------------------------

PIPE_CONFIG = parse_config({"brands": [
    {"id": "sprite", "names": ["Sprite"], "handles": ["Sprite"], "competitors": ["cocacola"]},
    {"id": "cocacola", "names": ["Coca-Cola"], "competitors": ["sprite"]},
]})
SPIKE_DAY = 24  # 2026-09-25, a Friday


def _mentions():
    rows, rng = [], random.Random(3)
    for day in range(30):
        ts = datetime.datetime(2026, 9, 1, 9, tzinfo=UTC) + datetime.timedelta(days=day)
        for brand in ("sprite", "cocacola"):
            for k in range(3 + rng.randint(0, 2)):
                rows.append(bm(f"{brand}-{day}-{k}", brand, ts + datetime.timedelta(minutes=k), text="nice day"))
            rows.append(bm(f"{brand}-{day}-neg", brand, ts, sentiment="negative", text="meh, the queue was long",
                           topics=["service"]))
        if day == SPIKE_DAY:
            for k in range(20):
                rows.append(bm(f"spike-{k}", "sprite", ts + datetime.timedelta(hours=1, minutes=k),
                               sentiment="negative", topics=["product_quality", "safety"][:1 + k % 2],
                               text=f"@Sprite my Sprite can exploded, awful leak everywhere https://t.co/{k}"))
    return rows


@pytest.fixture(scope="module")
def pipeline_alerts(tmp_path_factory):
    path = tmp_path_factory.mktemp("alerts") / "alerts.pkl"
    rows = _mentions()
    with TestPipeline() as p:
        mentions = p | "Mentions" >> beam.Create(rows)
        dates = p | "Dates" >> beam.Create(sorted({r.created_at.date() for r in rows}))
        metrics = ((mentions, dates) | ComputeMetrics(PIPE_CONFIG))["metrics"]
        alerts = (metrics, mentions) | DetectAlerts(PIPE_CONFIG)
        _ = alerts | beam.combiners.ToList() | beam.Map(lambda a: path.write_bytes(pickle.dumps(a)))
    return pickle.loads(path.read_bytes())


def test_pipeline_flags_the_spike_and_only_it(pipeline_alerts):
    spike = datetime.date(2026, 9, 1) + datetime.timedelta(days=SPIKE_DAY)
    got = sorted((a.period, a.period_start.isoformat(), a.brand_id, a.alert) for a in pipeline_alerts)
    assert got == [
        ("day", spike.isoformat(), "cocacola", "share_of_voice_drop"),
        ("day", spike.isoformat(), "sprite", "negative_rate_spike"),
        ("day", spike.isoformat(), "sprite", "negative_spike"),
        ("week", "2026-09-21", "sprite", "negative_rate_spike"),
        ("week", "2026-09-21", "sprite", "negative_spike"),
    ]


def test_alert_rows_carry_the_figures_topics_and_terms(pipeline_alerts):
    (alert,) = [a for a in pipeline_alerts if a.alert == "negative_spike" and a.period == "day"]
    assert (alert.value, alert.negative_mentions, alert.baseline_median, alert.baseline_mad) == (21, 21, 1, 0)
    assert (alert.baseline_periods, alert.baseline_scale) == (SPIKE_DAY, 1.0)
    assert alert.z_score == pytest.approx(20.0) and alert.z_threshold == DEFAULTS.z_threshold
    assert alert.metric == "negative_mentions" and alert.negative_rate == pytest.approx(21 / alert.mentions)
    assert (alert.top_topics, alert.top_topic_mentions) == (["product_quality", "safety", "service"], [20, 10, 1])
    # The brand's own name and handle, the link and stop words are left out; ties in alphabetical order.
    # A word of one mention only ('queue', from the day's other complaint) is no pattern.
    assert alert.top_terms == ["awful", "everywhere", "exploded", "leak"]
    assert alert.top_term_mentions == [20, 20, 20, 20]
    assert alert.summary.startswith("sprite: negative mentions 21 in the day of 2026-09-25, against a median of 1 ")
    assert "product_quality (20)" in alert.summary and "exploded (20)" in alert.summary
    (drop,) = [a for a in pipeline_alerts if a.alert == "share_of_voice_drop"]
    assert drop.z_threshold == -DEFAULTS.z_threshold and drop.z_score <= -DEFAULTS.z_threshold
    assert drop.value == pytest.approx(drop.share_of_voice)
    assert drop.baseline_median - drop.value >= DEFAULTS.min_share_of_voice_drop
