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

Each alert carries the figures that triggered it and the why, from a second pass over
the alerted brands' mentions once the alert keys are known (docs/alerts.md): the top
topics and terms of the period's negative mentions, their key phrases against the
brand's other mentions (`transforms.keyphrases`), and up to 5 representative posts,
the highest reach, copies and near-identical texts collapsed, with links.
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
from models.text import model_text
from transforms.inflection import fold, serbian_transliteration
from transforms.keyphrases import MIN_SUPPORT, bounded, is_brand_word, most_frequent_forms, phrases_of, rank
from transforms.metrics import period_start

MAD_TO_SIGMA = 1.4826  # MAD x 1.4826 estimates the standard deviation of normal data
_RATE_CLAMP = (0.05, 0.95)
MIN_TERM_MENTIONS = 2  # a term listed in an alert is used by at least this many of its negative mentions
_MAX_TERMS = 20_000  # phrases per alert key; beyond it the rarest are dropped (very large spikes only)


class Figures(typing.NamedTuple):
    """What the tests read from one `metrics` row (all platforms together)."""

    mentions: int
    negative_mentions: int
    negative_rate: float | None
    share_of_voice: float | None
    competitive_set_mentions: int | None


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


def detect(series: typing.Sequence[tuple[str, Figures]], period: str,
           thresholds: AlertThresholds) -> typing.Iterator[tuple[str, str, str, RobustZ, int, float]]:
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


# ---- the why: representative posts and key phrases of the negative mentions -------------------

MAX_POSTS = 5  # representative posts per alert
_MAX_CANDIDATES = 50  # distinct texts per alert kept as candidates for the posts (the highest reach)
NEAR_DUPLICATE = 0.6  # word-bigram Jaccard from which two texts are one (other punctuation, a word added)
EXCERPT_CHARS = 280
_MAX_BASELINE_PHRASES = 100_000  # per brand; beyond it the rarest are dropped (their rate counts as 0)

# What the evidence reads of a brand mention (pipelines.chunked reads these columns for it).
ALERT_MENTION_COLUMNS = ("mention_id", "brand_id", "platform", "created_at", "text", "lang", "topics", "sentiment",
                         "url", "author_handle", "author_followers", "likes", "reposts", "replies", "quotes",
                         "is_repost")
_REACH_FIELDS = ("author_followers", "likes", "reposts", "replies", "quotes")
_SKELETON = re.compile(r"[^\W_]+")


class AlertMention(typing.NamedTuple):
    """A negative mention of an alerted (brand, period), as the evidence needs it."""

    mention_id: str
    brand_id: str
    platform: str
    created_at: datetime.datetime
    text: str
    lang: str | None
    topics: tuple[str, ...]
    url: str | None
    author_handle: str | None
    reach: int | None
    is_repost: bool


def reach(row: typing.Any) -> int | None:
    """author_followers + likes + reposts + replies + quotes, the unreported ones as 0; None if none is reported.

    Followers are who may see the post, engagement who acted on it; `impressions` are left out because few
    platforms report them, and a sum that means different things per platform would not rank posts.
    """
    values = [getattr(row, name) for name in _REACH_FIELDS]
    return None if all(v is None for v in values) else sum(v or 0 for v in values)


def post_url(platform: str, mention_id: str, url: str | None = None,
             handle: str | None = None) -> str | None:
    """The post's link: its `url`, else one built from the platform's pattern, else None.

    x: https://x.com/<handle, else i>/status/<id> (numeric ids); bluesky:
    https://bsky.app/profile/<did>/post/<rkey> from an at:// id; reddit: https://www.reddit.com/comments/<id>
    for a post ("t3_<id>"). Mastodon links need the instance, which the id does not say: None without a `url`.
    """
    if url:
        return url
    if platform in ("x", "twitter") and mention_id.isdigit():
        return f"https://x.com/{handle or 'i'}/status/{mention_id}"
    match = re.fullmatch(r"at://([^/]+)/app\.bsky\.feed\.post/([^/]+)", mention_id)
    if platform == "bluesky" and match:
        return f"https://bsky.app/profile/{match.group(1)}/post/{match.group(2)}"
    if platform == "reddit" and re.fullmatch(r"t3_[0-9a-z]+", mention_id):
        return f"https://www.reddit.com/comments/{mention_id[3:]}"
    return None


