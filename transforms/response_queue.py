"""The response queue: per brand, the mentions that call for an answer and have none from the brand yet.

Two tables come out of `ComputeResponseQueue`, both recomputed whole by every run (full
or windowed) from the run's brand mentions and the replies of the brand's answering
accounts (`transforms.metrics.KnownReplies`, the same replies the service metrics see):

- `response_queue`: the open items at the run's *as-of* time, ranked per brand by priority;
- `queue_metrics`: per brand, period and match kind, what called for an answer, how much
  was answered within the target, the time to first answer (median, p90), and the
  backlog (items open) at the end of each period.

What calls for an answer (`reasons`; a brand's `response:` settings, `schemas.config.ResponseConfig`):

- **complaint**: scored negative toward the brand (p_negative >= `min_p_negative`), tagged or not;
- **question**: a question (`is_question`: a sentence ending in '?' with an interrogative word,
  or a request such as "подскажите", in en/ru/uk/hr/sr) that is tagged, or untagged with one of
  the `question_topics` (purchase, delivery, service by default);
- **thanks**: positive and untagged, by an author with at least `thank_min_followers` followers
  or with at least `thank_min_engagement` engagements on the post.

Plain reposts and the brand's own accounts' posts never enter. An item is answered by the
first reply of one of the brand's answering accounts (its `handles` and `response.accounts`)
to the post, made after it and within the horizon (`response.horizon_days`); it is open at a
time T while it is younger than the horizon at T and has no such reply before T.

The as-of time is deterministic: midnight (UTC) after the last day of the run's date range
(a full run: the day of its newest valid post; a windowed run: its window's end, or the end
of the latest day processed so far). Ages, breaches and priorities are measured at it, so a
chain of windowed runs ending on the same day gives the queue of one full run.

Priority, in [0, 100] (docs/response-queue.md)::

    100 x (0.30 reach + 0.25 negativity + 0.20 age + 0.10 untagged + 0.15 repeat)

    reach      = min(1, log10(1 + followers + 10 x engagement) / 6)   (unknown counts as 0)
    negativity = p_negative
    age        = min(1, age in minutes / target_minutes)
    untagged   = 1 for an untagged mention (the brand was never notified), else 0
    repeat     = 1 when the author has 2 or more complaints about the brand in the horizon, else 0
"""

from __future__ import annotations

import datetime
import math
import re
import typing

import apache_beam as beam
from apache_beam.pvalue import AsDict, AsSingleton

from schemas import PERIODS, BrandMention
from schemas.config import BrandConfig
from schemas.records import QueueMetric, ResponseQueueItem
from transforms.metrics import (KnownReplies, RunDateRange, answering_handles, engagement, histogram_median,
                                histogram_quantile, next_period_start, period_start, period_starts, response_bucket)

UTC = datetime.timezone.utc
# Priority weights (they sum to 1) and the reach scale: log10(1 + 1,000,000) / 6 is 1.
WEIGHTS = {"reach": 0.30, "negativity": 0.25, "age": 0.20, "untagged": 0.10, "repeat": 0.15}
REACH_LOG10_SCALE = 6.0
REPEAT_COMPLAINTS = 2
MATCH_KIND_BREAKDOWN = (None, "tagged", "untagged")

# Interrogative words (a sentence ending in '?' needs one to be a question): en, ru, uk, hr, sr (Latin, Cyrillic).
INTERROGATIVES = frozenset("""
how what when where why who whom whose which can could would will is are am was were do does did should shall
may might any anyone anybody someone somebody has have
как что чего чем когда где куда откуда почему зачем кто какой какая какое какие каких сколько можно ли разве
чей чья чьё нет есть
як що чого коли де куди звідки чому навіщо хто який яка яке які скільки можна чи невже чий чия є
kako što sto šta sta kada kad gdje gde kamo kuda zašto zasto tko ko koji koja koje kojeg čiji ciji koliko li
može moze mogu možete mozete ima imate da je
како шта када кад где куда зашто ко који која које колико ли може могу можете има имате да је
""".split())
# Requests that ask for an answer without a question mark ("подскажите, где купить").
REQUESTS = frozenset("""
подскажите подскажи помогите помоги объясните підкажіть підкажи допоможіть допоможи поясніть
pomozite pomozi recite objasnite помозите помози реците објасните
""".split())
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[^.!?…\n]*[.!?…\n]*")


