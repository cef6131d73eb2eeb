"""Scoring as a Beam step: sentiment, topics and relevance by RunInference over the distinct texts of the matched posts.

Each matched post is scored once (not once per brand it mentions), and each distinct
text once: reposts and copy-paste campaigns repeat texts, and the model must not pay
for them twice. Posts are grouped by the hash of their normalised text
(`models.text.model_text`: links, @handles and a leading `RT @user:` do not make a
text different); the group rides through RunInference as the key of its one text, so
the scores come back attached to every post of the group without a second join.

Before RunInference the texts are sorted by length in runs of 4,096 (in the global window),
so that the batches RunInference cuts hold texts of similar length and pad little. A batch
the model fails on goes to dead letters, one row per post, with the error.

Stance per brand (`models.stance`): a post whose text names two or more of its matched brands
gets a label per brand. A comparison cue ("Bolt > Uber", "switched from X to Y", "bolji od", figures
compared: "HT 45 eura, A1 za 30") gives the winner positive and the loser negative, a brand that
could not serve ("Glovo bio zatvoren") neutral (`sentiment_target = 'comparison'`); else the
clause naming the brand is scored as a plain text ("Love Bolt, but Uber was awful again": "Uber
was awful again"), and its label is the brand's unless the model reads it as neutral, which counts
only for a conceded clause ("we have X for the kids, but ...") (`'segment'`); else, and for every
post naming one brand, the post's own label (`'post'`).
Topics always come from the whole text. The clauses ride through the same RunInference (each
distinct clause of a text once, like any text); only groups with clause passes are joined back
to their post pass (a second, small GroupByKey), the rest go straight to `brand_mentions`. A
failed clause pass falls back to the post's label; a post whose own pass fails is a dead letter,
whatever its clause passes did, so counts add up: posts in = posts in `brand_mentions` + dead letters.

Progress (`transforms.progress`): posts matched are counted on the way in, texts and posts
scored on the way out, as Beam counters and gauges (`sentiment/texts_scored`,
`sentiment/posts_scored`, `sentiment/texts_per_second`, `sentiment/eta_seconds`) and in the
process-wide tally that prints a line every few seconds where enabled.
"""

from __future__ import annotations

import operator
import time
import typing

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.transforms.window import GlobalWindows

from models.scorer import JudgedText, text_of
from models.stance import LABELS, POST, BrandStance, find_target, resolve
from models.stance import plan as stance_plan
from models.text import model_text, text_key
from schemas import BrandMention, Mention
from transforms.coders import RECORDS_CODER
from transforms.dead_letters import dead_letter
from transforms.progress import POSTS_MATCHED, POSTS_SCORED, PROGRESS, TEXTS_SCORED

# Columns a BrandMention copies from its Mention unchanged.
_COPIED = tuple(name for name in BrandMention._fields if name in Mention._fields and name != "id")
_COPY = operator.attrgetter(*_COPIED)
NAMESPACE = "sentiment"
# Made once: a counter object per element costs more than the work it counts.
_DISTINCT_TEXTS = beam.metrics.Metrics.counter(NAMESPACE, "distinct_texts")
_REPEATED_TEXT_POSTS = beam.metrics.Metrics.counter(NAMESPACE, "repeated_text_posts")
_TEXTS_SCORED = beam.metrics.Metrics.counter(NAMESPACE, "texts_scored")
_POSTS_SCORED = beam.metrics.Metrics.counter(NAMESPACE, "posts_scored")
_SEGMENT_TEXTS = beam.metrics.Metrics.counter(NAMESPACE, "stance_segment_texts")
_STANCE_UNPLANNED = beam.metrics.Metrics.counter(NAMESPACE, "stance_unplanned_texts")
_RATE = beam.metrics.Metrics.gauge(NAMESPACE, "texts_per_second")
_ETA = beam.metrics.Metrics.gauge(NAMESPACE, "eta_seconds")
_GAUGE_EVERY = 2.0  # seconds between gauge updates: a gauge per element would cost more than the count
_last_gauge = [0.0]