def skeleton(text: str) -> str:
    """A text's words, folded, without links, handles and a leading 'RT @user:' (what its copies share)."""
    return " ".join(_SKELETON.findall(fold(model_text(text).replace("@user", " ").replace("http", " "))))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The text on one line, cut at a word boundary to `limit` characters (with '…' when cut)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def shingles(text: str) -> frozenset[str]:
    """Word bigrams of a text's skeleton (its words for a one-word text): what near-duplicates share."""
    words = skeleton(text).split()
    return frozenset(words if len(words) < 2 else (" ".join(p) for p in zip(words, words[1:])))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (0 for two empty sets: texts without words are never near-duplicates)."""
    return len(a & b) / len(a | b) if a and b else 0.0


class Copies(typing.NamedTuple):
    """The copies of one text among an alert's negative mentions: the one shown, how many, their reach."""

    shown: AlertMention
    copies: int
    reach: int | None  # the copies' reach summed; None if none has a reported figure
    topics: tuple[tuple[str, int], ...]


def _shown_order(m: AlertMention):
    # An original before a repost, then the highest reach, the earliest, the smallest id: deterministic.
    return (m.is_repost, -(m.reach or 0), m.created_at, m.platform, m.mention_id)


def _add_reach(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


class CopiesFn(beam.CombineFn):
    """Collapses the copies of one text (same words once links, handles and 'RT @user:' are gone)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, m: AlertMention):
        return self._merge(acc, Copies(m, 1, m.reach, tuple((t, 1) for t in m.topics)))

    def merge_accumulators(self, accs):
        out = None
        for acc in accs:
            if acc is not None:
                out = self._merge(out, acc)
        return out

    @staticmethod
    def _merge(a: Copies | None, b: Copies) -> Copies:
        if a is None:
            return b
        topics = collections.Counter(dict(a.topics))
        topics.update(dict(b.topics))
        shown = min(a.shown, b.shown, key=_shown_order)
        return Copies(shown, a.copies + b.copies, _add_reach(a.reach, b.reach), tuple(sorted(topics.items())))

    def extract_output(self, acc):
        return acc


class Evidence(typing.NamedTuple):
    """What an alert's negative mentions say: phrase counts, topics, and the candidate posts."""

    phrases: dict[str, int]  # key -> distinct texts using it (copies collapsed)
    mentions: dict[str, int]  # key -> negative mentions using it (copies included)
    forms: dict[tuple[str, str], int]  # (key, written form) -> distinct texts
    topics: dict[str, int]  # topic -> negative mentions carrying it
    texts: int  # distinct texts
    posts: int  # negative mentions
    candidates: tuple[Copies, ...]  # the highest-reach distinct texts


def _candidate_order(c: Copies):
    return (-(c.reach or 0), -c.copies) + _shown_order(c.shown)


class EvidenceFn(beam.CombineFn):
    """Counts the phrases and topics of an alert's distinct texts and keeps its highest-reach ones (bounded)."""

    def create_accumulator(self):
        return [collections.Counter(), collections.Counter(), collections.Counter(), collections.Counter(), 0, 0, []]

    def add_input(self, acc, item):
        group, phrases = item
        acc[0].update(phrases.keys())
        acc[1].update({k: group.copies for k in phrases})
        acc[2].update(phrases.items())
        acc[3].update(dict(group.topics))
        acc[4] += 1
        acc[5] += group.copies
        acc[6].append(group)
        return self._bounded(acc)

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            for i in range(4):
                out[i].update(acc[i])
            out[4] += acc[4]
            out[5] += acc[5]
            out[6].extend(acc[6])
        return self._bounded(out)

    @staticmethod
    def _bounded(acc):
        for i in range(3):
            bounded(acc[i], _MAX_TERMS)
        if len(acc[6]) > 2 * _MAX_CANDIDATES:
            acc[6] = sorted(acc[6], key=_candidate_order)[:_MAX_CANDIDATES]
        return acc

    def extract_output(self, acc):
        # Only a phrase of 2+ mentions can be listed: the others need not travel to the join.
        keep = {k for k, n in acc[1].items() if n >= min(MIN_SUPPORT, MIN_TERM_MENTIONS)}
        return Evidence({k: acc[0][k] for k in keep}, {k: acc[1][k] for k in keep},
                        {kf: n for kf, n in acc[2].items() if kf[0] in keep}, dict(acc[3]), acc[4], acc[5],
                        tuple(sorted(acc[6], key=_candidate_order)[:_MAX_CANDIDATES]))


class PhraseCountFn(beam.CombineFn):
    """Counts in how many of a brand's mentions each phrase occurs, and the mentions (the baseline)."""

    def create_accumulator(self):
        return collections.Counter(), 0

    def add_input(self, acc, keys):
        acc[0].update(keys)
        return bounded(acc[0], _MAX_BASELINE_PHRASES), acc[1] + 1

    def merge_accumulators(self, accs):
        counts, n = collections.Counter(), 0
        for c, k in accs:
            counts.update(c)
            n += k
        return bounded(counts, _MAX_BASELINE_PHRASES), n

    def extract_output(self, acc):
        return acc


def brand_words(config: BrandConfig) -> dict[str, tuple[str, ...]]:
    """Brand id -> the folded words (3+ letters) of its names, handles and hashtags, in both Serbian scripts
    when the brand transliterates. A query-only brand uses its query's terms."""
    out = {}
    for brand in config.brands:
        terms = list(brand.names) + list(brand.handles) + list(brand.hashtags)
        if not terms:
            terms = [t for group in brand.search_terms() for t in group]
        if brand.transliterate:
            terms += [t for t in (serbian_transliteration(x) for x in terms) if t]
        words = {w for t in terms for w in re.split(r"[\s']+", fold(t)) if sum(c.isalpha() for c in w) >= 3}
        out[brand.id] = tuple(sorted(words))
    return out


def _slim(row: BrandMention) -> AlertMention:
    return AlertMention(row.mention_id or "", row.brand_id, row.platform or "unknown", row.created_at,
                        row.text or "", row.lang, tuple(dict.fromkeys(row.topics or ())), row.url, row.author_handle,
                        reach(row), bool(row.is_repost))


def copy_key(text: str, brand: typing.Sequence[str] = ()) -> str:
    """What the copies of a text share: its skeleton without the brand's own words ("@SamsungMobile my Galaxy
    overheated" and "Samsung, my phone overheated" differ; "my Samsung overheated" and "my Galaxy overheated"
    are one)."""
    return " ".join(w for w in skeleton(text).split() if not is_brand_word(w, brand))


def _route(row: BrandMention, alert_keys, alert_brands, periods, words):
    """Every mention of an alerted brand to the baseline; a negative one to each alert key it falls in."""
    if row.brand_id not in alert_brands:
        return
    yield beam.pvalue.TaggedOutput("baseline", (row.brand_id, (row.text or "", row.lang)))
    if row.sentiment != "negative":
        return
    slim = None
    for period in periods:
        key = (row.brand_id, period, period_start(row.created_at, period).isoformat())
        if key in alert_keys:
            if slim is None:
                slim = _slim(row)
                copies = copy_key(slim.text, words.get(row.brand_id, ())) or "\0" + slim.mention_id
            yield key + (copies,), slim  # no words: a post of its own


def _baseline_phrases(item, words):
    brand, (text, lang) = item
    return brand, tuple(phrases_of(text, lang, words.get(brand, ())))


def _with_phrases(item, words):
    (brand, period, start, _skeleton), group = item
    shown = group.shown
    return (brand, period, start), (group, phrases_of(shown.text, shown.lang, words.get(brand, ())))


def representative(candidates: typing.Sequence[Copies], n: int = MAX_POSTS) -> list[Copies]:
    """The `n` highest-reach texts, near-duplicates (word-bigram Jaccard >= NEAR_DUPLICATE) folded into the
    higher-reach one, whose copies and reach they add to.

    Args:
        candidates: Distinct texts with their copies and reach.
        n: How many to return at most.

    Returns:
        Up to `n` Copies, by reach (copies included), then copies, then the shown post's order.
    """
    clusters: list[tuple[frozenset[str], Copies]] = []
    for cand in sorted(candidates, key=_candidate_order):
        sh = shingles(cand.shown.text)
        for i, (head, kept) in enumerate(clusters):
            if jaccard(head, sh) >= NEAR_DUPLICATE:
                clusters[i] = (head, kept._replace(copies=kept.copies + cand.copies,
                                                   reach=_add_reach(kept.reach, cand.reach)))
                break
        else:
            clusters.append((sh, cand))
    return sorted((c for _h, c in clusters), key=_candidate_order)[:n]


def _once(items: list, form, n: int) -> list:
    """The first `n` items whose shown form is not an earlier one's."""
    seen, out = set(), []
    for item in items:
        if form(item) not in seen:
            seen.add(form(item))
            out.append(item)
    return out[:n]


def _topics(evidence: Evidence | None) -> collections.Counter:
    return collections.Counter(evidence.topics) if evidence else collections.Counter()


def _why(evidence: Evidence | None, baseline, top_n: int) -> dict:
    """The evidence columns of an Alert, from its Evidence and the brand's baseline phrase counts."""
    if evidence is None:
        evidence = Evidence({}, {}, {}, {}, 0, 0, ())
    base_counts, base_n = baseline if baseline else ({}, 0)
    # The baseline is the brand's other mentions of the run: its counts less this alert's own mentions.
    base_n = max(base_n - evidence.posts, 0)
    base = {k: max(base_counts.get(k, 0) - evidence.mentions.get(k, 0), 0) for k in evidence.phrases}
    forms = most_frequent_forms(evidence.forms)
    # Two keys may show the same form (Serbian Cyrillic is stemmed as Latin, Russian as Cyrillic): listed once.
    phrases = _once(rank(evidence.phrases, evidence.texts, base, base_n, 2 * top_n), lambda p: forms[p.key], top_n)
    unigrams = {k: n for k, n in evidence.mentions.items() if " " not in k}
    top_terms = _once(_top(collections.Counter(unigrams), 2 * top_n, least=MIN_TERM_MENTIONS),
                      lambda kv: forms[kv[0]], top_n)
    posts = representative(evidence.candidates)
    return {
        "top_terms": [forms[k] for k, _ in top_terms], "top_term_mentions": [n for _, n in top_terms],
        "key_phrases": [forms[p.key] for p in phrases], "key_phrase_posts": [p.support for p in phrases],
        "key_phrase_scores": [round(p.z, 3) for p in phrases],
        "key_phrase_baseline_rates": [p.baseline_rate for p in phrases],
        "post_ids": [c.shown.mention_id for c in posts], "post_platforms": [c.shown.platform for c in posts],
        "post_urls": [post_url(c.shown.platform, c.shown.mention_id, c.shown.url, c.shown.author_handle)
                      for c in posts],
        "post_authors": [c.shown.author_handle for c in posts],
        "post_excerpts": [excerpt(c.shown.text) for c in posts],
        "post_reach": [c.reach for c in posts], "post_copies": [c.copies for c in posts],
    }


def _top(counter: collections.Counter, n: int, least: int = 1) -> list[tuple[str, int]]:
    return sorted((kv for kv in counter.items() if kv[1] >= least), key=lambda kv: (-kv[1], kv[0]))[:n]


def _fmt(value: float, metric: str) -> str:
    return f"{value:.0f}" if metric == "negative_mentions" else f"{value:.1%}"


def summary(alert: dict, topics, phrases) -> str:
    """One sentence for people: what moved, against what, and what the complaints were about."""
    metric, period = alert["metric"], alert["period"]
    what = {"negative_spike": "negative mentions", "negative_rate_spike": "negative rate",
            "share_of_voice_drop": "share of voice"}[alert["alert"]]
    text = (f"{alert['brand_id']}: {what} {_fmt(alert['value'], metric)} in the {period} of "
            f"{alert['period_start']}, against a median of {_fmt(alert['baseline_median'], metric)} over the "
            f"{alert['baseline_periods']} {period}s before (robust z {alert['z_score']:+.1f})")
    if topics:
        text += "; negative topics: " + ", ".join(f"{t} ({n})" for t, n in topics)
    if phrases:
        text += "; key phrases: " + ", ".join(f"{t} ({n})" for t, n in phrases)
    return text + "."


def _to_alerts(keyed, top_n: int):
    """One brand's alerts, each with the evidence of its (period, start) and the brand's baseline."""
    _brand, groups = keyed
    evidence = dict(groups["evidence"])
    baselines = list(groups["baseline"])
    baseline = baselines[0] if baselines else None
    whys = {}
    for key, alert in sorted(groups["alerts"], key=lambda ka: (ka[0], ka[1]["alert"])):
        if key not in whys:
            whys[key] = _why(evidence.get(key), baseline, top_n), _top(_topics(evidence.get(key)), top_n)
        why, top_topics = whys[key]
        alert = dict(alert, period_start=datetime.date.fromisoformat(key[1]))
        yield Alert(
            **alert, **why,
            top_topics=[t for t, _ in top_topics], top_topic_mentions=[n for _, n in top_topics],
            summary=summary(alert, top_topics, list(zip(why["key_phrases"], why["key_phrase_posts"]))))


class DetectAlerts(beam.PTransform):
    """(metrics, brand_mentions) -> Alert rows (see the module docstring).

    Args:
        config: The brand config: its `alerts` thresholds, and the brand names left out of the phrases.
    """

    def __init__(self, config: BrandConfig):
        super().__init__()
        self._thresholds = config.alerts
        self._words = brand_words(config)

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
        alert_brands = (alert_keys
                        | "AlertBrands" >> beam.Map(lambda kv: kv[0][0])
                        | "BrandsOnce" >> beam.Distinct()
                        | "AsBrandDict" >> beam.Map(lambda b: (b, True)))
        # The mentions wait for the alert keys: only alerted brands' mentions, and only the fields the
        # evidence needs, go on.
        routed = brand_mentions | "Route" >> beam.FlatMap(
            _route, AsDict(alert_keys), AsDict(alert_brands), periods, self._words
        ).with_outputs("baseline", main="negative")
        baseline = (routed.baseline
                    | "BaselinePhrases" >> beam.Map(_baseline_phrases, self._words)
                    | "CountBaseline" >> beam.CombinePerKey(PhraseCountFn()))
        evidence = (routed.negative
                    | "CollapseCopies" >> beam.CombinePerKey(CopiesFn())
                    | "Phrases" >> beam.Map(_with_phrases, self._words)
                    | "Evidence" >> beam.CombinePerKey(EvidenceFn())
                    | "EvidenceByBrand" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1:], kv[1]))))
        by_brand = candidates | "AlertsByBrand" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1:], kv[1])))
        return (
            {"alerts": by_brand, "evidence": evidence, "baseline": baseline}
            | "JoinEvidence" >> beam.CoGroupByKey()
            | "Alerts" >> beam.FlatMap(_to_alerts, self._thresholds.top_terms).with_output_types(Alert)
        )
