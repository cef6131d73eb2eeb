"""Early warnings: they fire on an injected spike, stay quiet on noise, and carry what triggered them."""

from __future__ import annotations

import datetime
import math
import pathlib
import pickle
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from schemas.config import AlertThresholds, ConfigError, parse_config
from tests.support.metric_rows import bm
from transforms.alerts import DetectAlerts, Figures, brand_words, detect, robust_z
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


def test_brand_words_are_the_names_handles_and_hashtags_not_the_query_context():
    config = parse_config({"brands": [
        {"id": "samsung", "names": ["Samsung", "Самсунг"], "handles": ["SamsungMobile"], "hashtags": ["Galaxy"]},
        {"id": "google", "names": ["Google"], "query": "Pixel NEAR/4 (phone OR батарея)"},
        {"id": "apple", "names": ["Ајфон", "Apple's"], "transliterate": True}]})
    words = brand_words(config)
    assert words["samsung"] == ("galaxy", "samsung", "samsungmobile", "самсунг")
    # The query's context words ("батарея") are what complaints are about: never left out.
    assert words["google"] == ("google",)
    assert words["apple"] == ("ajfon", "apple", "аппле", "ајфон")  # as the matcher spells them


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


def _detect(p, name: str, rows: list, config, path: pathlib.Path) -> None:
    """Adds to pipeline `p` the metrics and alerts of `rows` under `config`; the alerts are pickled into `path`."""
    mentions = p | f"{name}Mentions" >> beam.Create(rows)
    dates = p | f"{name}Dates" >> beam.Create(sorted({r.created_at.date() for r in rows}))
    metrics = ((mentions, dates) | f"{name}Metrics" >> ComputeMetrics(config))["metrics"]
    alerts = (metrics, mentions) | f"{name}Alerts" >> DetectAlerts(config)
    _ = (alerts | f"{name}ToList" >> beam.combiners.ToList()
         | f"{name}Save" >> beam.Map(lambda a: path.write_bytes(pickle.dumps(a))))


@pytest.fixture(scope="module")
def detected(tmp_path_factory) -> dict:
    """The alerts of `_mentions()` (PIPE_CONFIG) and of `_why_mentions()` (WHY_CONFIG): one pipeline, two branches."""
    folder = tmp_path_factory.mktemp("alerts")
    with TestPipeline() as p:
        _detect(p, "Spike", _mentions(), PIPE_CONFIG, folder / "spike.pkl")
        _detect(p, "Why", _why_mentions(), WHY_CONFIG, folder / "why.pkl")
    return {name: pickle.loads((folder / f"{name}.pkl").read_bytes()) for name in ("spike", "why")}


@pytest.fixture(scope="module")
def pipeline_alerts(detected):
    return detected["spike"]


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
    # The brand's own name and handle, the link and stop words are left out; ties in order of the folded
    # word. A word of one mention only ('queue', from the day's other complaint) is no pattern.
    assert alert.top_terms == ["awful", "everywhere", "exploded", "leak"]
    assert alert.top_term_mentions == [20, 20, 20, 20]
    # The 20 posts are one text with 20 links: one representative post stands for all of them (the day's other
    # complaint is the second), and no key phrase (a phrase needs two distinct posts). No reach is reported.
    assert (alert.post_copies, alert.post_reach, alert.key_phrases) == ([20, 1], [None, None], [])
    assert alert.post_excerpts == ["@Sprite my Sprite can exploded, awful leak everywhere https://t.co/0",
                                   "meh, the queue was long"]
    assert alert.post_ids == ["spike-0", "sprite-24-neg"] and alert.post_urls == [None, None]
    assert alert.summary.startswith("sprite: negative mentions 21 in the day of 2026-09-25, against a median of 1 ")
    assert "product_quality (20)" in alert.summary
    (drop,) = [a for a in pipeline_alerts if a.alert == "share_of_voice_drop"]
    assert drop.z_threshold == -DEFAULTS.z_threshold and drop.z_score <= -DEFAULTS.z_threshold
    assert drop.value == pytest.approx(drop.share_of_voice)
    assert drop.baseline_median - drop.value >= DEFAULTS.min_share_of_voice_drop


