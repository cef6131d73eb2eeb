"""Rate-based metrics per brand, period (day, ISO week) and platform.

Three steps, each labelled in the graph:

1. `Aggregate`: one CombinePerKey over (brand, period, period_start, platform),
   where platform None means "all platforms together". Combiner lifting keeps the
   shuffle to one small accumulator per key and worker.
2. `FillAndGrow`: per (brand, period, platform), periods with no mentions inside the
   run's date range become explicit zero rows, and each period's growth rate is
   computed against the period just before it.
3. `ShareOfVoice`: per (period, period_start, platform), each brand's mentions are
   divided by those of its competitive set.

Every rate is null when its denominator is zero or unknown, never 0 or infinity;
each engagement rate says how many mentions reported its denominator.
"""

from __future__ import annotations

import datetime
import typing

import apache_beam as beam
from apache_beam.pvalue import AsSingleton

from schemas import PERIODS, BrandMention, Metric
from schemas.config import BrandConfig


def period_start(ts: datetime.datetime, period: str) -> datetime.date:
    """Returns the first day (UTC) of the day or ISO week (Monday) containing `ts`."""
    day = ts.astimezone(datetime.timezone.utc).date()
    if period == "day":
        return day
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")


def period_starts(first: datetime.date, last: datetime.date, period: str) -> typing.List[datetime.date]:
    """Every period start from the period containing `first` to the one containing `last`."""
    step = datetime.timedelta(days=1 if period == "day" else 7)
    start = first if period == "day" else first - datetime.timedelta(days=first.weekday())
    out = []
    while start <= last:
        out.append(start)
        start += step
    return out


