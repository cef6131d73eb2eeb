"""Early warnings: spikes in negative talk and drops in share of voice, against each brand's own baseline.

For each brand and period of the checked types (config `alerts.periods`, default day
and week), all platforms and languages together, three tests against the trailing
baseline (the `baseline_periods` periods before, at least `min_baseline_periods`):

- `negative_spike`: negative mentions, robust z >= z_threshold, and at least
  `min_negative_mentions` of them (so that 2 negatives after 1 is not a spike);
- `negative_rate_spike`: negative rate, robust z >= z_threshold, at least
  `min_mentions` mentions and `min_negative_mentions` negatives;
- `share_of_voice_drop`: share of voice, robust z <= -z_threshold, at least
  `min_share_of_voice_drop` below the baseline median, and a competitive set with at
  least `min_mentions` mentions.

The robust z-score is (value - median) / max(1.4826 x MAD, floor), with MAD the
median absolute deviation of the baseline. The floor keeps a flat baseline (MAD 0)
from turning any change into an infinite z: sqrt(max(median, 1)) for counts (Poisson
noise), sqrt(p(1 - p) / n) for rates (binomial noise of the current period's n, with p
the baseline median held in [0.05, 0.95]).

Each alert carries the figures that triggered it and the top topics and terms of the
brand's negative mentions in that period: a second pass over the negative mentions
of the alerted (brand, period) keys only, with a per-key term count.
"""

from __future__ import annotations

import collections
import datetime
import math
import re
import typing

import apache_beam as beam
from apache_beam.pvalue import AsDict

from schemas import BrandMention, Metric
from schemas.config import AlertThresholds, BrandConfig
from schemas.records import Alert
from transforms.inflection import fold
from transforms.metrics import period_start

MAD_TO_SIGMA = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal data
_RATE_CLAMP = (0.05, 0.95)
MIN_TERM_MENTIONS = 2  # a term listed in an alert is used by at least this many of its negative mentions
_MAX_TERMS = 20_000  # per alert key; beyond it the rarest terms are dropped (very large spikes only)


class Figures(typing.NamedTuple):
    """What the tests read from one `metrics` row (all platforms together)."""

    mentions: int
    negative_mentions: int
    negative_rate: typing.Optional[float]
    share_of_voice: typing.Optional[float]
    competitive_set_mentions: typing.Optional[int]


def median(values: typing.Sequence[float]) -> float:
    """The median (mean of the two middle values for an even count) of a non-empty sequence."""
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


class RobustZ(typing.NamedTuple):
    z: float
    median: float
    mad: float
    scale: float


def robust_z(value: float, baseline: typing.Sequence[float], floor: float) -> RobustZ:
    """(value - median) / max(1.4826 x MAD, floor) over a non-empty baseline.

    Args:
        value: The current period's value.
        baseline: The baseline periods' values.
        floor: The smallest scale allowed (> 0): the noise a flat baseline cannot show.

    Returns:
        The z-score with the median, MAD and scale it used.
    """
    med = median(baseline)
    mad = median([abs(x - med) for x in baseline])
    scale = max(MAD_TO_SIGMA * mad, floor)
    return RobustZ((value - med) / scale, med, mad, scale)


def count_floor(baseline_median: float) -> float:
    """Poisson noise of a count around the baseline median (at least 1)."""
    return math.sqrt(max(baseline_median, 1.0))


def rate_floor(baseline_median: float, n: int) -> float:
    """Binomial noise of a rate over n trials around the baseline median (held in [0.05, 0.95])."""
    p = min(max(baseline_median, _RATE_CLAMP[0]), _RATE_CLAMP[1])
    return math.sqrt(p * (1 - p) / max(n, 1))


def _figures(metric: Metric):
    return ((metric.brand_id, metric.period),
            (metric.period_start.isoformat(), Figures(metric.mentions, metric.negative_mentions, metric.negative_rate,
                                                      metric.share_of_voice, metric.competitive_set_mentions)))