def is_question(text: str) -> bool:
    """Whether a post asks something: a sentence ending in '?' with an interrogative word, or a request word.

    Args:
        text: The post's text, any of en/ru/uk/hr/sr (Serbian in either script).

    Returns:
        True for "Where can I buy the new Pixel?", "Када стиже поруџбина?", "подскажите, где купить";
        False for "Sprite или Кока-Кола?" (a choice, no interrogative word) or a statement.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    if REQUESTS.intersection(words):
        return True
    for sentence in _SENTENCE.findall(text):
        if "?" in sentence and INTERROGATIVES.intersection(w.lower() for w in _WORD.findall(sentence)):
            return True
    return False


class QueueRules(typing.NamedTuple):
    """One brand's entry rules and targets, as the workers need them."""

    accounts: frozenset[str]  # lower-cased answering handles: their own posts never enter
    target_minutes: int
    horizon: datetime.timedelta
    min_p_negative: float
    question_topics: frozenset[str]
    thank_min_followers: int
    thank_min_engagement: int


def queue_rules(config: BrandConfig) -> dict[str, QueueRules]:
    """Brand id -> its `QueueRules`, from the config's `response:` settings (with their defaults)."""
    out = {}
    for brand in config.brands:
        r = brand.response
        out[brand.id] = QueueRules(frozenset(h.lower() for h in brand.answering_accounts()), r.target_minutes,
                                   datetime.timedelta(days=r.horizon_days), r.min_p_negative,
                                   frozenset(r.question_topics), r.thank_min_followers, r.thank_min_engagement)
    return out


def max_horizon(config: BrandConfig) -> datetime.timedelta:
    """The longest horizon of any brand: how far back a windowed run's new replies can change the queue."""
    return max(datetime.timedelta(days=b.response.horizon_days) for b in config.brands)


def reasons(row: BrandMention, rules: QueueRules) -> tuple[str, ...]:
    """Why a brand mention calls for an answer: ('complaint', 'question', 'thanks') in that order, or ().

    Args:
        row: The scored brand mention.
        rules: Its brand's `QueueRules`.
    """
    if row.is_repost or (row.author_handle or "").lower() in rules.accounts:
        return ()
    out = []
    if row.sentiment == "negative" and row.p_negative >= rules.min_p_negative:
        out.append("complaint")
    if is_question(row.text) and (row.match_kind == "tagged" or rules.question_topics.intersection(row.topics or ())):
        out.append("question")
    if row.sentiment == "positive" and row.match_kind == "untagged":
        eng = engagement(row)
        if ((row.author_followers is not None and row.author_followers >= rules.thank_min_followers)
                or (eng is not None and eng >= rules.thank_min_engagement)):
            out.append("thanks")
    return tuple(out)


class Candidate(typing.NamedTuple):
    """A brand mention that called for an answer, with the brand's first reply to it (None: none seen)."""

    row: BrandMention
    reasons: tuple[str, ...]
    first_reply: datetime.datetime | None


def as_of_time(date_range: tuple[datetime.date, datetime.date] | None
               ) -> datetime.datetime | None:
    """The run's as-of time: midnight (UTC) after the last day of its date range; None for a run without posts."""
    if date_range is None:
        return None
    return datetime.datetime.combine(date_range[1] + datetime.timedelta(days=1), datetime.time(), UTC)