def _count_scored(posts: int) -> None:
    """Counts one scored text carrying ``posts`` posts; refreshes the rate and ETA gauges now and then."""
    _TEXTS_SCORED.inc()
    _POSTS_SCORED.inc(posts)
    PROGRESS.add(TEXTS_SCORED)
    PROGRESS.add(POSTS_SCORED, posts)
    now = time.monotonic()
    if now - _last_gauge[0] >= _GAUGE_EVERY:
        _last_gauge[0] = now
        figures = PROGRESS.snapshot()
        if "texts_per_second" in figures:
            _RATE.set(int(round(figures["texts_per_second"])))
        if "eta_seconds" in figures:
            _ETA.set(int(round(figures["eta_seconds"])))


def _probabilities(inference) -> tuple[float, float, float]:
    return float(inference["p_negative"]), float(inference["p_neutral"]), float(inference["p_positive"])


def to_brand_mentions(scored: tuple[typing.Sequence[tuple[Mention, tuple]], PredictionResult],
                      stances: typing.Sequence[typing.Sequence[BrandStance]] = (),
                      segments: typing.Mapping[str, PredictionResult] | None = None
                      ) -> typing.Iterator[BrandMention]:
    """Expands one scored text into one BrandMention per post carrying it and brand the post mentions.

    Args:
        scored: The posts sharing a text, and the text's prediction.
        stances: Per post of the group, in its order, where each brand's label comes from
            (:func:`stance_targets`); a post naming several brands takes its rows' sentiment
            from here, a brand absent from it (or a post without an entry) the post's.
        segments: Clause text -> its prediction, for the clauses that were scored (a failed
            clause pass is absent: its brand keeps the post's label).
    """
    group, result = scored
    _count_scored(len(group))
    scores = result.inference
    # A model without topics leaves these empty (not null: "no topic" is a fact).
    topics = list(scores.get("topics", ()))
    topic_scores = {str(k): float(v) for k, v in dict(scores.get("topic_scores", {})).items()}
    # The model's relevance per profile (named by brand id; transforms.relevance judges it), if it scored any.
    relevance = dict(scores.get("relevance", {}))
    post = _probabilities(scores)
    segments = segments or {}
    for index, (mention, matches) in enumerate(group):
        toward = {}
        for stance in stances[index] if index < len(stances) else ():
            seg = segments.get(stance.segment) if stance.segment else None
            toward[stance.brand] = resolve(stance, post, None if seg is None else _probabilities(seg.inference))
        base = dict(zip(_COPIED, _COPY(mention)))
        for match in matches:
            probs, source = toward.get(match.brand_id, (post, POST)) if len(matches) > 1 else (post, POST)
            yield BrandMention(
                mention_id=mention.id,
                brand_id=match.brand_id,
                match_kind=match.kind,
                matched_term=match.term,
                matched_rule=match.rule,
                sentiment=scores["sentiment"] if source == POST else LABELS[max(range(3), key=probs.__getitem__)],
                p_negative=probs[0],
                p_neutral=probs[1],
                p_positive=probs[2],
                sentiment_target=source,
                model_id=result.model_id,
                topics=list(topics),
                topic_scores=dict(topic_scores),
                relevance=relevance.get(match.brand_id),
                **base,
            )


def stance_targets(mention: Mention, matches: typing.Sequence) -> tuple[BrandStance, ...]:
    """Where each brand's label comes from, for a post whose text names two or more of its brands.

    Each brand is located in the post's own text where the term that matched it first occurs
    (posts sharing a normalised text may differ in a retweet prefix or a handle, and which of
    them a run sees together depends on how it is sliced: each is planned on its own). A brand
    matched without its term in the text (a rule on the author or language, a handle outside
    the text) is left out: it keeps the post's label.

    Returns:
        One :class:`models.stance.BrandStance` per located brand, or none when fewer than two are.
    """
    if len(matches) < 2:
        return ()
    text = mention.text
    spans: dict[str, tuple[int, int]] = {}
    for match in matches:
        if match.brand_id not in spans:
            span = find_target(text, match.term)
            if span is not None:
                spans[match.brand_id] = span
    if len(spans) < 2:
        return ()
    return stance_plan(text, spans, mention.lang)