def detect(series: typing.Sequence[typing.Tuple[str, Figures]], period: str,
           thresholds: AlertThresholds) -> typing.Iterator[typing.Tuple[str, str, str, RobustZ, int, float]]:
    """Runs the three tests along one brand's dense series.

    Args:
        series: (period_start ISO date, Figures) of every period of the run, any order.
        period: The series' period type.
        thresholds: The configured thresholds.

    Yields:
        (period_start, alert, metric, RobustZ, baseline periods used, value) for each alert.
    """
    series = sorted(series)
    size, least = thresholds.baseline_periods[period], thresholds.min_baseline_periods[period]
    z_min = thresholds.z_threshold
    for i, (start, fig) in enumerate(series):
        window = [f for _s, f in series[max(0, i - size):i]]
        if len(window) < least:
            continue
        if fig.negative_mentions >= thresholds.min_negative_mentions:
            base = [float(w.negative_mentions) for w in window]
            rz = robust_z(fig.negative_mentions, base, count_floor(median(base)))
            if rz.z >= z_min:
                yield start, "negative_spike", "negative_mentions", rz, len(base), float(fig.negative_mentions)
        if (fig.negative_rate is not None and fig.mentions >= thresholds.min_mentions
                and fig.negative_mentions >= thresholds.min_negative_mentions):
            base = [w.negative_rate for w in window if w.negative_rate is not None]
            if len(base) >= least:
                rz = robust_z(fig.negative_rate, base, rate_floor(median(base), fig.mentions))
                if rz.z >= z_min:
                    yield start, "negative_rate_spike", "negative_rate", rz, len(base), fig.negative_rate
        if fig.share_of_voice is not None and (fig.competitive_set_mentions or 0) >= thresholds.min_mentions:
            base = [w.share_of_voice for w in window if w.share_of_voice is not None]
            if len(base) >= least:
                rz = robust_z(fig.share_of_voice, base, rate_floor(median(base), fig.competitive_set_mentions))
                if rz.z <= -z_min and rz.median - fig.share_of_voice >= thresholds.min_share_of_voice_drop:
                    yield start, "share_of_voice_drop", "share_of_voice", rz, len(base), fig.share_of_voice


def _detect_series(keyed, thresholds: AlertThresholds):
    (brand_id, period), values = keyed
    values = list(values)
    figures = dict(values)
    for start, alert, metric, rz, n, value in detect(values, period, thresholds):
        fig = figures[start]
        yield (brand_id, period, start), {
            "brand_id": brand_id, "period": period, "alert": alert, "metric": metric, "value": value,
            "baseline_median": rz.median, "baseline_mad": rz.mad, "baseline_scale": rz.scale,
            "baseline_periods": n, "z_score": rz.z,
            "z_threshold": -thresholds.z_threshold if alert == "share_of_voice_drop" else thresholds.z_threshold,
            "mentions": fig.mentions, "negative_mentions": fig.negative_mentions,
            "negative_rate": fig.negative_rate, "share_of_voice": fig.share_of_voice,
            "competitive_set_mentions": fig.competitive_set_mentions,
        }


# ---- top terms of the negative mentions -----------------------------------------------------

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_WORD = re.compile(r"[^\W\d_]{3,}")  # letters only, 3 or more