# ---- the why of an alert: a realistic multilingual spike -----------------------------------------

WHY_CONFIG = parse_config({"brands": [
    {"id": "glovo", "names": ["Glovo", "Глово"], "handles": ["Glovo_ES"], "transliterate": True,
     "competitors": ["wolt"]},
    {"id": "wolt", "names": ["Wolt"], "competitors": ["glovo"]},
]})
WHY_SPIKE = 24  # 2026-09-25
# The brand's everyday talk, filler included: the baseline the spike's phrases are compared with.
_EVERYDAY = [
    ("en", "ordered sushi on Glovo tonight, really quick today"),
    ("en", "Glovo courier was so nice, thanks!"),
    ("en", "is Glovo any good in Belgrade? I mean the app"),
    ("ru", "Заказал пиццу через Глово, кто-нибудь пробовал их роллы?"),
    ("ru", "Глово сегодня быстро привезли, курьер вежливый"),
    ("uk", "Замовила каву через Глово, все добре"),
    ("sr", "Naručio sam ćevape preko Glova, stigli su brzo, ništa loše"),
    ("hr", "Glovo dostavljač je bio ljubazan, nisu kasnili"),
    ("sr", "Наручио сам пицу преко Глова, све у реду"),
    ("bs", "Mogu li platiti gotovinom na Glovu?"),
]
_COMPLAINTS = [  # (id, lang, text, platform, author, followers, likes, url)
    ("c01", "en", "@Glovo_ES you double charged me for one order!! I want a refund", "x", "ana_k", 12000, 40,
     "https://x.com/ana_k/status/1970000000000000001"),
    ("1970000000000000002", "en", "Glovo double charged me again, two payments for one order. Refund please", "x",
     "mike_b", 1000, 3, None),
    ("c03", "en", "double charged by Glovo, support says nothing. really?", "mastodon", "lena", 300, 1, None),
    ("at://did:plc:tom42/app.bsky.feed.post/3kq2tomx", "en",
     "Got double charged on Glovo today and the delivery was late", "bluesky", "tom.bsky.social", 5000, 12, None),
    ("c05", "ru", "Глово списали деньги дважды за один заказ, поддержка молчит", "x", "ivan_p", 2500, 8, None),
    ("c06", "ru", "Доставка опоздала на два часа, а деньги списали дважды. Кто-нибудь ещё?", "x", "olga", 900, 5,
     None),
    ("c07", "ru", "доставка опоздала, еда холодная, Глово как обычно", "x", "dima", 150, 0, None),
    ("c08", "ru", "Опять доставка опоздала. Глово, верните деньги", "x", "katya", 60, 0, None),
    ("c09", "ru", "у меня тоже деньги списали дважды, Глово позор", "x", "sergey", 40, 1, None),
    ("c10", "uk", "Глово списали гроші двічі, доставка запізнилася на годину", "x", "oksana", 700, 2, None),
    ("c11", "sr", "Glovo mi je naplatio dvaput istu porudžbinu, dostava kasni dva sata", "x", "marko", 1500, 6,
     None),
    ("c12", "sr", "Глово ми је наплатио двапут, достава касни", "x", "jelena", 400, 2, None),
    ("c13", "hr", "Glovo naplatio dvaput, dostava kasni, nitko ne odgovara", "x", "ivana", 350, 1, None),
    ("c14", "en", "", "x", "silent", 20, 0, None),  # a post without text (an image, say)
]
# Copies of c01: retweets and the same text with another link or handle.
_COPIES = [
    ("r1", "RT @ana_k: @Glovo_ES you double charged me for one order!! I want a refund", "fan1", 100, True),
    ("r2", "RT @ana_k: @Glovo_ES you double charged me for one order!! I want a refund", "fan2", 50, True),
    ("r3", "@GlovoHelp you double charged me for one order!! I want a refund https://t.co/zz", "fan3", 30, False),
    # c05 with the brand in Latin letters: a copy, not a second voice for its phrases.
    ("r4", "Glovo списали деньги дважды за один заказ, поддержка молчит", "fan4", 8, False),
]


