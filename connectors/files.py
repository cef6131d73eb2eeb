"""File connector: mentions from JSON Lines, CSV and Parquet files in the canonical format.

The canonical format is one record per post with these fields (only the first
three are required; everything else may be absent or null):

    id, text, created_at,
    platform, url, author_id, author_handle, author_followers, lang,
    is_repost, repost_of, is_reply, reply_to, is_quote, quote_of, conversation_id,
    likes, reposts, replies, quotes, impressions, bookmarks, fetched_at, connector, query

`created_at` / `fetched_at` are ISO 8601 strings (`2026-09-07T08:15:00Z`; an offset
is converted to UTC, a timestamp with no offset is taken as UTC) or Unix epoch
seconds (or milliseconds). Counts are whole numbers from 0 to `MAX_COUNT`; null or
absent means "not reported", which is not the same as 0. Booleans accept
true/false, 1/0, yes/no.

Every value is checked here, at the edge, so that what leaves as a `Mention` can be
carried by every coder downstream: strings are valid Unicode (a lone surrogate, e.g.
half an emoji from a JSON `\\ud83d` escape, rejects the record), counts fit in int64
with room for sums, timestamps are plain UTC datetimes. One rule per field, no
repairs: a value that breaks its field's rule sends the whole record to the dead
letters with a reason naming the field (docs/connectors.md, 'Input format', lists them).

This module knows files and the format, not Beam: `open_decompressed` undoes a
`.gz`/`.bz2` suffix, `iter_file_records` streams raw records out of an open file
(a fault in the file ends it with one last record that says where), and
`parse_mention` turns one raw record into a `Mention` or raises `InvalidRecord` with
a reason for the dead-letter output; it raises nothing else, whatever the input.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime
import gzip
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
# The largest count a record may carry: far above any real post (the most viewed posts have ~10^10
# impressions), and low enough that the metrics' sums of ~9 million such posts still fit in int64.
MAX_COUNT = 10 ** 12
MAX_ID_CHARS = 256  # ids: id, author_id, repost_of, reply_to, quote_of, conversation_id
MAX_NAME_CHARS = 256  # platform, author_handle, lang, connector
MAX_LINK_CHARS = 4096  # url, query
# A JSONL line longer than this is not a post (and would be held in memory whole).
MAX_LINE_BYTES = 16 * 1024 * 1024
# CSV's own default (131,072) cut longer fields out of their record; the text-length rule applies instead.
CSV_FIELD_LIMIT = MAX_LINE_BYTES
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
    data: dict | None
    raw: str
    error: str | None = None


_COMPRESSIONS = (".gz", ".bz2", ".zst", ".deflate")


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSIONS:
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
        if name != path.lower():
            raise ValueError(f"{path}: a compressed Parquet file is not read; Parquet compresses its columns "
                             "itself (write it with compression='zstd' or 'snappy' instead)")
        return "parquet"
    raise ValueError(f"{path}: unknown file type; expected .jsonl/.ndjson/.json, .csv/.tsv or .parquet")


def decompresses_itself(path: str) -> bool:
    """Whether `open_decompressed` undoes this file's compression (then open the file as stored).

    `.gz` and `.bz2` are decompressed with the standard library, which reports a
    truncated or corrupt stream as an error (so that the file's reader can say where);
    other suffixes are left to the filesystem's own decompression.
    """
    return path.lower().endswith((".gz", ".bz2"))


def open_decompressed(path: str, fh: typing.IO[bytes]) -> typing.IO[bytes]:
    """The decompressed stream of `fh` for a `.gz` or `.bz2` path; `fh` itself otherwise."""
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if name.endswith(".bz2"):
        return bz2.BZ2File(fh, mode="rb")
    return fh


# Any UTF-16 surrogate code point: never valid Unicode text on its own, and no coder carries it.
_SURROGATES = re.compile("[\ud800-\udfff]")
# surrogateescape maps each undecodable byte to U+DC80..U+DCFF.
_SURROGATE_ESCAPES = re.compile("[\udc80-\udcff]")
# C0 and C1 control characters (and DEL): never part of an id, a name or a link.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_surrogates(text: str) -> bool:
    return _SURROGATE_ESCAPES.search(text) is not None


def _escape_invalid(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def carried(text: str) -> str:
    """`text` as valid Unicode: each surrogate written as an escape (`\\xff` for a byte, `\\ud83d` else).

    For strings that describe a record rather than being its data (reasons, sources,
    dead-letter records), so that they can always be written out.
    """
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub(
        lambda m: (f"\\x{ord(m.group()) - 0xDC00:02x}" if "\udc80" <= m.group() <= "\udcff"
                   else f"\\u{ord(m.group()):04x}"), text)


def show(value: typing.Any, limit: int = 80) -> str:
    """A short, always printable rendering of a value for a reason (never raises)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        # repr() of an int with more than 4,300 digits raises ValueError.
        return repr(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = repr(value[:limit])  # repr escapes surrogates and control characters
        return text if len(value) <= limit else text + "..."
    return type(value).__name__


# --- reading files ---------------------------------------------------------------------------------


class _ByteStream(io.RawIOBase):
    """A readable raw stream over anything with `read(n)`, counting the bytes served.

    Beam's `CompressedFile` and the transcoder below have `read` but not the rest of the
    io protocol (`readable`, `readinto`, iteration), which `io.BufferedReader` and
    `io.TextIOWrapper` need.
    """

    def __init__(self, read: typing.Callable[[int], bytes], head: bytes = b"", position: int = 0):
        super().__init__()
        self._read = read
        self._head = head
        self.position = position

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            data, self._head = self._head[:len(buffer)], self._head[len(buffer):]
        else:
            data = self._read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.position += n
        return n


# Longest BOM first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _transcoder(read: typing.Callable[[int], bytes], encoding: str) -> typing.Callable[[int], bytes]:
    """`read` of a UTF-16/32 stream as a `read` of UTF-8 (lone surrogates kept, as invalid UTF-8 bytes)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogatepass")
    pending, done = b"", False

    def read_utf8(n: int) -> bytes:
        nonlocal pending, done
        while not pending and not done:
            chunk = read(1 << 16)
            done = not chunk
            # A truncated last character raises here: the reader reports the rest of the file.
            pending = decoder.decode(chunk, final=done).encode("utf-8", "surrogatepass")
        out, pending = pending[:n], pending[n:]
        return out

    return read_utf8


class _Utf8Stream(typing.NamedTuple):
    stream: io.BufferedReader  # the file as UTF-8 bytes, without its BOM
    counter: _ByteStream  # counts the file's bytes read, for error positions
    encoding: str  # the file's encoding, for reasons


def _utf8_stream(fh: typing.IO[bytes]) -> _Utf8Stream:
    """Wraps a binary file as buffered UTF-8 bytes: a BOM is dropped, UTF-16/32 with a BOM transcoded."""
    head = b""
    while len(head) < 4:
        chunk = fh.read(4 - len(head))
        if not chunk:
            break
        head += chunk
    # read1: one read of the stream below at a time, so that the data before a fault (a truncated
    # gzip member) is served before the fault is raised; read(n) would lose it, waiting for n bytes.
    encoding, read = "utf-8", getattr(fh, "read1", fh.read)
    for bom, name in _BOMS:
        if head.startswith(bom):
            encoding = name
            break
    if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
        counter = _ByteStream(read, head[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8))
    else:
        counter = _ByteStream(read, head)
    # Positions count the file's own bytes, before any transcoding.
    raw = counter if encoding == "utf-8" else _ByteStream(_transcoder(counter.read, encoding))
    return _Utf8Stream(io.BufferedReader(raw, 1 << 16), counter, encoding.upper())


def _fault(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "error":  # zlib.error, binascii.error: the module says what failed
        name = f"{type(exc).__module__}.error"
    return f"{name}: {carried(str(exc))[:300]}"


def _read_error(path: str, where: str, exc: BaseException, position: int) -> str:
    name = path.lower()
    what = "gzip stream" if name.endswith(".gz") else "bz2 stream" if name.endswith(".bz2") else "file"
    at = f"at byte {position:,} of its decompressed data" if what != "file" else f"at byte {position:,}"
    return f"unreadable {what} {where} ({at}); the rest of the file is not read: {_fault(exc)}"


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, typing.Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(f"duplicate key {show(key)} (which value is meant is ambiguous)")
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def parse_json_line(text: str) -> tuple[dict | None, str | None]:
    """One JSON Lines record -> (its object, None) or (None, why it is not one)."""
    try:
        data = _DECODER.decode(text)
    except _DuplicateKey as exc:
        return None, f"malformed JSON: {exc}"
    except RecursionError:
        return None, "malformed JSON: nested deeper than the JSON parser allows"
    except ValueError as exc:
        # NULs between ASCII characters: UTF-16/32 that came without a BOM to say so.
        hint = " (NUL bytes: a UTF-16 or UTF-32 file without a BOM?)" if "\x00" in text else ""
        return None, f"malformed JSON: {carried(str(exc))}{hint}"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    return data, None


def iter_jsonl(path: str, fh: typing.IO[bytes], max_line_bytes: int = MAX_LINE_BYTES
               ) -> typing.Iterator[RawRecord]:
    """Streams records from a JSON Lines file; blank lines are skipped.

    A UTF-8 BOM is dropped; a UTF-16 or UTF-32 file with a BOM is read in its encoding.
    A line longer than `max_line_bytes` is one dead record (its first characters kept).
    A stream that fails (a corrupt or truncated gzip member) ends the file with one
    record that says after which line and at which byte.
    """
    try:
        utf8 = _utf8_stream(fh)
    except Exception as exc:  # e.g. not a gzip file at all
        yield RawRecord(f"{path}:1", None, "", _read_error(path, "at its start", exc, 0))
        return
    lineno = 0
    while True:
        try:
            line = utf8.stream.readline(max_line_bytes + 1)
            too_long = len(line) > max_line_bytes
            while too_long and not line.endswith(b"\n"):
                rest = utf8.stream.readline(max_line_bytes)
                if not rest:
                    break
                line = line[:max_line_bytes + 1] + rest[-1:]
        except Exception as exc:  # zlib, EOF, OS and decode errors all end the file here
            yield RawRecord(f"{path}:{lineno + 1}", None, "",
                            _read_error(path, f"after line {lineno}", exc, utf8.counter.position))
            return
        if not line:
            return
        lineno += 1
        source = f"{path}:{lineno}"
        if too_long:
            excerpt = line[:1000].decode("utf-8", "backslashreplace")
            yield RawRecord(source, None, excerpt, f"line longer than {max_line_bytes:,} bytes (not a post)")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRecord(source, None, line.decode("utf-8", "backslashreplace").rstrip("\r\n"),
                            f"invalid {utf8.encoding} at byte {exc.start}")
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        data, error = parse_json_line(text)
        yield RawRecord(source, data, text, error)


def iter_csv(path: str, fh: typing.IO[bytes]) -> typing.Iterator[RawRecord]:
    """Streams records from a CSV (or TSV) file with a header row.

    Encodings and stream faults are handled as in `iter_jsonl`. A header that names a
    column twice makes every row a dead record (which value is meant is ambiguous).
    """
    try:
        utf8 = _utf8_stream(fh)
    except Exception as exc:
        yield RawRecord(f"{path}:1", None, "", _read_error(path, "at its start", exc, 0))
        return
    text_fh = io.TextIOWrapper(utf8.stream, encoding="utf-8", errors="surrogateescape", newline="")
    delimiter = "\t" if _strip_compression(path.lower()).endswith(".tsv") else ","
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(text_fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except Exception as exc:
        yield RawRecord(f"{path}:1", None, "", _read_error(path, "in the header", exc, utf8.counter.position))
        return
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    while True:
        start_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(f"{path}:{start_line}", None, "", f"malformed CSV: {exc}")
            continue
        except Exception as exc:
            yield RawRecord(f"{path}:{start_line}", None, "",
                            _read_error(path, f"after line {start_line - 1}", exc, utf8.counter.position))
            return
        if not any(cell.strip() for cell in row):
            continue
        source = f"{path}:{start_line}"
        raw = ",".join(row)
        if _SURROGATES.search(raw):
            yield RawRecord(source, None, _escape_invalid(raw) if _has_surrogates(raw) else carried(raw),
                            "invalid UTF-8" if utf8.encoding == "UTF-8" else f"invalid {utf8.encoding}")
            continue
        if repeated:
            yield RawRecord(source, None, raw, f"malformed CSV: the header repeats column(s) {', '.join(repeated)}")
            continue
        if len(row) != len(header):
            yield RawRecord(source, None, raw, f"malformed CSV: {len(row)} fields, header has {len(header)}")
            continue
        # CSV has no null: an empty cell means absent.
        yield RawRecord(source, {k: (v if v != "" else None) for k, v in zip(header, row)}, raw)


def _batch_records(path: str, batch, first_row: int) -> typing.Iterator[RawRecord]:
    try:
        rows = batch.to_pylist()
    except Exception:  # one value Python cannot hold (a year past 9999, ...): find it row by row
        rows = None
    if rows is not None:
        for i, data in enumerate(rows):
            yield RawRecord(f"{path}#{first_row + i}", data, "")
        return
    names = batch.schema.names
    for i in range(batch.num_rows):
        data, bad = {}, []
        for name, column in zip(names, batch.columns):
            try:
                data[name] = column[i].as_py()
            except Exception as exc:
                bad.append(f"{name}: {_fault(exc)}")
        source = f"{path}#{first_row + i}"
        if bad:
            yield RawRecord(source, None, render_record(data), f"unreadable Parquet value(s): {'; '.join(bad)}")
        else:
            yield RawRecord(source, data, "")


def iter_parquet(path: str, fh: typing.IO[bytes], batch_size: int = 8192) -> typing.Iterator[RawRecord]:
    """Streams records from a Parquet file, one row group batch at a time.

    A row group that cannot be read is one dead record naming it and its rows; the
    other row groups are read. A value Python cannot hold makes its row a dead record.
    """
    try:
        pfile = pq.ParquetFile(fh)
        groups = [pfile.metadata.row_group(i).num_rows for i in range(pfile.num_row_groups)]
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        yield RawRecord(f"{path}#0", None, "", f"unreadable Parquet file: {_fault(exc)}")
        return
    row = 0
    for group, rows in enumerate(groups):
        done = 0
        try:
            for batch in pfile.iter_batches(batch_size=batch_size, row_groups=[group]):
                yield from _batch_records(path, batch, row + done)
                done += batch.num_rows
        except Exception as exc:
            yield RawRecord(f"{path}#{row + done}", None, "",
                            f"unreadable Parquet row group {group} (rows {row + done}..{row + rows - 1} of the "
                            f"file are not read): {_fault(exc)}")
        row += rows


def iter_file_records(path: str, fh: typing.IO[bytes], fmt: str | None = None
                      ) -> typing.Iterator[RawRecord]:
    """Streams raw records out of an open file.

    Args:
        path: The file's path, for `source` and format detection.
        fh: The open file, binary mode, already decompressed (see `open_decompressed`).
        fmt: 'jsonl', 'csv' or 'parquet'; detected from `path` when None.

    Yields:
        RawRecord, one per record (or per unparseable record, or per unreadable part of the file).
    """
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return iter_jsonl(path, fh)
    if fmt == "csv":
        return iter_csv(path, fh)
    if fmt == "parquet":
        return iter_parquet(path, fh)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def render_record(record: typing.Any) -> str:
    """A record as JSON for the dead-letter table; never raises, always valid Unicode."""
    if hasattr(record, "_asdict"):
        record = record._asdict()
    try:
        text = json.dumps(record, ensure_ascii=False, default=str, sort_keys=True)
    except Exception:  # too deep, an int past 4,300 digits, keys that do not sort
        text = json.dumps(_plain(record, 64), ensure_ascii=False, default=show)
    return carried(text)


def _plain(value: typing.Any, depth: int) -> typing.Any:
    """`value` with what json.dumps cannot write replaced by a short description."""
    if isinstance(value, (str, float, bool)) or value is None:
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 128 else show(value)
    if depth <= 0:
        return f"<{type(value).__name__} nested too deeply>"
    if isinstance(value, dict):
        return {str(k) if isinstance(k, (str, int, float, bool)) else show(k): _plain(v, depth - 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth - 1) for v in value]
    return show(value)


# --- validating records ----------------------------------------------------------------------------


def _utc(ts: datetime.datetime, field: str) -> datetime.datetime:
    try:
        ts = ts.replace(tzinfo=_UTC) if ts.tzinfo is None else ts.astimezone(_UTC)
    except (OverflowError, ValueError) as exc:  # an offset that moves it past year 1 or 9999
        raise InvalidRecord(f"{field}: {ts.isoformat()} cannot be converted to UTC: {exc}") from None
    if type(ts) is not datetime.datetime:  # a subclass (pandas.Timestamp) is pickled by the coders: drop it
        ts = datetime.datetime(ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond,
                               tzinfo=_UTC)
    return ts


def parse_timestamp(value: typing.Any, field: str = "created_at",
                    now: datetime.datetime | None = None) -> datetime.datetime:
    """Parses an ISO 8601 string, epoch seconds/milliseconds or a datetime into UTC.

    Raises:
        InvalidRecord: when the value is not a timestamp or is implausible.
    """
    if isinstance(value, datetime.datetime):
        ts = value
    elif isinstance(value, bool):
        raise InvalidRecord(f"{field}: expected a timestamp, got a boolean")
    elif isinstance(value, (int, float)) or (isinstance(value, str) and len(value) < 40 and _is_number(value)):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            raise InvalidRecord(f"{field}: {show(value)} is out of range") from None
        if not math.isfinite(number):
            raise InvalidRecord(f"{field}: {show(value)} is not a timestamp")
        if abs(number) > 1e11:  # milliseconds
            number /= 1000.0
        try:
            ts = datetime.datetime.fromtimestamp(number, tz=_UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidRecord(f"{field}: {show(value)} is out of range: {exc}") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidRecord(f"{field}: {show(value)} is not an ISO 8601 timestamp") from None
    else:
        raise InvalidRecord(f"{field}: expected a timestamp, got {type(value).__name__}")
    ts = _utc(ts, field)
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


_INTEGER = re.compile(r"[+-]?[0-9]{1,30}\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,4})?\Z")


def _count(value: typing.Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRecord(f"{field}: expected a count, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INTEGER.match(text):
            value = int(text)
        elif _DECIMAL.match(text):
            value = float(text)
        else:
            raise InvalidRecord(f"{field}: {show(value)} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidRecord(f"{field}: {show(value)} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidRecord(f"{field}: expected a count, got {type(value).__name__}")
    if value < 0:
        raise InvalidRecord(f"{field}: {show(value)} is negative")
    if value > MAX_COUNT:
        raise InvalidRecord(f"{field}: {show(value)} is more than {MAX_COUNT:,} (not a plausible count)")
    return int(value)  # an int subclass (numpy, IntEnum) is pickled by the coders


def _bool(value: typing.Any, field: str) -> bool | None:
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
    raise InvalidRecord(f"{field}: {show(value)} is not a boolean")


def _valid_string(text: str, field: str, limit: int, controls: bool = False) -> str:
    """Checks a string's length, Unicode and control characters; returns it as a plain str."""
    if len(text) > limit:
        raise InvalidRecord(f"{field}: {len(text):,} characters, more than the limit of {limit:,}")
    bad = _SURROGATES.search(text)
    if bad is not None:
        escape = bad.group() >= "\udc80" and bad.group() <= "\udcff"
        raise InvalidRecord(
            f"{field}: invalid UTF-8 (an undecodable byte at character {bad.start()})" if escape else
            f"{field}: not valid Unicode (a lone surrogate U+{ord(bad.group()):04X} at character {bad.start()}, "
            "half of a UTF-16 pair)")
    if not controls:
        bad = _CONTROLS.search(text)
        if bad is not None:
            raise InvalidRecord(f"{field}: control character U+{ord(bad.group()):04X} at character {bad.start()}")
    return str(text)


def _ident(value: typing.Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 840:  # ~253 digits: not an id, and str() of a huge int is slow
            raise InvalidRecord(f"{field}: {show(value)} is too long for an id")
        value = str(int(value))
    if not isinstance(value, str):
        raise InvalidRecord(f"{field}: expected a string or integer id, got {type(value).__name__}")
    text = value.strip()
    return _valid_string(text, field, MAX_ID_CHARS) or None


def _text_field(value: typing.Any, field: str, limit: int = MAX_NAME_CHARS) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"{field}: expected a string, got {type(value).__name__}")
    return _valid_string(value.strip(), field, limit) or None


def parse_mention(data: typing.Any, *, connector: str = "file", query: str | None = None,
                  max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
                  now: datetime.datetime | None = None) -> Mention:
    """Validates one canonical record and builds a Mention that every coder can carry.

    Args:
        data: The record's fields (anything else is rejected).
        connector: Connector name, used when the record does not carry one.
        query: The query / input path, used when the record does not carry one.
        max_text_chars: Longer texts are rejected (they are not posts).
        now: The reference time for plausibility checks (defaults to now).

    Returns:
        The Mention.

    Raises:
        InvalidRecord: with the reason, naming the field; never any other exception.
    """
    try:
        return _parse_mention(data, connector, query, max_text_chars, now)
    except InvalidRecord:
        raise
    except RecursionError:
        raise InvalidRecord("record nested too deeply to read") from None
    except Exception as exc:  # a value no rule foresaw is still this record's fault, not the run's
        raise InvalidRecord(f"unreadable record: {_fault(exc)}") from None


def _parse_mention(data: typing.Any, connector: str, query: str | None, max_text_chars: int,
                   now: datetime.datetime | None) -> Mention:
    if not isinstance(data, dict):
        raise InvalidRecord(f"expected a record with fields, got {type(data).__name__}")
    missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
    if missing:
        raise InvalidRecord(f"missing required field(s): {', '.join(missing)}")
    mention_id = _ident(data["id"], "id")
    if not mention_id:
        raise InvalidRecord("id: empty")
    text = data["text"]
    if not isinstance(text, str):
        raise InvalidRecord(f"text: expected a string, got {type(text).__name__}")
    if len(text) > max_text_chars:
        raise InvalidRecord(f"text: {len(text)} characters, more than the limit of {max_text_chars}")
    if _SURROGATES.search(text):
        _valid_string(text, "text", max_text_chars, controls=True)
    if not text.strip():
        raise InvalidRecord("text: empty")
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
        text=str(text),
        lang=lang.lower() if lang else None,
        url=_text_field(data.get("url"), "url", MAX_LINK_CHARS),
        author_id=_ident(data.get("author_id"), "author_id"),
        author_handle=handle.lstrip("@") or None if handle else None,
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
        connector=_text_field(data.get("connector"), "connector") or carried(str(connector)),
        query=_text_field(data.get("query"), "query", MAX_LINK_CHARS) or (None if query is None
                                                                            else carried(str(query))),
    )
