"""The records coder (schemas/coders.py) and the in-bundle combine (transforms/combine.py)."""

from __future__ import annotations

import datetime
import pickle
import random
import typing

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.coders import coders
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import records
from schemas.coders import RecordsCoder
from transforms.coders import RECORD_TYPES, RECORDS_CODER
from transforms.combine import CombineExploded, MergeAccumulatorsFn
from transforms.distinct import id_hash
from transforms.matching import Match
from transforms.metrics import Facts, MetricsCombineFn
from transforms.metrics_topics import SentimentCountsFn

UTC = datetime.timezone.utc
WHEN = datetime.datetime(2026, 9, 7, 23, 59, 59, 999999, tzinfo=UTC)


def _value(arrow: pa.DataType, i: int):
    """A realistic value of an Arrow column type (i varies it)."""
    if pa.types.is_timestamp(arrow):
        return WHEN - datetime.timedelta(days=i, microseconds=i)
    if pa.types.is_date(arrow):
        return datetime.date(2026, 12, 28) - datetime.timedelta(days=i)
    if pa.types.is_boolean(arrow):
        return i % 2 == 0
    if pa.types.is_integer(arrow):
        return 2 ** 40 + i
    if pa.types.is_floating(arrow):
        return 0.25 + i
    if pa.types.is_list(arrow):
        return [_value(arrow.value_type, i), _value(arrow.value_type, i + 1)]
    if pa.types.is_map(arrow):
        return {_value(arrow.key_type, i): _value(arrow.item_type, i), "zweite": _value(arrow.item_type, i + 1)}
    return f"текст {i} — 🙂 @brand #tag"


def _record(record_type, schema: pa.Schema, i: int, nulls: bool = False):
    values = {}
    for n, name in enumerate(record_type._fields):
        nullable = schema.field(name).nullable
        values[name] = None if nulls and nullable and n % 2 else _value(schema.field(name).type, i + n)
    return record_type(**values)


RECORDS = [
    (records.Mention, records.MENTION_SCHEMA), (records.BrandMention, records.BRAND_MENTION_SCHEMA),
    (records.DeadLetter, records.DEAD_LETTER_SCHEMA), (records.Metric, records.METRIC_SCHEMA),
    (records.LangMetric, records.LANG_METRIC_SCHEMA), (records.TopicMetric, records.TOPIC_METRIC_SCHEMA),
    (records.Alert, records.ALERT_SCHEMA), (records.AccountSnapshot, records.ACCOUNT_SNAPSHOT_SCHEMA),
    (records.BrandReply, records.BRAND_REPLY_SCHEMA),
]


def _roundtrip(coder, value):
    return coder.decode(coder.encode(value))


@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("record_type,schema", RECORDS, ids=[r[0].__name__ for r in RECORDS])
def test_every_record_type_survives_the_coder(record_type, schema, nulls):
    record = _record(record_type, schema, 3, nulls)
    decoded = _roundtrip(RECORDS_CODER, record)
    assert decoded == record and type(decoded) is record_type
    for name in record_type._fields:
        got, want = getattr(decoded, name), getattr(record, name)
        assert type(got) is type(want), name  # lists stay lists, dates stay dates
        if isinstance(want, datetime.datetime):
            assert got.tzinfo is UTC and got.utcoffset() == datetime.timedelta(0)


def test_nested_records_and_tuples_round_trip():
    mention = _record(records.Mention, records.MENTION_SCHEMA, 1)
    matches = (Match("apple", "untagged", "Apple", "names"), Match("samsung", "tagged", "@Samsung", "handles"))
    element = ("a1b2", [(mention, matches)])
    assert _roundtrip(RECORDS_CODER, element) == element
    result = PredictionResult("key", {"sentiment": "negative", "topics": ["price"], "topic_scores": {"price": 0.9}},
                              "e5-small@abc")
    decoded = _roundtrip(RECORDS_CODER, (("post", 1), result))
    assert decoded == (("post", 1), result) and type(decoded[1]) is PredictionResult
    facts = Facts(True, "negative", None, 3, None, 0, None, 10, 5, False, True, 61.5)
    assert _roundtrip(RECORDS_CODER, facts) == facts


def test_other_values_keep_their_exact_type_and_timezone():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    values = [datetime.datetime(2026, 1, 1, 12, tzinfo=plus_two), datetime.datetime(2026, 1, 1, 12),
              datetime.date(1, 1, 1), datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
              {"set"}, frozenset({1}), 2 ** 70, None, ("t",), ["l"], {"d": (1, 2.5)}, b"\x00\xff", True]
    for value in values:
        got = _roundtrip(RECORDS_CODER, value)
        assert got == value and type(got) is type(value)
        if isinstance(value, datetime.datetime):
            assert got.tzinfo == value.tzinfo


def test_records_encode_smaller_than_pickled():
    mention = _record(records.Mention, records.MENTION_SCHEMA, 0)
    assert len(RECORDS_CODER.encode(mention)) < len(coders.PickleCoder().encode(mention))