# Frequent function words of en, ru, uk, sr and hr (folded): never a useful "top term".
STOP_WORDS = frozenset(fold(w) for w in """
    the and for are but not you your yours all any can had has have her his him its our out was were will with
    this that these those than then them they their there here what when where which who whom why how
    about after again also been before being both could did does doing down during each from further
    into just more most other over same should some such only own very off once too under until
    would shall may might must get got gets let lets one two now new yet even still really much many
    amp via its it's i'm don't can't won't isn't didn't doesn't
    это этот эта эти как что так уже или еще ещё все всё они она оно его ее её мне меня мой моя мои
    был была были быть есть нет для при про без над под после перед через когда тогда где там тут
    если чтобы только очень просто даже тоже также может можно нужно надо вот сейчас снова опять
    кто чем нас вас них ним ими себя свой своя свои который которая которые
    це цей ця ці що як так вже або ще все всі вони вона воно його мені мене мій моя мої
    був була були бути немає для при про без над під після перед через коли тоді там тут
    якщо щоб тільки дуже просто навіть теж також може можна треба знову хто нас вас них себе свій своя
    који која које шта што како тако већ или још све сви они она оно његов мени мене мој моја моји
    био била били бити није нема за при про без над под после пре кроз када тада где тамо овде
    ако само веома врло просто чак такође може треба опет ко нас вас њих себе свој своја ова овај
    koji koja koje sta sto kako tako vec ili jos sve svi oni ona ono njegov meni mene moj moja moji
    bio bila bili biti nije nema za pri bez nad pod posle poslije pre prije kroz kada tada gde gdje
    tamo ovde ovdje ako samo veoma vrlo prosto cak takodje takoder moze treba opet nas vas njih sebe
    svoj svoja ova ovaj ovo jer ali sam smo ste su je da se na od do iz te ne li
    like today day days time times know think want need make made going went still back well
    всего всех всем весь вся всю года году раз разу нет уже вот этом этой того тем чем себе меня два три
    день дня дней дні днів dva tri dana dan
    всього всіх року разу вже цього цієї цим тим
    jedan jedna jedno jednog jednom drugi druga drugo drugog drugom neki neka neko nesto jos vec kad
    један једна једно једног други друга друго другог неки нека неко нешто још већ кад
""".split())


def terms_of(text: str, excluded: typing.Sequence[str] = ()) -> typing.Tuple[str, ...]:
    """The distinct words of a text worth listing (lower case, in order of first use).

    Links and @handles are removed; words of fewer than 3 letters, stop words and words
    starting with one of `excluded` (folded brand names) are left out.
    """
    text = _HANDLE.sub(" ", _URL.sub(" ", text))
    out = []
    for word in _WORD.findall(text):
        low = word.lower()
        folded = fold(low)
        if folded in STOP_WORDS or any(folded.startswith(x) for x in excluded):
            continue
        out.append(low)
    return tuple(dict.fromkeys(out))


def brand_prefixes(config: BrandConfig) -> typing.Dict[str, typing.Tuple[str, ...]]:
    """Brand id -> the folded first words of its names, handles and hashtags (3+ letters)."""
    out = {}
    for brand in config.brands:
        names, handles, hashtags = brand.search_terms()
        words = {fold(t).replace("'", " ").split()[0] for t in names + handles + hashtags if fold(t).split()}
        out[brand.id] = tuple(sorted(w for w in words if len(w) >= 3))
    return out


