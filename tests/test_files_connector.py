"""The file connector's parsing and validation, record by record."""

from __future__ import annotations

import datetime
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.files import InvalidRecord, detect_format, iter_csv, iter_jsonl, iter_parquet, parse_mention, \
    parse_timestamp

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("value, expected", [
    ("2026-09-07T10:00:00Z", "2026-09-07T10:00:00+00:00"),
    ("2026-09-07T10:00:00+02:00", "2026-09-07T08:00:00+00:00"),
    ("2026-09-07 10:00:00", "2026-09-07T10:00:00+00:00"),  # no offset: taken as UTC
    (1788775200, "2026-09-07T10:00:00+00:00"),
    ("1788775200", "2026-09-07T10:00:00+00:00"),
    (1788775200000, "2026-09-07T10:00:00+00:00"),  # milliseconds
    (datetime.datetime(2026, 9, 7, 10), "2026-09-07T10:00:00+00:00"),
])
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value, now=NOW).isoformat() == expected


@pytest.mark.parametrize("value, message", [
    ("07/09/2026", "not an ISO 8601"), (True, "boolean"), (12, "outside the plausible range"),
    ("2027-01-01T00:00:00Z", "outside the plausible range"), (float("nan"), "not a timestamp"), ([1], "expected"),
])
def test_bad_timestamps(value, message):
    with pytest.raises(InvalidRecord, match=message):
        parse_timestamp(value, now=NOW)


def test_parse_mention_types_and_defaults():
    m = parse_mention({"id": 123, "text": "hi", "created_at": "2026-09-07T10:00:00Z", "likes": "4",
                       "impressions": 10.0, "is_reply": "yes", "author_handle": "@bob", "lang": "EN",
                       "platform": "X"}, query="q.jsonl", now=NOW)
    assert (m.id, m.likes, m.impressions, m.is_reply, m.author_handle, m.lang, m.platform) == \
        ("123", 4, 10, True, "bob", "en", "x")
    assert m.reposts is None and m.is_repost is None  # absent means unknown, not 0 / False
    assert (m.connector, m.query) == ("file", "q.jsonl")


@pytest.mark.parametrize("record, message", [
    ({"text": "x", "created_at": "2026-09-07"}, "missing required field(s): id"),
    ({"id": "1", "text": "x", "created_at": "2026-09-07", "likes": 1.5}, "not a whole number"),
    ({"id": "1", "text": "x", "created_at": "2026-09-07", "likes": True}, "boolean"),
    ({"id": "1", "text": "a\x00b", "created_at": "2026-09-07"}, "NUL"),
    ({"id": "1", "text": "x" * 11, "created_at": "2026-09-07"}, "more than the limit of 10"),
    ({"id": " ", "text": "x", "created_at": "2026-09-07"}, "id: empty"),
])
def test_parse_mention_rejects(record, message):
    with pytest.raises(InvalidRecord, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_mention(record, max_text_chars=10, now=NOW)


def test_iter_jsonl_keeps_line_numbers_and_raw_text():
    data = b'{"id": 1}\n\nnot json\n\xff\n[1]\n'
    recs = list(iter_jsonl("f.jsonl", io.BytesIO(data)))
    assert [r.source for r in recs] == ["f.jsonl:1", "f.jsonl:3", "f.jsonl:4", "f.jsonl:5"]
    assert recs[0].data == {"id": 1}
    assert recs[1].error.startswith("malformed JSON") and recs[1].raw == "not json"
    assert recs[2].error.startswith("invalid UTF-8") and recs[2].raw == "\\xff"
    assert recs[3].error == "expected a JSON object, got list"


def test_iter_csv_handles_quotes_multiline_empty_cells_and_bad_rows():
    data = ('id,text,created_at,likes\n1,"hello, ""world""",2026-09-07T10:00:00Z,\n'
            '2,"line one\nline two",2026-09-07T10:00:00Z,3\n3,short\n').encode("utf-8") + b'4,\xff,2026,1\n'
    recs = list(iter_csv("f.csv", io.BytesIO(data)))
    assert recs[0].data == {"id": "1", "text": 'hello, "world"', "created_at": "2026-09-07T10:00:00Z",
                            "likes": None}
    assert recs[1].data["text"] == "line one\nline two" and recs[1].source == "f.csv:3"
    assert recs[2].error.startswith("malformed CSV: 2 fields") and recs[2].source == "f.csv:5"
    assert recs[3].error == "invalid UTF-8"


def test_iter_parquet_streams_rows_and_reports_corrupt_files():
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"],
                             "created_at": pa.array([datetime.datetime(2026, 9, 7, tzinfo=UTC)] * 2)}), buf)
    buf.seek(0)
    recs = list(iter_parquet("f.parquet", buf))
    assert [r.source for r in recs] == ["f.parquet#0", "f.parquet#1"]
    assert parse_mention(recs[1].data, now=NOW).id == "b"
    (bad,) = list(iter_parquet("g.parquet", io.BytesIO(b"not parquet at all")))
    assert bad.data is None and bad.error.startswith("unreadable Parquet file")


@pytest.mark.parametrize("path, fmt", [("a.jsonl", "jsonl"), ("a.ndjson.gz", "jsonl"), ("a.CSV", "csv"),
                                       ("a.tsv.gz", "csv"), ("a.parquet", "parquet")])
def test_detect_format(path, fmt):
    assert detect_format(path) == fmt


def test_detect_format_rejects_unknown():
    with pytest.raises(ValueError, match="unknown file type"):
        detect_format("a.xlsx")