def ratio(numerator: typing.Optional[float], denominator: typing.Optional[float]) -> typing.Optional[float]:
    """numerator / denominator, or None when either is unknown or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def engagement(row: BrandMention) -> typing.Optional[int]:
    """likes + reposts + replies + quotes over the counts reported; None when none is."""
    counts = [c for c in (row.likes, row.reposts, row.replies, row.quotes) if c is not None]
    return sum(counts) if counts else None


class Facts(typing.NamedTuple):
    """The part of a BrandMention the metrics need (keeps the shuffle small)."""

    tagged: bool
    sentiment: str
    author_id: typing.Optional[str]
    engagement: typing.Optional[int]
    impressions: typing.Optional[int]
    followers: typing.Optional[int]


# Accumulator slots.
(MENTIONS, TAGGED, NEG, NEU, POS, ENG, ENG_N, IMPR_ENG, IMPR, IMPR_N, FOLL_ENG, FOLL, FOLL_N) = range(13)
_N_SLOTS = 13


class MetricsCombineFn(beam.CombineFn):
    """Counts and sums for one (brand, period, period_start, platform)."""

    def create_accumulator(self):
        return [0] * _N_SLOTS, set()

    def add_input(self, acc, facts: Facts):
        c, authors = acc
        c[MENTIONS] += 1
        c[TAGGED] += facts.tagged
        c[NEG if facts.sentiment == "negative" else POS if facts.sentiment == "positive" else NEU] += 1
        if facts.author_id is not None:
            authors.add(facts.author_id)
        if facts.engagement is not None:
            c[ENG] += facts.engagement
            c[ENG_N] += 1
            if facts.impressions is not None:
                c[IMPR_ENG] += facts.engagement
                c[IMPR] += facts.impressions
                c[IMPR_N] += 1
            if facts.followers is not None:
                c[FOLL_ENG] += facts.engagement
                c[FOLL] += facts.followers
                c[FOLL_N] += 1
        return acc

    def merge_accumulators(self, accs):
        total, authors = self.create_accumulator()
        for c, a in accs:
            for i in range(_N_SLOTS):
                total[i] += c[i]
            authors |= a
        return total, authors

    def extract_output(self, acc):
        c, authors = acc
        return tuple(c), len(authors)


_EMPTY = (tuple([0] * _N_SLOTS), 0)


def _explode(row: BrandMention):
    facts = Facts(row.match_kind == "tagged", row.sentiment, row.author_id, engagement(row),
                  row.impressions, row.author_followers)
    for period in PERIODS:
        # Dates travel as ISO strings in keys: GroupByKey needs a deterministic key encoding.
        start = period_start(row.created_at, period).isoformat()
        yield (row.brand_id, period, start, None), facts
        yield (row.brand_id, period, start, row.platform), facts


def _fill_and_grow(keyed, date_range):
    """Adds zero rows for empty periods and the growth rate against the previous period."""
    (brand_id, period, platform), values = keyed
    by_start = {start: agg for start, agg in values if start is not None}
    if date_range is None:
        return
    first, last = date_range
    previous = None
    for start in period_starts(first, last, period):
        (c, authors) = by_start.get(start.isoformat(), _EMPTY)
        mentions = c[MENTIONS]
        yield (period, start.isoformat(), platform), {
            "brand_id": brand_id,
            "period": period,
            "period_start": start,
            "platform": platform,
            "mentions": mentions,
            "previous_mentions": previous,
            "mentions_growth_rate": ratio(None if previous is None else mentions - previous, previous),
            "tagged_mentions": c[TAGGED],
            "untagged_mentions": mentions - c[TAGGED],
            "untagged_share": ratio(mentions - c[TAGGED], mentions),
            "unique_authors": authors,
            "negative_mentions": c[NEG],
            "neutral_mentions": c[NEU],
            "positive_mentions": c[POS],
            "negative_rate": ratio(c[NEG], mentions),
            "positive_rate": ratio(c[POS], mentions),
            "net_sentiment": ratio(c[POS] - c[NEG], c[POS] + c[NEG]),
            "engagements": c[ENG],
            "engagement_reporting_mentions": c[ENG_N],
            "impressions": c[IMPR],
            "impression_reporting_mentions": c[IMPR_N],
            "engagement_rate_impressions": ratio(c[IMPR_ENG], c[IMPR]) if c[IMPR_N] else None,
            "follower_reach": c[FOLL],
            "follower_reporting_mentions": c[FOLL_N],
            "engagement_rate_followers": ratio(c[FOLL_ENG], c[FOLL]) if c[FOLL_N] else None,
        }
        previous = mentions


def _share_of_voice(keyed, competitive_sets: typing.Dict[str, typing.Tuple[str, ...]]):
    """Completes each brand's row with its share of its competitive set's mentions."""
    _key, rows = keyed
    mentions = {}
    rows = list(rows)
    for row in rows:
        mentions[row["brand_id"]] = row["mentions"]
    for row in rows:
        members = competitive_sets.get(row["brand_id"], ())
        set_total = sum(mentions.get(b, 0) for b in members) if members else None
        row["competitive_set_mentions"] = set_total
        row["share_of_voice"] = ratio(row["mentions"], set_total)
        yield Metric(**row)


class ComputeMetrics(beam.PTransform):
    """BrandMentions (plus the valid mentions' dates) -> Metric rows.

    Args:
        config: The brand config (the brands to report and their competitive sets).
    """

    def __init__(self, config: BrandConfig):
        super().__init__()
        self._brand_ids = config.brand_ids()
        self._sets = {b: config.competitive_set(b) for b in self._brand_ids}

    def expand(self, inputs):
        brand_mentions, mention_dates = inputs
        # The run's date range comes from every valid post, matched or not, so a
        # brand silent for the whole run still gets its zero rows.
        date_range = (
            mention_dates
            | "DayBounds" >> beam.Map(lambda d: (d, d))
            | "DateRange" >> beam.CombineGlobally(_DateRangeFn()).without_defaults()
        )
        aggregated = (
            brand_mentions
            | "Explode" >> beam.FlatMap(_explode)
            | "Aggregate" >> beam.CombinePerKey(MetricsCombineFn())
            | "KeyBySeries" >> beam.Map(lambda kv: ((kv[0][0], kv[0][1], kv[0][3]), (kv[0][2], kv[1])))
        )
        every_brand = (
            aggregated.pipeline
            | "EveryBrand" >> beam.Create([((b, p, None), (None, None)) for b in self._brand_ids for p in PERIODS])
        )
        return (
            (aggregated, every_brand)
            | "Series" >> beam.Flatten()
            | "GroupSeries" >> beam.GroupByKey()
            | "FillAndGrow" >> beam.FlatMap(_fill_and_grow, AsSingleton(date_range, default_value=None))
            | "GroupPeriods" >> beam.GroupByKey()
            | "ShareOfVoice" >> beam.FlatMap(_share_of_voice, self._sets).with_output_types(Metric)
        )


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