def _candidates(row: BrandMention, rules: typing.Mapping[str, QueueRules],
                replies: typing.Mapping[tuple[str, str], typing.Sequence[tuple]],
                as_of: datetime.datetime | None):
    brand = rules.get(row.brand_id)
    if brand is None or as_of is None or row.created_at >= as_of:
        return
    why = reasons(row, brand)
    if not why:
        return
    until = min(as_of, row.created_at + brand.horizon)
    # The replies are the brand accounts' own (few next to the mentions): a side input by (platform, post id).
    times = [at for brand_id, at in replies.get((row.platform, row.mention_id), ())
             if brand_id == row.brand_id and row.created_at <= at < until]
    yield Candidate(row, why, min(times) if times else None)


def _author_key(c: Candidate) -> tuple | None:
    author = c.row.author_id or (c.row.author_handle or "").lower()
    return (c.row.brand_id, c.row.platform, author) if author else None


def _complaint_in_horizon(c: Candidate, rules: typing.Mapping[str, QueueRules], as_of: datetime.datetime):
    if "complaint" in c.reasons and c.row.created_at >= as_of - rules[c.row.brand_id].horizon:
        key = _author_key(c)
        if key is not None:
            yield key, 1


def priority(followers: int | None, eng: int | None, p_negative: float, age_minutes: float,
             target_minutes: int, untagged: bool, repeat: bool) -> float:
    """The priority score in [0, 100] (see the module docstring), rounded to 2 decimals."""
    reach = min(1.0, math.log10(1 + (followers or 0) + 10 * (eng or 0)) / REACH_LOG10_SCALE)
    score = (WEIGHTS["reach"] * reach + WEIGHTS["negativity"] * float(p_negative)
             + WEIGHTS["age"] * min(1.0, max(0.0, age_minutes) / target_minutes)
             + WEIGHTS["untagged"] * untagged + WEIGHTS["repeat"] * repeat)
    return round(100 * score, 2)


def _open_item(c: Candidate, rules: typing.Mapping[str, QueueRules], as_of: datetime.datetime,
               complaints: typing.Mapping[tuple, int]):
    """A candidate still open at `as_of` -> its queue row (rank 0: ranked per brand afterwards)."""
    brand = rules[c.row.brand_id]
    row = c.row
    if c.first_reply is not None or row.created_at < as_of - brand.horizon:
        return
    age_minutes = (as_of - row.created_at).total_seconds() / 60
    key = _author_key(c)
    count = complaints.get(key, 0) if key is not None else int("complaint" in c.reasons)
    eng = engagement(row)
    yield ResponseQueueItem(
        brand_id=row.brand_id, rank=0,
        priority=priority(row.author_followers, eng, row.p_negative, age_minutes, brand.target_minutes,
                          row.match_kind == "untagged", count >= REPEAT_COMPLAINTS),
        reasons=list(c.reasons), mention_id=row.mention_id, platform=row.platform, url=row.url,
        author_id=row.author_id, author_handle=row.author_handle, created_at=row.created_at, lang=row.lang,
        text=row.text, sentiment=row.sentiment, p_negative=row.p_negative, topics=list(row.topics or ()),
        match_kind=row.match_kind, author_followers=row.author_followers, engagement=eng, author_complaints=count,
        age_hours=round(age_minutes / 60, 2), target_minutes=brand.target_minutes,
        breached_target=age_minutes > brand.target_minutes, as_of=as_of)


def _ranked(keyed: tuple[str, typing.Iterable[ResponseQueueItem]]) -> typing.Iterator[ResponseQueueItem]:
    _brand, items = keyed
    order = sorted(items, key=lambda i: (-i.priority, i.created_at, i.platform, i.mention_id))
    for rank, item in enumerate(order, 1):
        yield item._replace(rank=rank)


# ---- queue metrics --------------------------------------------------------------------------------

# Event slots: counts summed per key, then the response-time histogram.
(ENTERED, COMPLAINT, QUESTION, THANKS, ANSWERED, DUE, WITHIN, OPEN, OPEN_BREACHED) = range(9)
_N = 9