def test_keys_get_beams_deterministic_coder():
    det = RECORDS_CODER.as_deterministic_coder("GroupByKey")
    assert det.is_deterministic() and not RECORDS_CODER.is_deterministic()
    assert det.encode({"x": 1, "y": 2}) == det.encode({"y": 2, "x": 1})
    key = ("apple", "week", "2026-09-07", None)
    assert _roundtrip(det, key) == key


def test_coder_pickles_with_its_types_and_is_beams_default():
    copy = pickle.loads(pickle.dumps(RECORDS_CODER))
    assert copy == RECORDS_CODER and hash(copy) == hash(RECORDS_CODER)
    mention = _record(records.Mention, records.MENTION_SCHEMA, 2)
    assert copy.decode(RECORDS_CODER.encode(mention)) == mention
    assert beam.coders.registry.get_coder(typing.Any) == RECORDS_CODER
    assert beam.coders.registry.get_coder(tuple[str, typing.Any]).get_impl() is not None
    # Records with a type hint keep their RowCoder (schemas.fields.record_type).
    assert isinstance(beam.coders.registry.get_coder(records.Mention), beam.coders.RowCoder)
    # Another type order is another coder: tags never mix between them.
    assert RecordsCoder(tuple(reversed(RECORD_TYPES))) != RECORDS_CODER
    with pytest.raises(TypeError):
        RecordsCoder((dict,))


def test_records_cross_a_shuffle_unchanged():
    rows = [_record(records.BrandMention, records.BRAND_MENTION_SCHEMA, i, nulls=i % 2 == 1) for i in range(20)]
    with TestPipeline() as p:
        out = (p | beam.Create(rows) | beam.Map(lambda r: (r.brand_id[-1:], r)) | beam.GroupByKey()
               | beam.FlatMap(lambda kv: kv[1]))
        assert_that(out, equal_to(rows))


# ---- CombineExploded ----------------------------------------------------------------------------

def _explode(element):
    word, n = element
    for key in (word[:1], word[-1:], None):
        yield key, n


@pytest.mark.parametrize("max_keys", [2, 1000])
def test_combine_exploded_equals_flatmap_and_combine_per_key(max_keys):
    rng = random.Random(7)
    words = ["apple", "avocado", "banana", "cherry", "kiwi", "mango", "melon"]
    first = [(rng.choice(words), rng.randint(0, 9)) for _ in range(300)]
    second = [(rng.choice(words), rng.randint(0, 9)) for _ in range(100)]
    expected = {}
    for element in first + second:
        for key, n in _explode(element):
            expected[key] = expected.get(key, 0) + n
    with TestPipeline() as p:
        a, b = p | "A" >> beam.Create(first), p | "B" >> beam.Create(second)
        single = (a, b) | beam.Flatten() | "Single" >> CombineExploded(_explode, _SumFn(), max_keys=max_keys)
        pair = (a, b) | "Pair" >> CombineExploded(_explode, _SumFn(), max_keys=max_keys)
        assert_that(single, equal_to(sorted(expected.items(), key=str)), label="CheckSingle")
        assert_that(pair, equal_to(sorted(expected.items(), key=str)), label="CheckPair")


class _SumFn(beam.CombineFn):
    def create_accumulator(self):
        return 0

    def add_input(self, acc, value):
        return acc + value

    def merge_accumulators(self, accs):
        return sum(accs)

    def extract_output(self, acc):
        return acc


def test_two_level_merge_gives_the_one_level_result():
    # Days merged into months must give what counting the mentions per month directly gives.
    rng = random.Random(3)
    mentions = [(datetime.date(2026, rng.randint(1, 3), rng.randint(1, 28)), rng.choice("np0")) for _ in range(500)]
    labels = {"n": "negative", "p": "positive", "0": "neutral"}
    direct = {}
    fn = SentimentCountsFn()
    for day, s in mentions:
        key = day.strftime("%Y-%m")
        direct[key] = fn.add_input(direct.get(key, fn.create_accumulator()), labels[s])
    with TestPipeline() as p:
        out = (p | beam.Create(mentions)
               | "Days" >> CombineExploded(lambda m: [(m[0].isoformat(), labels[m[1]])], SentimentCountsFn(),
                                           max_keys=5, extract=False)
               | beam.Map(lambda kv: (kv[0][:7], kv[1]))
               | beam.CombinePerKey(MergeAccumulatorsFn(SentimentCountsFn())))
        assert_that(out, equal_to(list(direct.items())))


def test_metrics_merge_grows_the_first_accumulator_only():
    fn = MetricsCombineFn()
    facts = Facts(False, "negative", id_hash("u1"), 1, 0, 0, None, None, 10, False, True, 30.0)
    one = fn.add_input(fn.create_accumulator(), facts)
    two = fn.add_input(fn.create_accumulator(), facts._replace(author_hash=id_hash("u2"), sentiment="positive"))
    snapshot = pickle.dumps(two)
    merged = fn.merge_accumulators([one, two])
    assert merged is one and pickle.dumps(two) == snapshot
    counts, authors, estimated, median_reply = fn.extract_output(merged)
    assert counts[0] == 2 and authors == 2 and not estimated and median_reply is not None
    assert fn.merge_accumulators([]) == fn.create_accumulator()