def _planned(mention: Mention, matches: typing.Sequence) -> tuple[BrandStance, ...]:
    try:
        return stance_targets(mention, matches)
    except Exception:  # noqa: BLE001 - a text the cues cannot read keeps the post's label, as a failed clause pass
        _STANCE_UNPLANNED.inc()
        return ()


class _WithProgress(beam.DoFn):
    """A DoFn that turns progress lines on in its worker process where the job asked."""

    def __init__(self, progress: bool):
        self._progress = progress

    def setup(self):
        PROGRESS.enable_once(self._progress)


def _failed_batch_to_dead_letters(failure):
    batch, exc = failure
    for (_key, segment, group, _stances), _text in batch:
        if segment:
            continue  # a clause pass: its brand falls back to the post's sentiment
        for mention, _matches in group:
            yield dead_letter("sentiment", f"model failed on the batch: {type(exc).__name__}: {exc}", mention,
                              f"{mention.platform}:{mention.id}")


_PAIR_CODER = RECORDS_CODER.get_impl()


def _key_by_text(pair: tuple[Mention, tuple]) -> tuple[str, bytes]:
    """(mention, matches) -> (text key, the pair encoded).

    The pair crosses the shuffle as bytes: a runner that keeps a shuffle in memory (the
    DirectRunner) then holds one bytes object per post instead of a tree of Python
    objects, and does not decode and re-encode it on the way through.
    """
    PROGRESS.add(POSTS_MATCHED)
    return text_key(pair[0].text), _PAIR_CODER.encode(pair)


def _texts_per_group(keyed, judged_brands: frozenset = frozenset()):
    """(text key, encoded posts) -> the texts to score; counts texts saved.

    Yields ``((key, '', posts, stances per post), normalised text)`` for the posts' own pass
    and, where a post's text names several brands and a brand's label comes from its clause,
    ``((key, clause, (), ()), normalised clause)`` once per distinct clause of the group.
    With ``judged_brands``, each text comes as a :class:`~models.scorer.JudgedText` that says
    whether its relevance is read: the posts' text when one of them matches a judged brand (a
    clause, never: relevance is the post's).
    """
    key, encoded = keyed
    group = [_PAIR_CODER.decode(blob) for blob in encoded]
    _DISTINCT_TEXTS.inc()
    if len(group) > 1:
        _REPEATED_TEXT_POSTS.inc(len(group) - 1)
    # The group's order depends on the runner; pick the same representative every time.
    group.sort(key=lambda pair: (pair[0].platform, pair[0].id))
    stances = tuple(_planned(mention, matches) for mention, matches in group)
    text = model_text(group[0][0].text)
    if judged_brands:
        text = JudgedText(text, any(m.brand_id in judged_brands for _mention, matches in group for m in matches))
    yield (key, "", group, stances), text
    for segment in sorted({s.segment for own in stances for s in own if s.segment}):
        _SEGMENT_TEXTS.inc()
        yield (key, segment, (), ()), JudgedText(model_text(segment), False) if judged_brands else model_text(segment)


def _is_joined(scored) -> int:
    """Partition: 1 for the predictions of groups with clause passes, 0 for the rest."""
    (_key, segment, _group, stances), _result = scored
    return int(bool(segment) or any(s.segment for own in stances for s in own))


def _unjoined(scored):
    (_key, _segment, group, stances), result = scored
    return (group, result), stances


def _by_text_key(scored):
    (key, segment, group, stances), result = scored
    return key, (segment, group, stances, result)


class _ToBrandMentions(_WithProgress):
    """:func:`to_brand_mentions` as a DoFn, for a group that waits for no clause pass."""

    def process(self, element):
        scored, stances = element
        yield from to_brand_mentions(scored, stances)


