"""Property-based tests of the record parsers and the coders (hypothesis).

For arbitrary JSON values, strings with any code point (lone surrogates included) and
integers of any size: a parser yields a record or a dead letter, never an exception,
and every record it yields round-trips through every coder that carries it downstream
(the records coder, Beam's RowCoder it is registered beside, the deterministic coder of
the dedupe key, and the Parquet sink's Arrow schema).
"""

from __future__ import annotations

import datetime
import io
import json
import string

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.coders import coders
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from connectors.files import InvalidRecord, iter_csv, iter_jsonl, parse_json_line, parse_mention
from schemas import DEAD_LETTER_SCHEMA, MENTION_SCHEMA, DeadLetter, Mention
from schemas.fields import to_arrow_table
from transforms.coders import RECORDS_CODER
from transforms.dead_letters import dead_letter
from transforms.dedupe import post_hash, post_key

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KEY_CODER = coders.FastPrimitivesCoder().as_deterministic_coder("post_key")
_ROW_CODERS = {Mention: beam.coders.registry.get_coder(Mention),
               DeadLetter: beam.coders.registry.get_coder(DeadLetter)}
_SCHEMAS = {Mention: MENTION_SCHEMA, DeadLetter: DEAD_LETTER_SCHEMA}

# Any code point, lone surrogates (half an emoji, an undecodable byte) among them.
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
                   | st.sampled_from(["\ud83d", "\ude00", "\udcff", "\x00", "\u2028", "\ufeff"]), max_size=30)
any_int = st.integers() | st.integers(min_value=2 ** 62, max_value=2 ** 64) | st.builds(
    lambda sign, digits: sign * 10 ** digits, st.sampled_from([1, -1]), st.integers(0, 5000))
any_float = st.floats(allow_nan=True, allow_infinity=True)
json_scalars = st.none() | st.booleans() | any_int | any_float | any_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(any_text, inner, max_size=3), max_leaves=8)

plausible_time = st.datetimes(min_value=datetime.datetime(1990, 1, 2), max_value=datetime.datetime(2026, 10, 30),
                              timezones=st.just(UTC) | st.none())
times = (plausible_time.map(lambda t: t.isoformat()) | plausible_time | st.integers(631_152_000, 1_790_000_000)
         | st.floats(631_152_000, 1_790_000_000_000) | json_values)
counts = st.integers(0, 10 ** 12) | st.integers(0, 10 ** 12).map(str) | any_int | any_float | json_values
ids = st.text(string.ascii_letters + string.digits + ":_-", min_size=1, max_size=20) | any_int | json_values
texts = st.text(min_size=1, max_size=200) | any_text | json_values
names = st.text(string.ascii_letters + ":", max_size=10) | any_text | json_values
booleans = st.sampled_from([True, False, "yes", "no", 1, 0, "", None]) | json_values

records = st.fixed_dictionaries(
    {"id": ids, "text": texts, "created_at": times},
    optional={"platform": names, "lang": names, "url": names, "author_handle": names, "author_id": ids,
              "reply_to": ids, "conversation_id": ids, "fetched_at": times, "connector": names, "query": names,
              **{field: counts for field in ("likes", "reposts", "replies", "quotes", "impressions",
                                             "bookmarks", "author_followers")},
              **{field: booleans for field in ("is_repost", "is_reply", "is_quote")},
              "extra": json_values})


def _round_trips(record) -> None:
    """Every coder that carries `record` downstream gives it back unchanged."""
    kind = type(record)
    for coder in (RECORDS_CODER, _ROW_CODERS[kind]):
        assert coder.decode(coder.encode(record)) == record, coder
    assert RECORDS_CODER.decode(RECORDS_CODER.encode((record, [record]))) == (record, [record])
    buf = io.BytesIO()
    pq.write_table(to_arrow_table([record], _SCHEMAS[kind]), buf)
    buf.seek(0)
    assert kind(**pq.read_table(buf).to_pylist()[0]) == record


def _parses_or_dead_letter(data, query="in/q.jsonl") -> None:
    try:
        mention = parse_mention(data, query=query, now=NOW)
    except InvalidRecord as exc:
        reason = str(exc)
        # A reason from a rule, not from the catch-all that keeps a run alive.
        assert not reason.startswith(("unreadable record", "record nested")), reason
        _round_trips(dead_letter("validate", reason, data, f"{query}:1"))
        return
    _round_trips(mention)
    key = post_key(mention)
    assert _KEY_CODER.decode(_KEY_CODER.encode(key)) == key
    assert 0 <= post_hash(mention) < 2 ** 64


@SETTINGS
@given(records)
def test_any_record_becomes_a_mention_every_coder_carries_or_a_dead_letter(data):
    _parses_or_dead_letter(data)


@SETTINGS
@given(json_values, any_text)
def test_any_json_value_and_any_query_string_is_handled(data, query):
    _parses_or_dead_letter(data, query)


@SETTINGS
@given(any_text)
def test_any_line_parses_to_an_object_or_a_reason(line):
    data, error = parse_json_line(line)
    assert (data is None) != (error is None)
    assert isinstance(data, dict) or error


def _dump(record) -> bytes:
    try:
        text = json.dumps(record, ensure_ascii=False, default=str)
    except ValueError:  # an integer past 4,300 digits
        text = "{}"
    return text.encode("utf-8", "surrogatepass")


def _is_record_line(line: bytes) -> bool:
    try:
        return bool(line.decode("utf-8").strip())
    except UnicodeDecodeError:
        return True


@SETTINGS
@given(st.lists(st.binary(max_size=60) | records.map(_dump), max_size=6))
def test_any_bytes_give_one_record_per_non_blank_jsonl_line_and_csv_never_raises(chunks):
    data = b"\n".join([b"{}"] + chunks)  # a first line without a BOM: the bytes are read as UTF-8
    recs = list(iter_jsonl("f.jsonl", io.BytesIO(data)))
    assert len(recs) == sum(1 for line in data.split(b"\n") if _is_record_line(line))
    for raw in recs:
        assert (raw.data is None) == (raw.error is not None)
        if raw.data is not None:
            _parses_or_dead_letter(raw.data)
        else:
            _round_trips(dead_letter("parse", raw.error, raw.raw, raw.source))
    for raw in iter_csv("f.csv", io.BytesIO(b"id,text,created_at\n" + data)):
        if raw.data is not None:
            _parses_or_dead_letter(raw.data)
        else:
            _round_trips(dead_letter("parse", raw.error, raw.raw, raw.source))


def test_the_strategies_reach_valid_mentions():
    # A property that only ever sees dead letters would prove little about the coders.
    found = find(records, lambda r: _is_valid(r), settings=settings(max_examples=2000, database=None))
    assert isinstance(parse_mention(found, now=NOW), Mention)


def _is_valid(data) -> bool:
    try:
        parse_mention(data, now=NOW)
    except InvalidRecord:
        return False
    return True
