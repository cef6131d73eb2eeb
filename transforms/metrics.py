"""Rate-based metrics per brand, period (day, ISO week, month, quarter), platform and language.

Two tables come out: `metrics` (per platform, and platform None for all together) and
`lang_metrics` (per language, all platforms together).

Inputs (a dict, or the tuple `(brand_mentions, mention_dates)`): the scored BrandMentions,
the dates of every valid post (the run's date range), and optionally every valid post
(`posts`: the brand accounts' own replies among them), the connectors' `brand_replies`
and `account_snapshots`. Steps, each labelled in the graph:

1. `AnswerComplaints`: negative mentions meet, per (platform, post id), the replies of
   the brand's own account, to learn whether and how fast they were answered. The
   replies (few) come as a side input, so the mentions are not shuffled for it.
2. `Aggregate`: one CombinePerKey over (brand, period, period_start, platform, lang),
   where platform None / lang None mean "all together" (rows break down by platform or
   by language, never both). Each mention is added once, to the accumulator of its
   (brand, day, platform, language) cell inside its bundle (`transforms.combine`); the
   cells' accumulators are then merged into the period keys. The shuffles carry small
   accumulators only: counts, sums, a distinct counter of author ids (exact up to 2,048
   authors, a 16 KiB HyperLogLog sketch beyond: `transforms.distinct`) and a log-bucket
   histogram of response times.
3. `Audience`: per brand account, the follower count at its last snapshot in each
   period against its last snapshot before.
4. `Fill`: per series (brand, period, platform, lang), periods with no mentions inside
   the run's date range become explicit zero rows.
5. `ShareOfVoice`: per (period, period_start, platform, lang), each brand's mentions,
   engagements and positive mentions are divided by those of its competitive set.
6. `Compare`: per series again, every rate against the previous period and against
   the mean of the 4 periods before (the brand's own benchmark); language series
   become LangMetric rows (a tagged output), the others Metric rows.

Every rate is null when its denominator is zero or unknown, never 0 or infinity;
each engagement rate says how many mentions reported its denominator. Nothing holds
the list of all mentions, nor of all authors: only per-key groups of bounded aggregates.
"""

from __future__ import annotations

import datetime
import functools
import math
import operator
import typing

import apache_beam as beam
from apache_beam.pvalue import AsDict, AsSingleton
from apache_beam.transforms.window import GlobalWindows

from schemas import PERIODS, BrandMention, Mention, Metric
from schemas.config import BrandConfig
from schemas.records import METRIC_CHANGE_RATES, TRAILING_PERIODS, AccountSnapshot, BrandReply, LangMetric
from transforms.combine import CombineExploded, MergeAccumulatorsFn
from transforms.distinct import DistinctCounter, id_hash

UTC = datetime.timezone.utc
UNKNOWN_LANG = "und"  # ISO 639-2 "undetermined": the language breakdown of posts that report none


# ---- periods ----------------------------------------------------------------------------------

def _start_of(day: datetime.date, period: str) -> datetime.date:
    if period == "day":
        return day
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return datetime.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")


def period_start(ts: datetime.datetime, period: str) -> datetime.date:
    """Returns the first day (UTC) of the day, ISO week (Monday), month or quarter containing `ts`."""
    return _start_of(ts.astimezone(UTC).date(), period)


@functools.lru_cache(maxsize=16384)
def iso_period_starts_of_day(day: datetime.date) -> tuple[tuple[str, str], ...]:
    """(period, ISO date of its start) for every period containing `day` (cached: called per day cell)."""
    return tuple((period, _start_of(day, period).isoformat()) for period in PERIODS)


def next_period_start(start: datetime.date, period: str) -> datetime.date:
    """The first day of the period after the one starting on `start`."""
    if period == "day":
        return start + datetime.timedelta(days=1)
    if period == "week":
        return start + datetime.timedelta(days=7)
    months = {"month": 1, "quarter": 3}.get(period)
    if months is None:
        raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")
    index = start.year * 12 + start.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def period_starts(first: datetime.date, last: datetime.date, period: str) -> list[datetime.date]:
    """Every period start from the period containing `first` to the one containing `last`."""
    start = _start_of(first, period)
    out = []
    while start <= last:
        out.append(start)
        start = next_period_start(start, period)
    return out