class _JoinedToBrandMentions(_WithProgress):
    """A group's post pass and its clause passes -> brand mentions; nothing when the post pass failed."""

    def process(self, keyed):
        _key, parts = keyed
        post = None
        segments = {}
        for segment, group, stances, result in parts:
            if segment:
                segments[segment] = result
            else:
                post = (group, result), stances
        if post is not None:
            yield from to_brand_mentions(post[0], post[1], segments)


class SortBundleByLength(beam.DoFn):
    """Re-emits (key, text) elements shortest text first, `max_buffered` at a time; global window only.

    Batches that `RunInference` cuts downstream then hold texts of similar length. At
    most `max_buffered` elements are held: a DirectRunner bundle can be the whole input,
    and sorting runs of a few thousand texts already gives batches of 64 that pad
    little. `ScoreTexts` applies it only where the input is in the global window
    (windowed input is scored in the order it comes), so elements need no window here.
    """

    def __init__(self, max_buffered: int = 4096):
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1")
        self._max_buffered = max_buffered
        self._buffer: list = []

    def start_bundle(self):
        self._buffer = []

    def _sorted(self):
        buffer, self._buffer = self._buffer, []
        buffer.sort(key=lambda element: len(text_of(element[1])))
        return buffer

    def process(self, element):
        self._buffer.append(element)
        if len(self._buffer) >= self._max_buffered:
            return self._sorted()
        return ()

    def finish_bundle(self):
        for element in self._sorted():
            yield GlobalWindows.windowed_value(element)


class ScoreTexts(beam.PTransform):
    """(mention, matches) in; {'brand_mentions', 'dead_letters'} out: each post's sentiment, topics and relevance.

    Args:
        model_handler: An unkeyed ModelHandler from text to a PredictionResult whose
            `inference` holds sentiment, p_negative, p_neutral and p_positive, and
            optionally topics, topic_scores and relevance (`models.handler.ScorerModelHandler`).
        progress: Print progress lines in the worker processes too; default: as this
            process does (`transforms.progress.PROGRESS.enabled`, off with `--quiet`).
        judged_brands: Brands whose matches relevance judges (the handler's profiles): the handler
            is then given :class:`~models.scorer.JudgedText` values, and reads relevance only for
            the texts that match one of them.
    """

    def __init__(self, model_handler: ModelHandler, progress: bool | None = None,
                 judged_brands: typing.Iterable[str] = ()):
        super().__init__()
        self._handler = model_handler
        self._progress = PROGRESS.enabled if progress is None else bool(progress)
        self._judged = frozenset(judged_brands)

    def expand(self, matched):
        texts = (
            matched
            | "KeyByText" >> beam.Map(_key_by_text).with_output_types(tuple[str, bytes])
            | "GroupByText" >> beam.GroupByKey()
            | "TextsPerGroup" >> beam.FlatMap(_texts_per_group, self._judged)
        )
        if isinstance(matched.windowing.windowfn, GlobalWindows):
            texts = texts | "SortByLength" >> beam.ParDo(SortBundleByLength())
        main, failures = (
            texts | "RunInference" >> RunInference(KeyedModelHandler(self._handler)).with_exception_handling())
        alone, joined = main | "SplitJoined" >> beam.Partition(lambda scored, _n: _is_joined(scored), 2)
        rows = (alone
                | "Unkey" >> beam.Map(_unjoined)
                | "ToBrandMentions" >> beam.ParDo(_ToBrandMentions(self._progress)).with_output_types(BrandMention))
        toward = (joined
                  | "KeyByTextKey" >> beam.Map(_by_text_key)
                  | "JoinClausePasses" >> beam.GroupByKey()
                  | "ToBrandMentionsPerBrand" >> beam.ParDo(_JoinedToBrandMentions(self._progress))
                  .with_output_types(BrandMention))
        dead = failures.failed_inferences | "FailedToDeadLetters" >> beam.FlatMap(_failed_batch_to_dead_letters)
        return {"brand_mentions": (rows, toward) | "AllBrandMentions" >> beam.Flatten(), "dead_letters": dead}
