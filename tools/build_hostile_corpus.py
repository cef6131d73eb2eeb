"""Builds the hostile input corpus: every kind of bad record and broken file, beside good records.

The corpus is what a scheduled run meets in the wild: JSON Lines, CSV, Parquet and gzip
files with malformed lines, wrong types, lone surrogates, counts past int64, bad
timestamps of every kind, BOMs, UTF-16/32, truncated and corrupt streams and row groups.
Every good record mentions a configured brand (Sprite, in `tests/conftest.py`), so that
each one must come out in `brand_mentions`; every bad one has the dead-letter reason
it must produce. `tests/test_hostile_inputs.py` builds the corpus into a temporary
folder, runs the whole job on it and checks both.

The two text files (`records.jsonl`, `records.csv`) are also committed in
`tests/data/hostile/`, for reading; the binary ones (gzip, Parquet, UTF-16/32) and the
big ones are only built. To rewrite the committed ones:

    python tools/build_hostile_corpus.py tests/data/hostile
"""

from __future__ import annotations

import codecs
import datetime
import gzip
import io
import json
import pathlib
import sys
import typing
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

COMMITTED = ("records.jsonl", "records.csv")
WHEN = "2026-09-07T10:00:00Z"
UTC = datetime.timezone.utc


class Corpus:
    """The files of the corpus and what each record must become.

    Attributes:
        files: File name -> contents.
        good: The ids of the good records (each must be in `brand_mentions`).
        dead: 'file:line', 'file#row' or 'file' (a file-level fault) -> a substring of its reason.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.good: set[str] = set()
        self.dead: dict[str, str] = {}

    def record(self, file: str, n: int, **fields) -> dict:
        """A good record of `file`, noted as such; `fields` override the defaults."""
        record = {"id": f"{file.split('.')[0]}-ok-{n}", "text": f"Sprite number {n} from {file} tastes great",
                  "created_at": WHEN, "platform": "x", "likes": n}
        record.update(fields)
        self.good.add(str(record["id"]))
        return record

    def lines(self, file: str, lines: typing.Sequence[tuple[bytes, str | None]],
              end: bytes = b"\n") -> bytes:
        """Joins (line, reason or None) into a file's bytes, noting each bad line's reason."""
        for n, (_line, reason) in enumerate(lines, start=1):
            if reason is not None:
                self.dead[f"{file}:{n}"] = reason
        return b"\n".join(line for line, _ in lines) + end


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # the same bytes on every build


def _j(record: typing.Any) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _bad(n: int, **fields) -> bytes:
    """A record that is good but for `fields` (None drops a field)."""
    record = {"id": f"bad-{n}", "text": f"Sprite bad record {n}", "created_at": WHEN, "platform": "x"}
    record.update(fields)
    return _j({k: v for k, v in record.items() if v is not None})


def _jsonl(c: Corpus) -> bytes:
    f = "records.jsonl"
    good = [_j(c.record(f, n)) for n in range(1, 5)]
    raw = [
        (good[0], None),
        (b"this is not json", "malformed JSON"),
        (b'["a", "list"]', "expected a JSON object, got list"),
        (b'"just a string"', "expected a JSON object, got str"),
        (b"42", "expected a JSON object, got int"),
        (b"null", "expected a JSON object, got NoneType"),
        (_bad(1, id=None), "missing required field(s): id"),
        (_bad(2, text=None), "missing required field(s): text"),
        (_bad(3, created_at=None), "missing required field(s): created_at"),
        (b'{"id": null, "text": "Sprite null id", "created_at": "2026-09-07T10:00:00Z"}',
         "missing required field(s): id"),
        (_bad(4, id={"x": 1}), "id: expected a string or integer id, got dict"),
        (_bad(5, id=1.5), "id: expected a string or integer id, got float"),
        (b'{"id": 1' + b"0" * 300 + b', "text": "Sprite huge id", "created_at": "2026-09-07T10:00:00Z"}',
         "is too long for an id"),
        (_bad(6, id=True), "id: expected a string or integer id, got bool"),
        (_bad(7, id="   "), "id: empty"),
        (_bad(8, id="a\u0007b"), "id: control character U+0007"),
        (_bad(9, id="nul\u0000id"), "id: control character U+0000"),
        (_bad(10, text=42), "text: expected a string, got int"),
        (_bad(11, text="  \t "), "text: empty"),
        (b'{"id": "bad-12", "text": "half an emoji \\ud83d Sprite", "created_at": "2026-09-07T10:00:00Z"}',
         "text: not valid Unicode (a lone surrogate U+D83D"),
        (b'{"id": "bad-13", "text": "\\ude00 low half Sprite", "created_at": "2026-09-07T10:00:00Z"}',
         "lone surrogate U+DE00"),
        (_bad(14, text="Sprite\u0000binary"), "text: contains NUL characters"),
        (_bad(15, text="Sprite " * 6000), "text: 42000 characters, more than the limit of 40000"),
        (_bad(16, text=["Sprite"]), "text: expected a string, got list"),
        (_bad(17, created_at="yesterday"), "created_at: 'yesterday' is not an ISO 8601 timestamp"),
        (_bad(18, created_at=""), "created_at: '' is not an ISO 8601 timestamp"),
        (_bad(19, created_at="2999-01-01T00:00:00Z"), "outside the plausible range"),
        (_bad(20, created_at="2026-02-30T10:00:00Z"), "is not an ISO 8601 timestamp"),
        (_bad(21, created_at="9999-12-31T23:59:59-05:00"), "cannot be converted to UTC"),
        (b'{"id": "bad-22", "text": "Sprite", "created_at": 1e400}', "created_at: inf is not a timestamp"),
        (b'{"id": "bad-23", "text": "Sprite", "created_at": NaN}', "created_at: nan is not a timestamp"),
        (_bad(24, created_at=10 ** 30), "is out of range"),
        (_bad(25, created_at=True), "created_at: expected a timestamp, got a boolean"),
        (_bad(26, created_at=-1), "outside the plausible range"),
        (_bad(27, created_at={"$date": WHEN}), "created_at: expected a timestamp, got dict"),
        (_bad(28, likes=2 ** 63), "likes: 9223372036854775808 is more than 1,000,000,000,000"),
        (_bad(29, likes=2 ** 63 - 1), "likes: 9223372036854775807 is more than"),
        (_bad(30, impressions=2 ** 63 - 1), "impressions: 9223372036854775807 is more than"),
        (_bad(31, author_followers=2 ** 63 - 1), "author_followers: 9223372036854775807 is more than"),
        (_bad(32, likes=-3), "likes: -3 is negative"),
        (b'{"id": "bad-33", "text": "Sprite", "created_at": "2026-09-07T10:00:00Z", "likes": NaN}',
         "likes: nan is not a whole number"),
        (b'{"id": "bad-34", "text": "Sprite", "created_at": "2026-09-07T10:00:00Z", "likes": -Infinity}',
         "likes: -inf is not a whole number"),
        (_bad(35, likes=1.5), "likes: 1.5 is not a whole number"),
        (_bad(36, likes="many"), "likes: 'many' is not a number"),
        (_bad(37, likes=True), "likes: expected a count, got a boolean"),
        (_bad(38, likes="1_000"), "likes: '1_000' is not a number"),
        (_bad(39, replies=[1]), "replies: expected a count, got list"),
        (_bad(40, is_reply="maybe"), "is_reply: 'maybe' is not a boolean"),
        (_bad(41, is_reply=2), "is_reply: 2 is not a boolean"),
        (_bad(42, lang=5), "lang: expected a string, got int"),
        (b'{"id": "bad-43", "text": "Sprite", "created_at": "2026-09-07T10:00:00Z", "platform": "x\\udfff"}',
         "platform: not valid Unicode (a lone surrogate U+DFFF"),
        (_bad(44, author_handle="bob\nalice"), "author_handle: control character U+000A"),
        (_bad(45, url="https://example.com/" + "a" * 5000), "url: 5,020 characters, more than the limit of 4,096"),
        (_bad(46, fetched_at="soon"), "fetched_at: 'soon' is not an ISO 8601 timestamp"),
        (b'{"id": "bad-47", "text": "Sprite one", "text": "Sprite two", "created_at": "2026-09-07T10:00:00Z"}',
         "malformed JSON: duplicate key 'text'"),
        (_bad(48) + b" trailing garbage", "malformed JSON: Extra data"),
        (b'{"id": "bad-49", "text": "Sprite", "created_at": "2026-09-07T10:00:00Z", "likes": 1'
         + b"0" * 5000 + b"}", "malformed JSON: Exceeds the limit"),
        ("{\"id\": \"bad-50\", \"text\": \"caf\u00e9 Sprite Latin-1\", \"created_at\": \"2026-09-07T10:00:00Z\"}"
         .encode("latin-1"), "invalid UTF-8 at byte"),
        ("{\"id\": \"bad-51\", \"text\": \"\u201cSprite\u201d in cp1252\", \"created_at\": \"2026-09-07T10:00:00Z\"}"
         .encode("cp1252"), "invalid UTF-8 at byte"),
        (_bad(52, is_quote="true", quote_of={"id": "1"}), "quote_of: expected a string or integer id, got dict"),
        (good[1], None),
        (b"", None),  # a blank line is not a record
        (b"   \t", None),
        # unknown fields are ignored, even an odd one; CR LF endings are fine
        (b'{"\\ud800odd key": [1, {"deep": null}], ' + good[2][1:] + b"\r", None),
        (_j(c.record(f, 5, id="1:2", platform="x")), None),  # not the same post as the next one
        (_j(c.record(f, 6, id="2", platform="x:1")), None),
        (_j(c.record(f, 7, id=12345678901234567890, likes="7", impressions=7.0, is_reply="no",
                     author_handle="@fan", lang="EN", created_at=1788775200)), None),
        (_j(c.record(f, 8, text="Sprite\u0007 bell and \u200b zero width and emoji \U0001F964")), None),
        (good[3], None),
        (b'{"id": "bad-53", "text": "Sprite truncated', "malformed JSON: Unterminated string"),
    ]
    return c.lines(f, raw, end=b"")  # the last line is cut off, with no newline


def _csv(c: Corpus) -> bytes:
    f = "records.csv"
    header = b"id,text,created_at,platform,likes,is_reply"
    raw = [
        (header, None),
        (b'csv-ok-1,"Sprite, ""quoted"" and, commas",2026-09-07T10:00:00Z,x,1,no', None),
        (b'csv-ok-2,"Sprite over\ntwo lines",2026-09-07T10:00:00Z,x,1e3,', None),
        (b"", None),
        (b"bad-c1,Sprite too few fields", "malformed CSV: 2 fields, header has 6"),
        (b"bad-c2,Sprite,2026-09-07T10:00:00Z,x,1,no,extra", "malformed CSV: 7 fields, header has 6"),
        (b"bad-c3,Sprite \xff\xfe bytes,2026-09-07T10:00:00Z,x,,", "invalid UTF-8"),
        (b"bad-c4,Sprite,2026-09-07T10:00:00Z,x,,maybe", "is_reply: 'maybe' is not a boolean"),
        (b"bad-c5,Sprite,2026-09-07T10:00:00Z,x,12abc,", "likes: '12abc' is not a number"),
        (b"bad-c6,Sprite,07/09/2026,x,,", "created_at: '07/09/2026' is not an ISO 8601 timestamp"),
        (b"bad-c7,Sprite\x00nul,2026-09-07T10:00:00Z,x,,", "text: contains NUL characters"),
        (b",Sprite no id,2026-09-07T10:00:00Z,x,,", "missing required field(s): id"),
        (b"bad-c8,Sprite,2026-09-07T10:00:00Z,x,9223372036854775808,", "likes: 9223372036854775808 is more than"),
        (b"bad-c9,Sprite,2026-09-07T10:00:00Z,x,nan,", "likes: 'nan' is not a number"),
        (b"bad-c10,Sprite,2026-09-07T10:00:00Z,x,-1,", "likes: -1 is negative"),
        (b"csv-ok-3,Sprite last good row,1788775200000,x,0,1", None),
    ]
    c.good.update({"csv-ok-1", "csv-ok-2", "csv-ok-3"})
    data = c.lines(f, raw)
    # The quoted line break moves every later row one line down.
    c.dead = {(_shift(k, f) if k.startswith(f + ":") else k): v for k, v in c.dead.items()}
    return data


def _shift(key: str, f: str) -> str:
    return f"{f}:{int(key.split(':')[1]) + 1}"


def _gzip_files(c: Corpus) -> None:
    good = [c.record("gz", n) for n in range(1, 7)]
    lines = b"".join(_j(r) + b"\n" for r in good)
    c.files["good.jsonl.gz"] = _gz(lines[: len(lines) // 2]) + _gz(lines[len(lines) // 2:])
    c.files["good.csv.gz"] = _gz(
        b"id,text,created_at,platform\n" + b"".join(
            f"{r['id']}-csv,{r['text']},{r['created_at']},x\n".encode() for r in good[:3]))
    c.good.update(f"{r['id']}-csv" for r in good[:3])
    c.files["empty.jsonl.gz"] = _gz(b"")

    # Truncated: what decompresses before the cut is read, every complete line of it.
    cut = [c.record("gzcut", n, text=f"Sprite {n} " + "fizz " * 40) for n in range(1, 41)]
    whole = _gz(b"".join(_j(r) + b"\n" for r in cut))
    truncated = whole[: len(whole) * 2 // 3]
    readable = zlib.decompressobj(wbits=31).decompress(truncated)
    complete = readable.count(b"\n")
    c.good -= {r["id"] for r in cut[complete:]}
    c.files["truncated.jsonl.gz"] = truncated
    c.dead[f"truncated.jsonl.gz:{complete + 1}"] = (f"unreadable gzip stream after line {complete} "
                                                   "(at byte")
    # A second member that is not gzip at all, and one whose deflate data is garbage.
    head = [c.record("gzbad", n) for n in range(1, 4)]
    first = _gz(b"".join(_j(r) + b"\n" for r in head))
    c.files["trailing-garbage.jsonl.gz"] = first + b"this is not a gzip member\n"
    c.dead["trailing-garbage.jsonl.gz:4"] = "unreadable gzip stream after line 3"
    tail = [c.record("gzbad2", n) for n in range(1, 3)]
    member = _gz(b"ignored")
    c.files["corrupt.jsonl.gz"] = (_gz(b"".join(_j(r) + b"\n" for r in tail))
                                   + member[:10] + b"\xff" * 40)
    c.dead["corrupt.jsonl.gz:3"] = "unreadable gzip stream after line 2"
    c.files["not-gzip.jsonl.gz"] = _j(c.record("plain", 1)) + b"\n"
    c.good.discard("plain-ok-1")
    c.dead["not-gzip.jsonl.gz:1"] = "unreadable gzip stream at its start"
    csv_cut = _gz(b"id,text,created_at\n" + b"".join(
        f"csvcut-{n},Sprite {n} {'buzz ' * 30},{WHEN}\n".encode() for n in range(1, 41)))
    csv_cut = csv_cut[: len(csv_cut) // 2]
    c.files["truncated.csv.gz"] = csv_cut
    text = zlib.decompressobj(wbits=31).decompress(csv_cut).decode()
    rows = text.count("\n") - 1  # complete rows, after the header
    c.good.update(f"csvcut-{n}" for n in range(1, rows + 1))
    c.dead[f"truncated.csv.gz:{rows + 2}"] = "unreadable gzip stream after line"


def _text_encodings(c: Corpus) -> None:
    rows = [c.record("utf16", n) for n in range(1, 11)]
    table = "id,text,created_at,platform\n" + "".join(f"{r['id']},{r['text']},{WHEN},x\n" for r in rows)
    c.files["utf16.csv"] = table.encode("utf-16")  # with its BOM: 10 rows, 10 records
    c.files["utf16be.csv"] = codecs.BOM_UTF16_BE + table.replace("utf16", "utf16be").encode("utf-16-be")
    c.good.update(r["id"].replace("utf16", "utf16be") for r in rows)
    short = [c.record("utf16cut", n) for n in range(1, 4)]
    c.files["utf16-odd-byte.csv"] = ("id,text,created_at\n" + "".join(
        f"{r['id']},{r['text']},{WHEN}\n" for r in short)).encode("utf-16") + b"\x00"
    c.dead["utf16-odd-byte.csv:5"] = "unreadable file after line 4"
    c.files["utf8-bom.csv"] = (codecs.BOM_UTF8 + b"id,text,created_at\nbomcsv-1,Sprite with a BOM,"
                               + WHEN.encode() + b"\n")
    c.good.add("bomcsv-1")
    c.files["utf8-bom.jsonl"] = codecs.BOM_UTF8 + b"".join(_j(c.record("bom", n)) + b"\n" for n in range(1, 3))
    c.files["utf32.jsonl"] = "".join(
        json.dumps(c.record("utf32", n), ensure_ascii=False) + "\n" for n in range(1, 3)).encode("utf-32")
    lone = '{"id": "bad-u16", "text": "Sprite \ud83d", "created_at": "2026-09-07T10:00:00Z"}\n'
    c.files["utf16-lone-surrogate.jsonl"] = (codecs.BOM_UTF16_LE + _j(c.record("u16", 1)).decode().encode("utf-16-le")
                                             + b"\n\x00" + lone.encode("utf-16-le", "surrogatepass"))
    c.dead["utf16-lone-surrogate.jsonl:2"] = "invalid UTF-16 at byte"
    c.files["utf16-no-bom.jsonl"] = _j({"id": "nobom-1", "text": "Sprite", "created_at": WHEN}).decode().encode(
        "utf-16-le") + b"\n\x00"
    c.dead["utf16-no-bom.jsonl:1"] = "(NUL bytes: a UTF-16 or UTF-32 file without a BOM?)"
    c.dead["utf16-no-bom.jsonl:2"] = "malformed JSON"  # the last line is the NUL after the line break
    c.files["deep.jsonl"] = _j(c.record("deep", 1)) + b"\n" + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    c.dead["deep.jsonl:2"] = "malformed JSON: nested deeper than the JSON parser allows"
    c.files["long-field.csv"] = (b"id,text,created_at\nbad-long," + b"Sprite " * 20_000 + b"," + WHEN.encode()
                                 + b"\nlongcsv-ok-1,Sprite after the long one," + WHEN.encode() + b"\n")
    c.good.add("longcsv-ok-1")
    c.dead["long-field.csv:2"] = "text: 140000 characters, more than the limit of 40000"
    c.files["repeated-header.csv"] = b"id,text,text,created_at\nrep-1,Sprite,Sprite again," + WHEN.encode() + b"\n"
    c.dead["repeated-header.csv:2"] = "malformed CSV: the header repeats column(s) text"
    c.files["empty.jsonl"] = b""
    c.files["blank.jsonl"] = b"\n\n   \n"
    c.files["header-only.csv"] = b"id,text,created_at\n"
    c.files["notes.xlsx"] = b"PK\x03\x04 not a supported type"
    c.dead["notes.xlsx"] = "unknown file type"


def _parquet(table: pa.Table, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def _parquet_files(c: Corpus) -> None:
    ts = pa.timestamp("us", tz="UTC")
    when = datetime.datetime(2026, 9, 7, 10, tzinfo=UTC)
    good = [c.record("pq", n) for n in range(1, 10)]
    table = pa.table({"id": [r["id"] for r in good], "text": [r["text"] for r in good],
                      "created_at": pa.array([when] * 9, ts), "likes": pa.array(range(9), pa.int64())})
    c.files["good.parquet"] = _parquet(table, row_group_size=4)

    # The second of three row groups is corrupt: its rows are one dead letter, the others are read.
    rg = [c.record("pqrg", n) for n in range(1, 10)]
    data = bytearray(_parquet(pa.table({"id": [r["id"] for r in rg], "text": [r["text"] for r in rg],
                                        "created_at": pa.array([when] * 9, ts)}), row_group_size=3))
    meta = pq.ParquetFile(io.BytesIO(bytes(data))).metadata
    for j in range(meta.num_columns):
        column = meta.row_group(1).column(j)
        offset = column.dictionary_page_offset or column.data_page_offset
        data[offset:offset + 8] = b"\xff" * 8
    c.files["corrupt-row-group.parquet"] = bytes(data)
    c.good -= {r["id"] for r in rg[3:6]}
    c.dead["corrupt-row-group.parquet#3"] = "unreadable Parquet row group 1 (rows 3..5"

    # A timestamp past year 9999 holds up only its own row.
    year_10000 = (253_402_300_800 + 86_400) * 10 ** 6  # 10000-01-02, in microseconds since 1970
    far = pa.array([int(when.timestamp()) * 10 ** 6, year_10000], pa.int64()).cast(ts)
    c.files["year-10000.parquet"] = _parquet(pa.table({
        "id": ["y-ok-1", "y-bad"], "text": ["Sprite in 2026", "Sprite in the far future"], "created_at": far}))
    c.good.add("y-ok-1")
    c.dead["year-10000.parquet#1"] = "unreadable Parquet value(s): created_at"

    # Wrong types, column by column.
    c.files["types.parquet"] = _parquet(pa.table({
        "id": ["types-ok-1", "t-2", "t-3", "t-4", "t-5", "t-6"],
        "text": ["Sprite typed", "Sprite", "Sprite", "Sprite", "Sprite", "Sprite"],
        "created_at": pa.array([when, when, when, None, when, when], ts),
        "likes": pa.array([1.0, 1.5, None, None, None, None], pa.float64()),
        "replies": pa.array([None, None, -1, None, None, None], pa.int64()),
        "is_reply": pa.array([None, None, None, None, "maybe", None], pa.string()),
        "quotes": pa.array([None, None, None, None, None, 2 ** 62], pa.int64()),
    }))
    c.good.add("types-ok-1")
    c.dead.update({"types.parquet#1": "likes: 1.5 is not a whole number", "types.parquet#2": "replies: -1 is negative",
                   "types.parquet#3": "missing required field(s): created_at",
                   "types.parquet#4": "is_reply: 'maybe' is not a boolean",
                   "types.parquet#5": "quotes: 4611686018427387904 is more than"})
    c.files["binary-text.parquet"] = _parquet(pa.table({"id": ["bin-1"], "text": pa.array([b"Sprite"], pa.binary()),
                                                        "created_at": pa.array([when], ts)}))
    c.dead["binary-text.parquet#0"] = "text: expected a string, got bytes"
    whole = _parquet(table)
    c.files["truncated.parquet"] = whole[: len(whole) - 20]
    c.dead["truncated.parquet#0"] = "unreadable Parquet file"
    c.files["not-parquet.parquet"] = b"id,text\n1,Sprite\n"
    c.dead["not-parquet.parquet#0"] = "unreadable Parquet file"
    c.files["compressed.parquet.gz"] = _gz(whole)
    c.dead["compressed.parquet.gz"] = "a compressed Parquet file is not read"


def build() -> Corpus:
    """The whole corpus, in memory."""
    c = Corpus()
    c.files["records.jsonl"] = _jsonl(c)
    c.files["records.csv"] = _csv(c)
    _gzip_files(c)
    _text_encodings(c)
    _parquet_files(c)
    return c


def write(corpus: Corpus, out_dir: pathlib.Path, names: typing.Iterable[str] | None = None) -> None:
    """Writes the corpus's files (or only `names`) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (names if names is not None else corpus.files):
        (out_dir / name).write_bytes(corpus.files[name])


if __name__ == "__main__":
    write(build(), pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/hostile"), COMMITTED)