def days_in_run(start: datetime.date, period: str, first: datetime.date, last: datetime.date) -> int:
    """Days of the period starting on `start` that lie within [first, last]."""
    end = next_period_start(start, period) - datetime.timedelta(days=1)
    return max(0, (min(end, last) - max(start, first)).days + 1)


# ---- arithmetic -------------------------------------------------------------------------------

def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is unknown or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def engagement(row: BrandMention) -> int | None:
    """likes + reposts + replies + quotes over the counts reported; None when none is."""
    return _sum_reported(row.likes, row.reposts, row.replies, row.quotes)


def _sum_reported(*counts: int | None) -> int | None:
    reported = [c for c in counts if c is not None]
    return sum(reported) if reported else None


def add_changes(rows: typing.Sequence[dict], rates: typing.Sequence[str]) -> None:
    """Fills, in place, growth and change columns of one dense series in period order.

    Sets `previous_mentions`, `mentions_growth_rate` and, for each rate,
    `<rate>_change` (minus the previous period's value) and `<rate>_vs_trailing4`
    (minus the mean of the values over the TRAILING_PERIODS periods before, nulls
    skipped; null while the run has fewer earlier periods).
    """
    for i, row in enumerate(rows):
        prev = rows[i - 1] if i else None
        window = rows[i - TRAILING_PERIODS:i] if i >= TRAILING_PERIODS else None
        row["previous_mentions"] = prev["mentions"] if prev else None
        row["mentions_growth_rate"] = (ratio(row["mentions"] - prev["mentions"], prev["mentions"])
                                       if prev else None)
        for rate in rates:
            value = row[rate]
            before = prev[rate] if prev else None
            row[f"{rate}_change"] = None if value is None or before is None else value - before
            known = [w[rate] for w in window if w[rate] is not None] if window else []
            row[f"{rate}_vs_trailing4"] = value - sum(known) / len(known) if value is not None and known else None


# ---- response times: a mergeable log-bucket histogram ---------------------------------------

_GAMMA = 1.02  # bucket (g^(i-1), g^i]: any value is within (g-1)/(g+1) < 1% of its bucket's representative
_LOG_GAMMA = math.log(_GAMMA)
_UNDER_A_SECOND = -1


def response_bucket(seconds: float) -> int:
    """The histogram bucket of a response time in seconds."""
    return _UNDER_A_SECOND if seconds < 1 else math.ceil(math.log(seconds) / _LOG_GAMMA)


def _bucket_value(index: int) -> float:
    return 0.0 if index == _UNDER_A_SECOND else 2 * _GAMMA ** index / (_GAMMA + 1)