class TopTermsFn(beam.CombineFn):
    """Counts, over negative mentions, in how many each term and each topic appear."""

    def create_accumulator(self):
        return collections.Counter(), collections.Counter()

    def add_input(self, acc, item):
        terms, topics = item
        acc[0].update(terms)
        acc[1].update(topics)
        return self._bounded(acc)

    def merge_accumulators(self, accs):
        terms, topics = self.create_accumulator()
        for t, p in accs:
            terms.update(t)
            topics.update(p)
        return self._bounded((terms, topics))

    @staticmethod
    def _bounded(acc):
        terms, _topics = acc
        if len(terms) > _MAX_TERMS:
            keep = terms.most_common(_MAX_TERMS // 2)
            terms.clear()
            terms.update(dict(keep))
        return acc

    def extract_output(self, acc):
        return acc


class NegativeMention(typing.NamedTuple):
    """What the top terms need of a negative mention (all that crosses to the side-input step)."""

    brand_id: str
    created_at: datetime.datetime
    text: str
    topics: typing.Tuple[str, ...]


def _negatives(row: BrandMention):
    if row.sentiment == "negative":
        yield NegativeMention(row.brand_id, row.created_at, row.text, tuple(dict.fromkeys(row.topics or ())))


def _negative_terms(row: NegativeMention, alert_keys, periods, excluded):
    item = None
    for period in periods:
        key = (row.brand_id, period, period_start(row.created_at, period).isoformat())
        if key in alert_keys:
            item = item or (terms_of(row.text, excluded.get(row.brand_id, ())), row.topics)
            yield key, item


def _top(counter: collections.Counter, n: int, least: int = 1) -> typing.List[typing.Tuple[str, int]]:
    return sorted((kv for kv in counter.items() if kv[1] >= least), key=lambda kv: (-kv[1], kv[0]))[:n]


def _fmt(value: float, metric: str) -> str:
    return f"{value:.0f}" if metric == "negative_mentions" else f"{value:.1%}"


def summary(alert: dict, topics, terms) -> str:
    """One sentence for people: what moved, against what, and what the complaints were about."""
    metric, period = alert["metric"], alert["period"]
    what = {"negative_spike": "negative mentions", "negative_rate_spike": "negative rate",
            "share_of_voice_drop": "share of voice"}[alert["alert"]]
    text = (f"{alert['brand_id']}: {what} {_fmt(alert['value'], metric)} in the {period} of "
            f"{alert['period_start']}, against a median of {_fmt(alert['baseline_median'], metric)} over the "
            f"{alert['baseline_periods']} {period}s before (robust z {alert['z_score']:+.1f})")
    if topics:
        text += "; negative topics: " + ", ".join(f"{t} ({n})" for t, n in topics)
    if terms:
        text += "; terms: " + ", ".join(f"{t} ({n})" for t, n in terms)
    return text + "."


def _to_alerts(keyed, top_n: int):
    (_brand, _period, start), groups = keyed
    counts = list(groups["terms"])
    terms, topics = counts[0] if counts else (collections.Counter(), collections.Counter())
    # A word used once is no pattern: terms need 2 mentions (topics, the model's own labels, 1).
    top_topics, top_terms = _top(topics, top_n), _top(terms, top_n, least=MIN_TERM_MENTIONS)
    for alert in groups["alerts"]:
        alert = dict(alert, period_start=datetime.date.fromisoformat(start))
        yield Alert(
            **alert,
            top_topics=[t for t, _ in top_topics], top_topic_mentions=[n for _, n in top_topics],
            top_terms=[t for t, _ in top_terms], top_term_mentions=[n for _, n in top_terms],
            summary=summary(alert, top_topics, top_terms))


class DetectAlerts(beam.PTransform):
    """(metrics, brand_mentions) -> Alert rows (see the module docstring).

    Args:
        config: The brand config: its `alerts` thresholds, and the brand names left out of the terms.
    """

    def __init__(self, config: BrandConfig):
        super().__init__()
        self._thresholds = config.alerts
        self._excluded = brand_prefixes(config)

    def expand(self, inputs):
        metrics, brand_mentions = inputs
        periods = tuple(self._thresholds.periods)
        candidates = (
            metrics
            | "Totals" >> beam.Filter(lambda m: m.platform is None and m.period in periods)
            | "KeyByBrandPeriod" >> beam.Map(_figures)
            | "GroupSeries" >> beam.GroupByKey()
            | "Detect" >> beam.FlatMap(_detect_series, self._thresholds)
        )
        alert_keys = (candidates
                      | "AlertKeys" >> beam.Keys()
                      | "KeysOnce" >> beam.Distinct()
                      | "AsKeyDict" >> beam.Map(lambda k: (k, True)))
        terms = (
            brand_mentions
            # Only negative mentions, and only the fields the terms need, wait for the alert keys.
            | "Negatives" >> beam.FlatMap(_negatives)
            | "NegativeTerms" >> beam.FlatMap(_negative_terms, AsDict(alert_keys), periods, self._excluded)
            | "CountTerms" >> beam.CombinePerKey(TopTermsFn())
        )
        return (
            {"alerts": candidates, "terms": terms}
            | "JoinTerms" >> beam.CoGroupByKey()
            | "Alerts" >> beam.FlatMap(_to_alerts, self._thresholds.top_terms).with_output_types(Alert)
        )