def _at_midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), UTC)


def _metric_events(c: Candidate, rules: typing.Mapping[str, QueueRules], as_of: datetime.datetime):
    """A candidate -> ((brand, period, period_start, match kind), (counts, wait seconds or None)) events.

    One event in its creation period (per period type, for its match kind and for both
    together), and one for every period whose end (or the as-of time) finds it open.
    """
    brand = rules[c.row.brand_id]
    row = c.row
    target = datetime.timedelta(minutes=brand.target_minutes)
    wait = (c.first_reply - row.created_at).total_seconds() if c.first_reply is not None else None
    within = wait is not None and wait <= target.total_seconds()
    created = [0] * _N
    created[ENTERED] = 1
    created[COMPLAINT] = int("complaint" in c.reasons)
    created[QUESTION] = int("question" in c.reasons)
    created[THANKS] = int("thanks" in c.reasons)
    created[ANSWERED] = int(wait is not None)
    created[WITHIN] = int(within)
    created[DUE] = int(within or row.created_at + target <= as_of)
    closes = row.created_at + brand.horizon
    if c.first_reply is not None:
        closes = min(closes, c.first_reply)
    for period in PERIODS:
        start = period_start(row.created_at, period)
        for kind in (None, row.match_kind):
            yield (row.brand_id, period, start.isoformat(), kind), (tuple(created), wait)
        while True:
            # Open at E when created before E, younger than the horizon at E, and not answered before E.
            end = min(_at_midnight(next_period_start(start, period)), as_of)
            if end > row.created_at + brand.horizon or (c.first_reply is not None and c.first_reply < end):
                break
            opened = [0] * _N
            opened[OPEN] = 1
            opened[OPEN_BREACHED] = int(end - row.created_at > target)
            for kind in (None, row.match_kind):
                yield (row.brand_id, period, start.isoformat(), kind), (tuple(opened), None)
            if end >= as_of or end >= closes:
                break
            start = next_period_start(start, period)


def _every_key(date_range, brand_ids: typing.Sequence[str]):
    """Every (brand, period, period_start, match kind) of the run's date range, with nothing in it: zero rows."""
    if date_range is None:
        return
    first, last = date_range
    empty = (tuple([0] * _N), None)
    for brand_id in brand_ids:
        for period in PERIODS:
            for start in period_starts(first, last, period):
                for kind in MATCH_KIND_BREAKDOWN:
                    yield (brand_id, period, start.isoformat(), kind), empty


class QueueMetricsCombineFn(beam.CombineFn):
    """Counts and a response-time histogram (`transforms.metrics.response_bucket`) for one key."""

    def create_accumulator(self):
        return [0] * _N, {}

    def add_input(self, acc, event):
        counts, waits = acc
        values, wait = event
        for i, v in enumerate(values):
            counts[i] += v
        if wait is not None:
            bucket = response_bucket(wait)
            waits[bucket] = waits.get(bucket, 0) + 1
        return acc

    def merge_accumulators(self, accs):
        merged = self.create_accumulator()
        for counts, waits in accs:
            for i, v in enumerate(counts):
                merged[0][i] += v
            for bucket, n in waits.items():
                merged[1][bucket] = merged[1].get(bucket, 0) + n
        return merged

    def extract_output(self, acc):
        return acc


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _queue_metric(keyed, as_of: datetime.datetime) -> QueueMetric:
    (brand_id, period, start, kind), (c, waits) = keyed
    first = datetime.date.fromisoformat(start)
    return QueueMetric(
        brand_id=brand_id, period=period, period_start=first, match_kind=kind,
        calls_for_answer=c[ENTERED], complaints=c[COMPLAINT], questions=c[QUESTION], thanks=c[THANKS],
        answered=c[ANSWERED], due=c[DUE], answered_within_target=c[WITHIN],
        answered_within_target_share=c[WITHIN] / c[DUE] if c[DUE] else None,
        median_response_minutes=_minutes(histogram_median(waits)),
        p90_response_minutes=_minutes(histogram_quantile(waits, 0.9)),
        queue_size=c[OPEN], queue_breached=c[OPEN_BREACHED],
        measured_at=min(_at_midnight(next_period_start(first, period)), as_of))