def histogram_median(histogram: typing.Mapping[int, int]) -> float | None:
    """The median (mean of the two middle values for an even count) of a bucket histogram; None if empty."""
    n = sum(histogram.values())
    if not n:
        return None
    wanted, values, seen = ((n - 1) // 2, n // 2), [], 0
    for index in sorted(histogram):
        count = histogram[index]
        values += [_bucket_value(index) for rank in wanted if seen <= rank < seen + count]
        seen += count
    return sum(values) / len(values)


def histogram_quantile(histogram: typing.Mapping[int, int], q: float) -> float | None:
    """The q-quantile (nearest rank: the ceil(q * n)-th smallest value) of a bucket histogram; None if empty."""
    n = sum(histogram.values())
    if not n:
        return None
    rank, seen = max(1, math.ceil(q * n)), 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return _bucket_value(index)
    raise AssertionError("unreachable: the ranks add up to n")


# ---- per-mention facts --------------------------------------------------------------------------

class Facts(typing.NamedTuple):
    """The part of a BrandMention the metrics need (keeps the shuffle small)."""

    tagged: bool
    sentiment: str
    author_hash: int | None  # transforms.distinct.id_hash of the author id
    likes: int | None
    reposts: int | None
    replies: int | None
    quotes: int | None
    impressions: int | None
    followers: int | None
    is_repost: bool
    # Filled by AnswerComplaints: whether it counts for the service rate (negative, not a plain
    # repost, on a platform where the brand's replies are known), and the seconds to the reply.
    service: bool = False
    reply_seconds: float | None = None


class MentionFacts(typing.NamedTuple):
    """Facts with the keys they are aggregated under."""

    brand_id: str
    platform: str
    lang: str | None
    created_at: datetime.datetime
    mention_id: str
    facts: Facts


def to_facts(row: BrandMention) -> MentionFacts:
    """A BrandMention reduced to what the metrics read."""
    author = None if row.author_id is None else id_hash(row.author_id)
    return MentionFacts(row.brand_id, row.platform, row.lang, row.created_at, row.mention_id, Facts(
        row.match_kind == "tagged", row.sentiment, author, row.likes, row.reposts, row.replies, row.quotes,
        row.impressions, row.author_followers, bool(row.is_repost)))


def _wants_answer(mf: MentionFacts) -> bool:
    return mf.facts.sentiment == "negative" and not mf.facts.is_repost


# Accumulator slots.
(MENTIONS, TAGGED, NEG, NEU, POS, ENG, ENG_N, IMPR_ENG, IMPR_BL, IMPR, IMPR_N, FOLL_ENG, FOLL, FOLL_N,
 LIKES, LIKE_N, REPLIES, REPLY_N, AMP, AMP_N, SVC_N, SVC_ANSWERED) = range(22)
_N_SLOTS = 22


class MetricsCombineFn(beam.CombineFn):
    """Counts and sums for one (brand, period, period_start, platform, lang)."""

    def create_accumulator(self):
        return [0] * _N_SLOTS, DistinctCounter(), {}

    def add_input(self, acc, facts: Facts):
        c, authors, response = acc
        c[MENTIONS] += 1
        c[TAGGED] += facts.tagged
        c[NEG if facts.sentiment == "negative" else POS if facts.sentiment == "positive" else NEU] += 1
        if facts.author_hash is not None:
            authors.add(facts.author_hash)
        eng = _sum_reported(facts.likes, facts.reposts, facts.replies, facts.quotes)
        if eng is not None:
            c[ENG] += eng
            c[ENG_N] += 1
            if facts.impressions is not None:
                c[IMPR_ENG] += eng
                c[IMPR_BL] += eng - (facts.likes or 0)
                c[IMPR] += facts.impressions
                c[IMPR_N] += 1
            if facts.followers is not None:
                c[FOLL_ENG] += eng
                c[FOLL] += facts.followers
                c[FOLL_N] += 1
        if facts.likes is not None:
            c[LIKES] += facts.likes
            c[LIKE_N] += 1
        if facts.replies is not None:
            c[REPLIES] += facts.replies
            c[REPLY_N] += 1
        amp = _sum_reported(facts.reposts, facts.quotes)
        if amp is not None:
            c[AMP] += amp
            c[AMP_N] += 1
        if facts.service:
            c[SVC_N] += 1
            if facts.reply_seconds is not None:
                c[SVC_ANSWERED] += 1
                bucket = response_bucket(facts.reply_seconds)
                response[bucket] = response.get(bucket, 0) + 1
        return acc

    def merge_accumulators(self, accs):
        # Merges into the first accumulator, as Beam's contract allows (the others stay as they
        # are): a quarter's author counter is then grown in place, not copied per merged day.
        merged = None
        for acc in accs:
            if merged is None:
                merged = acc
                continue
            total, authors, response = merged
            c, a, r = acc
            total[:] = map(operator.add, total, c)
            authors.merge(a)
            for bucket, n in r.items():
                response[bucket] = response.get(bucket, 0) + n
        return merged if merged is not None else self.create_accumulator()

    def extract_output(self, acc):
        c, authors, response = acc
        return (tuple(c),) + authors.result() + (histogram_median(response),)


_EMPTY = (tuple([0] * _N_SLOTS), 0, False, None)


def _day_cell(mf: MentionFacts):
    """A mention's finest key: brand, UTC day, platform, language (dates as ISO strings: keys must encode
    deterministically)."""
    yield (mf.brand_id, mf.created_at.astimezone(UTC).date().isoformat(), mf.platform,
           mf.lang or UNKNOWN_LANG), mf.facts


def _day_to_periods(cell):
    """A day cell's accumulator under each period's keys: all platforms and languages, per platform, per language."""
    (brand_id, day, platform, lang), acc = cell
    for period, start in iso_period_starts_of_day(datetime.date.fromisoformat(day)):
        yield (brand_id, period, start, None, None), acc
        yield (brand_id, period, start, platform, None), acc
        yield (brand_id, period, start, None, lang), acc


# ---- service: the brand's own replies to negative mentions ------------------------------------

def _replies_from_posts(post: Mention, handles: typing.Mapping[str, tuple[str, ...]]):
    """A post by a brand's own account that replies to another post -> ((platform, post id), (brand, time))."""
    if post.reply_to is None or not post.author_handle:
        return
    for brand_id in handles.get(post.author_handle.lower(), ()):
        yield (post.platform, post.reply_to), (brand_id, post.created_at)


def _replies_from_connector(reply: BrandReply):
    if reply.in_reply_to_id is not None:
        yield (reply.platform, reply.in_reply_to_id), (reply.brand_id, reply.created_at)


def answering_handles(config: BrandConfig) -> dict[str, tuple[str, ...]]:
    """Lower-cased handle -> the brands it answers for (`Brand.answering_accounts`: handles + response accounts)."""
    handles: dict[str, list[str]] = {}
    for brand in config.brands:
        for handle in brand.answering_accounts():
            handles.setdefault(handle.lower(), []).append(brand.id)
    return {h: tuple(ids) for h, ids in handles.items()}


class KnownReplies(beam.PTransform):
    """{'brand_mentions', 'posts'?, 'brand_replies'?} -> ((platform, post id), (brand, reply time)) per known reply.

    The replies of the brand's answering accounts found among the posts (one PCollection or
    a tuple of them) and those the connectors fetched. Shared by the metrics' service rate
    and the response queue (`transforms.response_queue`), so both see the same replies.

    Args:
        handles: `answering_handles(config)`.
    """

    def __init__(self, handles: typing.Mapping[str, tuple[str, ...]]):
        super().__init__()
        self._handles = dict(handles)

    def expand(self, inputs):
        p = inputs["brand_mentions"].pipeline
        reply_sources = []
        if "posts" in inputs:
            # Posts may come as several PCollections: each is filtered on its own, so that only the
            # (few) replies are flattened, never the posts.
            posts = inputs["posts"]
            for i, part in enumerate((posts,) if isinstance(posts, beam.PCollection) else posts):
                reply_sources.append(part | f"RepliesInPosts{i or ''}" >> beam.FlatMap(
                    _replies_from_posts, self._handles))
        if "brand_replies" in inputs:
            reply_sources.append(inputs["brand_replies"] | "ConnectorReplies" >> beam.FlatMap(
                _replies_from_connector))
        if not reply_sources:
            reply_sources.append(p | "NoReplies" >> beam.Create([]))
        return tuple(reply_sources) | "AllReplies" >> beam.Flatten()


def _answer(mf: MentionFacts, replies: typing.Mapping[tuple[str, str], typing.Sequence[tuple]],
            covered: typing.Mapping[tuple[str, str], bool]) -> MentionFacts:
    """Marks a complaint with whether its brand's replies are known and the time to the first; others pass as they are.

    The replies (the brand accounts' own, few next to the mentions) come as a side input
    keyed by (platform, post id), so the mentions are never shuffled to meet them.
    """
    if not _wants_answer(mf):
        return mf
    known = (mf.brand_id, mf.platform) in covered
    waits = [(at - mf.created_at).total_seconds() for brand_id, at in replies.get((mf.platform, mf.mention_id), ())
             if brand_id == mf.brand_id and at >= mf.created_at] if known else []
    return mf._replace(facts=mf.facts._replace(service=known, reply_seconds=min(waits) if waits else None))


# ---- audience: follower growth of the brand's own accounts -------------------------------------

def _account_growth(keyed: tuple[tuple, typing.Iterable[AccountSnapshot]]):
    """Per account: each period's last follower count, and the change from the last one before it."""
    (brand_id, platform, _handle), snapshots = keyed
    series = sorted((s.fetched_at, s.followers) for s in snapshots if s.followers is not None)
    for period in PERIODS:
        last: dict[datetime.date, int] = {}
        for at, followers in series:  # in time order: the period's last snapshot wins
            last[period_start(at, period)] = followers
        before = None
        for start in sorted(last):
            now = last[start]
            growth = (now - before, before, 1) if before is not None else (0, 0, 0)
            for plat in (platform, None):
                yield (brand_id, period, start.isoformat(), plat), (now,) + growth
            before = now


def _sum_tuples(values):
    return tuple(map(sum, zip(*values)))


# ---- dense series, share of voice, comparisons -----------------------------------------------

def _fill(keyed, date_range, covered):
    """One series' rows over every period of the run (zero rows where there were no mentions)."""
    (brand_id, period, platform, lang), values = keyed
    if date_range is None:
        return
    first, last = date_range
    aggregates, audience = {}, {}
    for kind, start, agg in values:
        if kind == "mentions":
            aggregates[start] = agg
        elif kind == "audience":
            audience[start] = agg
    service_known = ((brand_id, platform) in covered if platform is not None
                     else any(b == brand_id for b, _p in covered))
    for start in period_starts(first, last, period):
        (c, authors, authors_estimated, median_seconds) = aggregates.get(start.isoformat(), _EMPTY)
        followers, delta, base, accounts = audience.get(start.isoformat(), (None, 0, 0, 0))
        mentions = c[MENTIONS]
        yield (period, start.isoformat(), platform, lang), {
            "brand_id": brand_id,
            "period": period,
            "period_start": start,
            "platform": platform,
            "lang": lang,
            "days_in_run": days_in_run(start, period, first, last),
            "mentions": mentions,
            "tagged_mentions": c[TAGGED],
            "untagged_mentions": mentions - c[TAGGED],
            "untagged_share": ratio(mentions - c[TAGGED], mentions),
            "unique_authors": authors,
            "unique_authors_estimated": authors_estimated,
            "negative_mentions": c[NEG],
            "neutral_mentions": c[NEU],
            "positive_mentions": c[POS],
            "negative_rate": ratio(c[NEG], mentions),
            "neutral_rate": ratio(c[NEU], mentions),
            "positive_rate": ratio(c[POS], mentions),
            "net_sentiment": ratio(c[POS] - c[NEG], c[POS] + c[NEG]),
            "engagements": c[ENG],
            "engagement_reporting_mentions": c[ENG_N],
            "impressions": c[IMPR],
            "impression_reporting_mentions": c[IMPR_N],
            "engagement_rate_impressions": ratio(c[IMPR_ENG], c[IMPR]) if c[IMPR_N] else None,
            "beyond_likes_rate": ratio(c[IMPR_BL], c[IMPR]) if c[IMPR_N] else None,
            "follower_reach": c[FOLL],
            "follower_reporting_mentions": c[FOLL_N],
            "engagement_rate_followers": ratio(c[FOLL_ENG], c[FOLL]) if c[FOLL_N] else None,
            "amplifications": c[AMP],
            "amplification_reporting_mentions": c[AMP_N],
            "amplification_rate": ratio(c[AMP], c[AMP_N]),
            "replies": c[REPLIES],
            "reply_reporting_mentions": c[REPLY_N],
            "conversation_rate": ratio(c[REPLIES], c[REPLY_N]),
            "likes": c[LIKES],
            "like_reporting_mentions": c[LIKE_N],
            "applause_rate": ratio(c[LIKES], c[LIKE_N]),
            "service_negative_mentions": c[SVC_N] if service_known else None,
            "answered_negative_mentions": c[SVC_ANSWERED] if service_known else None,
            "negative_reply_rate": ratio(c[SVC_ANSWERED], c[SVC_N]) if service_known else None,
            "median_response_minutes": None if median_seconds is None else median_seconds / 60,
            "account_followers": followers if lang is None else None,
            "follower_growth_rate": ratio(delta, base) if accounts and lang is None else None,
        }


def _share_of_voice(keyed, competitive_sets: typing.Mapping[str, tuple[str, ...]]):
    """Completes each brand's row with its shares of its competitive set; re-keys it by series."""
    _key, rows = keyed
    rows = [dict(row) for row in rows]  # inputs are not ours to change (runners may share them between steps)
    by_brand = {row["brand_id"]: row for row in rows}
    for row in rows:
        members = competitive_sets.get(row["brand_id"], ())
        present = [by_brand[b] for b in members if b in by_brand]
        for column, set_column, share in (("mentions", "competitive_set_mentions", "share_of_voice"),
                                          ("engagements", "competitive_set_engagements",
                                           "engagement_share_of_voice"),
                                          ("positive_mentions", "competitive_set_positive_mentions",
                                           "sentiment_share_of_voice")):
            total = sum(r[column] for r in present) if members else None
            row[set_column] = total
            row[share] = ratio(row[column], total)
        row["competitive_set"] = ",".join(sorted(members)) if members else None
        yield (row["brand_id"], row["period"], row["platform"], row["lang"]), row


LANG = "lang_metrics"


def _compare(keyed):
    """Growth and change columns along one series, then the finished rows: Metric, or LangMetric (tagged)."""
    (_brand, _period, _platform, lang), rows = keyed
    rows = sorted((dict(row) for row in rows), key=lambda r: r["period_start"])  # copies: inputs stay as given
    add_changes(rows, METRIC_CHANGE_RATES)
    for i, row in enumerate(rows):
        trailing = (sum(r["mentions"] for r in rows[i - TRAILING_PERIODS:i]) / TRAILING_PERIODS
                    if i >= TRAILING_PERIODS else None)
        row["mentions_trailing4"] = trailing
        row["mentions_vs_trailing4"] = ratio(None if trailing is None else row["mentions"] - trailing, trailing)
        if lang is None:
            del row["lang"]
            yield Metric(**row)
        else:
            del row["platform"]
            yield beam.pvalue.TaggedOutput(LANG, LangMetric(**row))


class _DateRangeFn(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, pair):
        return pair if acc is None else (min(acc[0], pair[0]), max(acc[1], pair[1]))

    def merge_accumulators(self, accs):
        acc = None
        for a in accs:
            if a is not None:
                acc = self.add_input(acc, a)
        return acc

    def extract_output(self, acc):
        return acc


class _DistinctDaysFn(beam.DoFn):
    def start_bundle(self):
        self._days = set()

    def process(self, mention):
        self._days.add(mention.created_at.astimezone(UTC).date())
        return ()

    def finish_bundle(self):
        for day in sorted(self._days):
            yield GlobalWindows.windowed_value(day)
        self._days = set()


class MentionDays(beam.PTransform):
    """Posts -> their UTC days, each at most once per bundle: the `mention_dates` input of the metrics.

    The metrics need only the run's first and last day, so a day seen again in the same
    bundle is not emitted again (one element per day and bundle, not one per post).
    """

    def expand(self, mentions):
        return mentions | "DistinctDays" >> beam.ParDo(_DistinctDaysFn()).with_output_types(datetime.date)


class RunDateRange(beam.PTransform):
    """Dates -> one (first, last) element (nothing for no dates): the run's date range."""

    def expand(self, dates):
        return (dates
                | "DayBounds" >> beam.Map(lambda d: (d, d))
                | "DateRange" >> beam.CombineGlobally(_DateRangeFn()).without_defaults())


def _inputs(inputs) -> dict[str, beam.PCollection]:
    if isinstance(inputs, dict):
        return dict(inputs)
    brand_mentions, mention_dates = inputs
    return {"brand_mentions": brand_mentions, "mention_dates": mention_dates}


class ComputeMetrics(beam.PTransform):
    """BrandMentions (plus the run's dates, posts, brand replies, account snapshots) -> metric rows.

    Returns a dict: 'metrics' (Metric: per brand, period and platform, platform None for
    the total) and 'lang_metrics' (LangMetric: per brand, period and language).

    Input: a dict with 'brand_mentions' and 'mention_dates' (every valid post's UTC date,
    matched or not), and optionally 'posts' (every valid Mention, one PCollection or a tuple
    of them: the brand accounts' own replies are read from them), 'brand_replies' (BrandReply) and 'account_snapshots'
    (AccountSnapshot); or the tuple (brand_mentions, mention_dates).

    Args:
        config: The brand config (the brands to report, their competitive sets and handles).
        reply_coverage: (brand_id, platform) pairs where the brand's replies are fetched
            (so that a brand that never answers shows 0%, not unknown); pairs with at
            least one known reply are added on their own.
    """

    def __init__(self, config: BrandConfig, reply_coverage: typing.Iterable[tuple[str, str]] = ()):
        super().__init__()
        self._brand_ids = config.brand_ids()
        self._sets = {b: config.competitive_set(b) for b in self._brand_ids}
        self._handles = answering_handles(config)
        self._coverage = sorted(set(map(tuple, reply_coverage)))

    def expand(self, inputs):
        inputs = _inputs(inputs)
        brand_mentions = inputs["brand_mentions"]
        p = brand_mentions.pipeline
        # The run's date range comes from every valid post, matched or not, so a
        # brand silent for the whole run still gets its zero rows.
        date_range = inputs["mention_dates"] | "RunDateRange" >> RunDateRange()

        replies = inputs | "KnownReplies" >> KnownReplies(self._handles)
        coverage = (
            (replies | "RepliedWhere" >> beam.Map(lambda kv: (kv[1][0], kv[0][0])),
             p | "FetchedReplies" >> beam.Create(self._coverage))
            | "Coverage" >> beam.Flatten()
            | "CoverageOnce" >> beam.Distinct()
            | "CoverageDict" >> beam.Map(lambda pair: (pair, True))
        )

        replies_by_post = (replies
                           | "GroupRepliesByPost" >> beam.GroupByKey()
                           | "ReplyLists" >> beam.MapTuple(lambda key, found: (key, sorted(found))))
        answered = (
            brand_mentions
            | "Facts" >> beam.Map(to_facts)
            | "AnswerComplaints" >> beam.Map(_answer, AsDict(replies_by_post), AsDict(coverage))
        )
        aggregated = (
            answered
            # Each mention counts once, in its day cell; the cells' accumulators then merge into the
            # 12 keys of a mention (4 periods x all, per platform, per language).
            | "AggregateDays" >> CombineExploded(_day_cell, MetricsCombineFn(), extract=False)
            | "DaysToPeriods" >> beam.FlatMap(_day_to_periods)
            | "Aggregate" >> beam.CombinePerKey(MergeAccumulatorsFn(MetricsCombineFn()))
            | "KeyBySeries" >> beam.Map(
                lambda kv: ((kv[0][0], kv[0][1], kv[0][3], kv[0][4]), ("mentions", kv[0][2], kv[1])))
        )
        series = [aggregated]
        if "account_snapshots" in inputs:
            series.append(
                inputs["account_snapshots"]
                | "KeyByAccount" >> beam.Map(lambda s: ((s.brand_id, s.platform, s.handle), s))
                | "GroupAccounts" >> beam.GroupByKey()
                | "AccountGrowth" >> beam.FlatMap(_account_growth)
                | "Audience" >> beam.CombinePerKey(_sum_tuples)
                | "KeyAudience" >> beam.Map(
                    lambda kv: ((kv[0][0], kv[0][1], kv[0][3], None), ("audience", kv[0][2], kv[1]))))
        series.append(
            p | "EveryBrand" >> beam.Create(
                [((b, period, None, None), ("brand", None, None)) for b in self._brand_ids for period in PERIODS]))
        rows = (
            tuple(series)
            | "Series" >> beam.Flatten()
            | "GroupSeries" >> beam.GroupByKey()
            | "Fill" >> beam.FlatMap(_fill, AsSingleton(date_range, default_value=None), AsDict(coverage))
            | "GroupPeriods" >> beam.GroupByKey()
            | "ShareOfVoice" >> beam.FlatMap(_share_of_voice, self._sets)
            | "RegroupSeries" >> beam.GroupByKey()
            | "Compare" >> beam.FlatMap(_compare).with_outputs(LANG, main="metrics")
        )
        return {"metrics": rows.metrics | "Metrics" >> beam.Map(lambda m: m).with_output_types(Metric),
                "lang_metrics": rows[LANG] | "LangMetrics" >> beam.Map(lambda m: m).with_output_types(LangMetric)}


__all__ = ["ComputeMetrics", "Facts", "KnownReplies", "MentionDays", "MetricsCombineFn", "RunDateRange", "UNKNOWN_LANG",
           "add_changes", "answering_handles", "days_in_run", "engagement", "histogram_median", "histogram_quantile",
           "iso_period_starts_of_day", "next_period_start", "period_start", "period_starts", "ratio",
           "response_bucket", "to_facts"]
