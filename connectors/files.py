"""File connector: mentions from JSON Lines, CSV and Parquet files in the canonical format.

The canonical format is one record per post with these fields (only the first
three are required; everything else may be absent or null):

    id, text, created_at,
    platform, url, author_id, author_handle, author_followers, lang,
    is_repost, repost_of, is_reply, reply_to, is_quote, quote_of, conversation_id,
    likes, reposts, replies, quotes, impressions, bookmarks, fetched_at, connector, query

`created_at` / `fetched_at` are ISO 8601 strings (`2026-09-07T08:15:00Z`; an offset
is converted to UTC, a timestamp with no offset is taken as UTC) or Unix epoch
seconds (or milliseconds). Counts are non-negative integers; null or absent means
"not reported", which is not the same as 0. Booleans accept true/false, 1/0, yes/no.

This module knows files and the format, not Beam: `iter_file_records` streams raw
records out of an open file, `parse_mention` turns one raw record into a `Mention`
or raises `InvalidRecord` with a reason for the dead-letter output.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import re
import typing

import pyarrow.parquet as pq

from schemas import Mention

REQUIRED_FIELDS = ("id", "text", "created_at")
COUNT_FIELDS = ("author_followers", "likes", "reposts", "replies", "quotes", "impressions", "bookmarks")
BOOL_FIELDS = ("is_repost", "is_reply", "is_quote")
ID_FIELDS = ("author_id", "repost_of", "reply_to", "quote_of", "conversation_id")
FORMATS = ("jsonl", "csv", "parquet")
DEFAULT_MAX_TEXT_CHARS = 40_000
# Posts older than this are almost surely a unit error (e.g. epoch days) rather than data.
_MIN_TIME = datetime.datetime(1990, 1, 1, tzinfo=datetime.timezone.utc)
_UTC = datetime.timezone.utc


class InvalidRecord(ValueError):
    """A record that cannot become a Mention; the message is the dead-letter reason."""


class RawRecord(typing.NamedTuple):
    """One record as read from a file, before validation.

    Attributes:
        source: Where it came from, 'path:line' (JSONL, CSV) or 'path#row' (Parquet).
        data: The parsed fields, or None when the record could not be parsed at all.
        raw: The record as received, for the dead-letter output.
        error: Why `data` is None.
    """

    source: str
    data: typing.Optional[dict]
    raw: str
    error: typing.Optional[str] = None


def _strip_compression(name: str) -> str:
    for suffix in (".gz", ".bz2", ".zst", ".deflate"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: str) -> str:
    """Returns 'jsonl', 'csv' or 'parquet' from the file name (compression suffixes ignored).

    Raises:
        ValueError: for an extension the connector does not read.
    """
    name = _strip_compression(path.lower())
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise ValueError(f"{path}: unknown file type; expected .jsonl/.ndjson/.json, .csv/.tsv or .parquet")


# surrogateescape maps each undecodable byte to U+DC80..U+DCFF.
_SURROGATE_ESCAPES = re.compile("[\udc80-\udcff]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATE_ESCAPES.search(text) is not None


def _escape_invalid(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def iter_jsonl(path: str, fh: typing.IO[bytes]) -> typing.Iterator[RawRecord]:
    """Streams records from a JSON Lines file; blank lines are skipped."""
    for lineno, line in enumerate(fh, start=1):
        source = f"{path}:{lineno}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRecord(source, None, line.decode("utf-8", "backslashreplace").rstrip("\r\n"),
                            f"invalid UTF-8 at byte {exc.start}")
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            yield RawRecord(source, None, text, f"malformed JSON: {exc}")
            continue
        if not isinstance(data, dict):
            yield RawRecord(source, None, text, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield RawRecord(source, data, text)


def iter_csv(path: str, fh: typing.IO[bytes]) -> typing.Iterator[RawRecord]:
    """Streams records from a CSV (or TSV) file with a header row."""
    text_fh = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
    delimiter = "\t" if _strip_compression(path.lower()).endswith(".tsv") else ","
    reader = csv.reader(text_fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip().lstrip("\ufeff") for h in header]
    while True:
        start_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(f"{path}:{start_line}", None, "", f"malformed CSV: {exc}")
            continue
        if not any(cell.strip() for cell in row):
            continue
        source = f"{path}:{start_line}"
        raw = ",".join(row)
        if _has_surrogates(raw):
            yield RawRecord(source, None, _escape_invalid(raw), "invalid UTF-8")
            continue
        if len(row) != len(header):
            yield RawRecord(source, None, raw, f"malformed CSV: {len(row)} fields, header has {len(header)}")
            continue
        # CSV has no null: an empty cell means absent.
        yield RawRecord(source, {k: (v if v != "" else None) for k, v in zip(header, row)}, raw)


def iter_parquet(path: str, fh: typing.IO[bytes], batch_size: int = 8192) -> typing.Iterator[RawRecord]:
    """Streams records from a Parquet file, one row group batch at a time."""
    try:
        pfile = pq.ParquetFile(fh)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        yield RawRecord(f"{path}#0", None, "", f"unreadable Parquet file: {exc}")
        return
    row = 0
    for batch in pfile.iter_batches(batch_size=batch_size):
        for data in batch.to_pylist():
            yield RawRecord(f"{path}#{row}", data, "")
            row += 1


def iter_file_records(path: str, fh: typing.IO[bytes], fmt: typing.Optional[str] = None
                      ) -> typing.Iterator[RawRecord]:
    """Streams raw records out of an open file.

    Args:
        path: The file's path, for `source` and format detection.
        fh: The open file, binary mode, already decompressed.
        fmt: 'jsonl', 'csv' or 'parquet'; detected from `path` when None.

    Yields:
        RawRecord, one per record (or per unparseable record).
    """
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return iter_jsonl(path, fh)
    if fmt == "csv":
        return iter_csv(path, fh)
    if fmt == "parquet":
        return iter_parquet(path, fh)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def parse_timestamp(value: typing.Any, field: str = "created_at",
                    now: typing.Optional[datetime.datetime] = None) -> datetime.datetime:
    """Parses an ISO 8601 string, epoch seconds/milliseconds or a datetime into UTC.

    Raises:
        InvalidRecord: when the value is not a timestamp or is implausible.
    """
    if isinstance(value, datetime.datetime):
        ts = value
    elif isinstance(value, bool):
        raise InvalidRecord(f"{field}: expected a timestamp, got a boolean")
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidRecord(f"{field}: {value!r} is not a timestamp")
        if abs(number) > 1e11:  # milliseconds
            number /= 1000.0
        try:
            ts = datetime.datetime.fromtimestamp(number, tz=_UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidRecord(f"{field}: {value!r} is out of range: {exc}") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidRecord(f"{field}: {value!r} is not an ISO 8601 timestamp") from None
    else:
        raise InvalidRecord(f"{field}: expected a timestamp, got {type(value).__name__}")
    ts = ts.replace(tzinfo=_UTC) if ts.tzinfo is None else ts.astimezone(_UTC)
    now = now or datetime.datetime.now(_UTC)
    if ts < _MIN_TIME or ts > now + datetime.timedelta(days=1):
        raise InvalidRecord(f"{field}: {ts.isoformat()} is outside the plausible range (1990 .. now)")
    return ts


def _is_number(text: str) -> bool:
    if ":" in text:  # every ISO time has one, no number has: skips a raised ValueError per timestamp
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _count(value: typing.Any, field: str) -> typing.Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRecord(f"{field}: expected a count, got a boolean")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise InvalidRecord(f"{field}: {value!r} is not a number") from None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidRecord(f"{field}: {value!r} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidRecord(f"{field}: expected a count, got {type(value).__name__}")
    if value < 0:
        raise InvalidRecord(f"{field}: {value} is negative")
    return value


def _bool(value: typing.Any, field: str) -> typing.Optional[bool]:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "y", "t"):
            return True
        if text in ("false", "0", "no", "n", "f"):
            return False
        if not text:
            return None
    raise InvalidRecord(f"{field}: {value!r} is not a boolean")


def _ident(value: typing.Any, field: str) -> typing.Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidRecord(f"{field}: expected a string or integer id, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _text_field(value: typing.Any, field: str) -> typing.Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"{field}: expected a string, got {type(value).__name__}")
    return value.strip() or None


def parse_mention(data: dict, *, connector: str = "file", query: typing.Optional[str] = None,
                  max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                  now: typing.Optional[datetime.datetime] = None) -> Mention:
    """Validates one canonical record and builds a Mention.

    Args:
        data: The record's fields.
        connector: Connector name, used when the record does not carry one.
        query: The query / input path, used when the record does not carry one.
        max_text_chars: Longer texts are rejected (they are not posts).
        now: The reference time for plausibility checks (defaults to now).

    Returns:
        The Mention.

    Raises:
        InvalidRecord: with the reason, naming the field.
    """
    missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
    if missing:
        raise InvalidRecord(f"missing required field(s): {', '.join(missing)}")
    mention_id = _ident(data["id"], "id")
    if not mention_id:
        raise InvalidRecord("id: empty")
    text = data["text"]
    if not isinstance(text, str):
        raise InvalidRecord(f"text: expected a string, got {type(text).__name__}")
    if _has_surrogates(text):
        raise InvalidRecord("text: invalid UTF-8")
    if not text.strip():
        raise InvalidRecord("text: empty")
    if len(text) > max_text_chars:
        raise InvalidRecord(f"text: {len(text)} characters, more than the limit of {max_text_chars}")
    if "\x00" in text:
        raise InvalidRecord("text: contains NUL characters (binary data?)")
    created_at = parse_timestamp(data["created_at"], "created_at", now)
    fetched_raw = data.get("fetched_at")
    fetched_at = parse_timestamp(fetched_raw, "fetched_at", now) if fetched_raw not in (None, "") else None
    lang = _text_field(data.get("lang"), "lang")
    platform = (_text_field(data.get("platform"), "platform") or "unknown").lower()
    handle = _text_field(data.get("author_handle"), "author_handle")
    return Mention(
        id=mention_id,
        platform=platform,
        created_at=created_at,
        text=text,
        lang=lang.lower() if lang else None,
        url=_text_field(data.get("url"), "url"),
        author_id=_ident(data.get("author_id"), "author_id"),
        author_handle=handle.lstrip("@") if handle else None,
        author_followers=_count(data.get("author_followers"), "author_followers"),
        is_repost=_bool(data.get("is_repost"), "is_repost"),
        repost_of=_ident(data.get("repost_of"), "repost_of"),
        is_reply=_bool(data.get("is_reply"), "is_reply"),
        reply_to=_ident(data.get("reply_to"), "reply_to"),
        is_quote=_bool(data.get("is_quote"), "is_quote"),
        quote_of=_ident(data.get("quote_of"), "quote_of"),
        conversation_id=_ident(data.get("conversation_id"), "conversation_id"),
        likes=_count(data.get("likes"), "likes"),
        reposts=_count(data.get("reposts"), "reposts"),
        replies=_count(data.get("replies"), "replies"),
        quotes=_count(data.get("quotes"), "quotes"),
        impressions=_count(data.get("impressions"), "impressions"),
        bookmarks=_count(data.get("bookmarks"), "bookmarks"),
        fetched_at=fetched_at,
        connector=_text_field(data.get("connector"), "connector") or connector,
        query=_text_field(data.get("query"), "query") or query,
    )