def _why_mentions():
    rows, rng = [], random.Random(5)
    for day in range(30):
        ts = datetime.datetime(2026, 9, 1, 9, tzinfo=UTC) + datetime.timedelta(days=day)
        for k in range(6 + rng.randint(0, 2)):
            lang, text = _EVERYDAY[(day + k) % len(_EVERYDAY)]
            rows.append(bm(f"g-{day}-{k}", "glovo", ts + datetime.timedelta(minutes=k), lang=lang, text=text,
                           followers=rng.randint(10, 500)))
            rows.append(bm(f"w-{day}-{k}", "wolt", ts + datetime.timedelta(minutes=k), text="Wolt order on time"))
        rows.append(bm(f"g-{day}-neg", "glovo", ts, sentiment="negative", lang="en", text="the app is slow today",
                       followers=100))
    spike = datetime.datetime(2026, 9, 1, 12, tzinfo=UTC) + datetime.timedelta(days=WHY_SPIKE)
    for i, (mid, lang, text, platform, author, followers, likes, url) in enumerate(_COMPLAINTS):
        row = bm(mid, "glovo", spike + datetime.timedelta(minutes=i), platform=platform, sentiment="negative",
                 lang=lang, text=text, followers=followers, likes=likes, topics=["payment"])
        rows.append(row._replace(url=url, author_handle=author))
    for i, (mid, text, author, followers, is_repost) in enumerate(_COPIES):
        rows.append(bm(mid, "glovo", spike + datetime.timedelta(hours=1, minutes=i), sentiment="negative", lang="en",
                       text=text, followers=followers, is_repost=is_repost, topics=["payment"])
                    ._replace(author_handle=author))
    return rows


@pytest.fixture(scope="module")
def why_alert(detected):
    alerts = detected["why"]
    (alert,) = [a for a in alerts if a.brand_id == "glovo" and a.alert == "negative_spike" and a.period == "day"]
    return alert


def test_key_phrases_carry_the_complaint_in_each_language_not_filler(why_alert):
    phrases = why_alert.key_phrases
    assert phrases[0] == "double charged"
    # Word forms and both Serbian scripts folded: "dostava kasni" (2 Latin posts) and "достава касни" are one.
    assert {"доставка опоздала", "dostava kasni"} <= set(phrases)
    assert why_alert.key_phrase_posts[phrases.index("dostava kasni")] == 3
    words = {w for p in phrases for w in p.split()}
    # Filler the baseline uses as much (and the stop words of the issue) is not a key phrase; nor is the brand.
    assert not words & {"really", "today", "нибудь", "nisu", "ništa", "mogu", "note", "glovo", "глово"}
    assert why_alert.key_phrase_baseline_rates == [0.0] * len(phrases)
    assert why_alert.key_phrase_scores == sorted(why_alert.key_phrase_scores, reverse=True)
    assert "key phrases: double charged (4)" in why_alert.summary


def test_representative_posts_are_the_highest_reach_distinct_ones_with_links(why_alert):
    assert why_alert.post_ids == ["c01", "at://did:plc:tom42/app.bsky.feed.post/3kq2tomx", "c05", "c11",
                                  "1970000000000000002"]
    # c01's two retweets and its copy with another handle and a link are one post, their reach added;
    # c05 and its copy naming the brand "Glovo" rather than "Глово" are one post too.
    assert why_alert.post_copies == [4, 1, 2, 1, 1]
    assert why_alert.post_reach == [12_000 + 40 + 100 + 50 + 30, 5012, 2508 + 8, 1506, 1003]
    assert why_alert.post_urls == [
        "https://x.com/ana_k/status/1970000000000000001",  # its own url
        "https://bsky.app/profile/did:plc:tom42/post/3kq2tomx",  # built from the at:// id
        None,  # an x post whose id is no status id, and no url
        None,
        "https://x.com/mike_b/status/1970000000000000002",  # built from the status id and the handle
    ]
    assert why_alert.post_platforms == ["x", "bluesky", "x", "x", "x"]
    assert why_alert.post_authors == ["ana_k", "tom.bsky.social", "ivan_p", "marko", "mike_b"]
    assert why_alert.post_excerpts[0] == "@Glovo_ES you double charged me for one order!! I want a refund"