class ComputeResponseQueue(beam.PTransform):
    """{'brand_mentions', 'mention_dates', 'posts'?, 'brand_replies'?} -> {'response_queue', 'queue_metrics'}.

    The inputs are those of `transforms.metrics.ComputeMetrics`: the run's scored brand
    mentions, the dates of every valid post (the run's date range, hence the as-of time), every
    valid post (one PCollection or a tuple: the answering accounts' replies among them) and the
    connectors' brand replies.

    Args:
        config: The brand config (brands, their answering accounts and `response:` settings).
    """

    def __init__(self, config: BrandConfig):
        super().__init__()
        self._rules = queue_rules(config)
        self._handles = answering_handles(config)
        self._brand_ids = config.brand_ids()

    def expand(self, inputs):
        mentions = inputs["brand_mentions"]
        rules = self._rules
        reply_inputs = {k: v for k, v in inputs.items() if k in ("brand_mentions", "posts", "brand_replies")}
        replies_by_post = (
            reply_inputs
            | "KnownReplies" >> KnownReplies(self._handles)
            | "GroupRepliesByPost" >> beam.GroupByKey()
            | "ReplyLists" >> beam.MapTuple(lambda key, found: (key, sorted(found))))
        date_range = inputs["mention_dates"] | "RunDateRange" >> RunDateRange()
        as_of = date_range | "AsOf" >> beam.Map(as_of_time)
        as_of_side = AsSingleton(as_of, default_value=None)
        candidates = mentions | "CallsForAnswer" >> beam.FlatMap(
            _candidates, rules, AsDict(replies_by_post), as_of_side)
        complaints = (candidates
                      | "ComplaintsInHorizon" >> beam.FlatMap(_complaint_in_horizon, rules, as_of_side)
                      | "ComplaintsPerAuthor" >> beam.CombinePerKey(sum))
        queue = (candidates
                 | "OpenItems" >> beam.FlatMap(_open_item, rules, as_of_side, AsDict(complaints))
                 | "KeyByBrand" >> beam.Map(lambda item: (item.brand_id, item))
                 | "GroupByBrand" >> beam.GroupByKey()
                 | "Rank" >> beam.FlatMap(_ranked).with_output_types(ResponseQueueItem))
        events = candidates | "Events" >> beam.FlatMap(_metric_events, rules, as_of_side)
        zeros = date_range | "EveryPeriod" >> beam.FlatMap(_every_key, self._brand_ids)
        metrics = ((events, zeros)
                   | "AllEvents" >> beam.Flatten()
                   | "Aggregate" >> beam.CombinePerKey(QueueMetricsCombineFn())
                   | "QueueMetrics" >> beam.Map(_queue_metric, as_of_side).with_output_types(QueueMetric))
        return {"response_queue": queue, "queue_metrics": metrics}


def queue_recompute_from(window_start: datetime.date, horizon: datetime.timedelta) -> dict[str, datetime.date]:
    """Period -> first period_start a windowed run recomputes in `queue_metrics`.

    A reply in the window can answer an item up to a horizon before the window's start, and
    changes the rows of that item's periods: those from the period holding (start - horizon) on.
    """
    earliest = datetime.datetime.combine(window_start, datetime.time(), UTC) - horizon
    return {period: period_start(earliest, period) for period in PERIODS}


__all__ = ["Candidate", "ComputeResponseQueue", "INTERROGATIVES", "QueueMetricsCombineFn", "QueueRules", "REQUESTS",
           "WEIGHTS", "as_of_time", "is_question", "max_horizon", "priority", "queue_recompute_from", "queue_rules",
           "reasons"]
