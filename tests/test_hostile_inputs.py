"""Hostile inputs: every bad record or file is a dead letter with its reason, and the run goes on.

The corpus (`tools/build_hostile_corpus.py`: JSON Lines, CSV, Parquet and gzip files with
every kind of fault, beside good records) goes through the whole job once, shared by the
tests that read its outputs. The focused tests below it pin each defect that once ended a
run: gzip inputs, values no coder could carry, deep nesting, Parquet faults, BOMs, UTF-16
and long CSV fields.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import json
import pathlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from apache_beam.io.fileio import ReadableFile
from apache_beam.io.filesystem import FileMetadata

from connectors.files import InvalidRecord, iter_csv, iter_jsonl, iter_parquet, open_decompressed, parse_mention
from pipelines.run import run
from schemas import Mention
from tests.support.inputs import BRANDS_YAML
from tests.support.fake_model import FakeSentimentHandler
from tools.build_hostile_corpus import COMMITTED, build, write
from transforms.coders import RECORDS_CODER
from transforms.read import DEAD, ParseFileFn

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 1, tzinfo=UTC)
HOSTILE = pathlib.Path(__file__).parent / "data" / "hostile"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """The whole job, run once on the hostile corpus; its corpus, manifest and tables."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = build()
    write(corpus, root / "in")
    (root / "brands.yaml").write_text(BRANDS_YAML, encoding="utf-8")
    out = root / "out"
    run(["--config", str(root / "brands.yaml"), "--output_dir", str(out), "--input", str(root / "in" / "*")],
        model_handler=FakeSentimentHandler())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    tables = {name: ds.dataset(out / name, format="parquet", partitioning="hive").to_table().to_pylist()
              for name in ("brand_mentions", "dead_letters")}
    prefix = str(root / "in") + "/"
    for row in tables["dead_letters"]:
        row["where"] = row["source"].removeprefix(prefix)
    return corpus, manifest, tables


def test_the_corpus_holds_at_least_forty_kinds_of_fault_beside_good_records():
    corpus = build()
    assert len(corpus.dead) >= 40 and len(corpus.good) >= 40
    formats = {name.split(".", 1)[1] for name in corpus.files}
    assert {"jsonl", "csv", "parquet", "jsonl.gz", "csv.gz"} <= formats


def test_the_committed_fixtures_are_what_the_builder_writes():
    corpus = build()
    for name in COMMITTED:
        assert (HOSTILE / name).read_bytes() == corpus.files[name], name


def test_the_run_finishes_with_balanced_counts(hostile_run):
    corpus, manifest, tables = hostile_run
    counts = manifest["counts"]
    assert counts["balanced"] is True
    assert counts["records_read"] == len(corpus.good) + len(corpus.dead)
    assert counts["mentions_valid"] == len(corpus.good)
    assert counts["dead_letter_rows"] == len(tables["dead_letters"]) == len(corpus.dead)
    assert (counts["duplicates_dropped"], counts["mentions_unmatched"]) == (0, 0)


def test_every_good_record_is_a_brand_mention(hostile_run):
    corpus, _manifest, tables = hostile_run
    assert sorted(r["mention_id"] for r in tables["brand_mentions"]) == sorted(corpus.good)
    assert {r["brand_id"] for r in tables["brand_mentions"]} == {"sprite"}
    # Two posts whose 'platform:id' strings were equal are both kept.
    assert {(r["platform"], r["mention_id"]) for r in tables["brand_mentions"]} >= {("x", "1:2"), ("x:1", "2")}


def test_every_bad_record_is_a_dead_letter_with_its_reason(hostile_run):
    corpus, _manifest, tables = hostile_run
    found = {row["where"]: row["reason"] for row in tables["dead_letters"]}
    assert sorted(found) == sorted(corpus.dead)
    wrong = {where: (expected, found[where]) for where, expected in corpus.dead.items() if expected not in found[where]}
    assert wrong == {}


def test_dead_letters_keep_what_was_received(hostile_run):
    _corpus, _manifest, tables = hostile_run
    by_where = {row["where"]: row for row in tables["dead_letters"]}
    long_field = by_where["long-field.csv:2"]["record"]
    assert len(long_field) > 131_072 and long_field.startswith("bad-long,Sprite Sprite")
    by_id = {json.loads(row["record"])["id"]: row["record"] for row in tables["dead_letters"]
             if row["record"].startswith('{"id": "bad-1')}
    assert '"half an emoji \\ud83d Sprite"' in by_id["bad-12"]  # the escape, as received
    latin1 = [row["record"] for row in tables["dead_letters"] if '"bad-50"' in row["record"]]
    assert latin1 == ['{"id": "bad-50", "text": "caf\\xe9 Sprite Latin-1", "created_at": "2026-09-07T10:00:00Z"}']
    assert {by_where[w]["step"] for w in ("notes.xlsx", "compressed.parquet.gz")} == {"read"}


# --- focused: each defect that once ended the run -----------------------------------------------


def _lines(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _good(i: int, **fields) -> dict:
    record = {"id": f"g{i}", "text": f"Sprite {i}", "created_at": "2026-09-07T10:00:00Z", "platform": "x"}
    record.update(fields)
    return record


def _read(name: str, data: bytes, reader):
    return list(reader(name, open_decompressed(name, io.BytesIO(data))))


def test_gzip_jsonl_and_csv_are_read():
    jsonl = _read("a.jsonl.gz", gzip.compress(_lines(_good(1), _good(2))), iter_jsonl)
    assert [r.data["id"] for r in jsonl] == ["g1", "g2"]
    csv_rows = _read("a.csv.gz", gzip.compress(b"id,text,created_at\ng1,Sprite,2026-09-07T10:00:00Z\n"), iter_csv)
    assert [r.data["id"] for r in csv_rows] == ["g1"]
    bz2_rows = _read("a.jsonl.bz2", bz2.compress(_lines(_good(1), _good(2))), iter_jsonl)
    assert [r.data["id"] for r in bz2_rows] == ["g1", "g2"]


def test_a_truncated_gzip_keeps_what_came_before_and_says_where_it_stopped():
    data = gzip.compress(_lines(*[_good(i, text="Sprite " + "x" * 200) for i in range(50)]))
    records = _read("cut.jsonl.gz", data[: len(data) // 2], iter_jsonl)
    *good, last = records
    assert good and all(r.error is None for r in good)
    assert [r.data["id"] for r in good] == [f"g{i}" for i in range(len(good))]
    assert last.data is None and last.source == f"cut.jsonl.gz:{len(good) + 1}"
    assert last.error.startswith(f"unreadable gzip stream after line {len(good)} (at byte ")
    assert "EOFError" in last.error


@pytest.mark.parametrize("record, reason", [
    (_good(1, text="half an emoji \ud83d"), "text: not valid Unicode (a lone surrogate U+D83D at character 14"),
    (_good(2, author_handle="\udcff"), "author_handle: invalid UTF-8"),
    (_good(3, likes=2 ** 63), "likes: 9223372036854775808 is more than 1,000,000,000,000"),
    (_good(4, impressions=2 ** 63 - 1), "impressions: 9223372036854775807 is more than"),
    (_good(5, likes=-(2 ** 70)), "likes: -1180591620717411303424 is negative"),
    (_good(6, likes=float("nan")), "likes: nan is not a whole number"),
    (_good(7, id=10 ** 5000), "id: a 16610-bit integer is too long for an id"),
    (_good(8, created_at=10 ** 400), "created_at: a 1329-bit integer is out of range"),
])
def test_values_no_coder_can_carry_are_rejected_at_the_edge(record, reason):
    with pytest.raises(InvalidRecord) as err:
        parse_mention(record, now=NOW)
    assert str(err.value).startswith(reason)


def test_three_posts_at_the_int64_limit_never_reach_the_coders():
    # Each alone fits in int64; their sum did not (the metrics' RowCoder raised OverflowError).
    for i in range(3):
        with pytest.raises(InvalidRecord, match="likes: 9223372036854775807 is more than"):
            parse_mention(_good(i, likes=2 ** 63 - 1), now=NOW)
    biggest = parse_mention(_good(9, likes=10 ** 12, impressions=10 ** 12), now=NOW)
    row_coder = beam.coders.registry.get_coder(Mention)
    for coder in (RECORDS_CODER, row_coder):
        assert coder.decode(coder.encode(biggest)) == biggest


def test_deep_nesting_is_a_dead_letter():
    (record,) = list(iter_jsonl("deep.jsonl", io.BytesIO(b"[" * 100_000 + b"]" * 100_000 + b"\n")))
    assert record.data is None and record.error == "malformed JSON: nested deeper than the JSON parser allows"


def test_parquet_year_10000_and_a_corrupt_row_group_hold_up_only_themselves():
    ts = pa.timestamp("us", tz="UTC")
    micros = [1_788_775_200 * 10 ** 6, (253_402_300_800 + 86_400) * 10 ** 6] * 3
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(6)], "text": ["Sprite"] * 6,
                             "created_at": pa.array(micros, pa.int64()).cast(ts)}), buf, row_group_size=2)
    data = bytearray(buf.getvalue())
    meta = pq.ParquetFile(io.BytesIO(bytes(data))).metadata
    for j in range(meta.num_columns):  # break the page headers of the last row group
        column = meta.row_group(2).column(j)
        offset = column.dictionary_page_offset or column.data_page_offset
        data[offset:offset + 8] = b"\xff" * 8
    records = list(iter_parquet("f.parquet", io.BytesIO(bytes(data))))
    assert [(r.source, r.data["id"] if r.data else None) for r in records] == [
        ("f.parquet#0", "p0"), ("f.parquet#1", None), ("f.parquet#2", "p2"), ("f.parquet#3", None),
        ("f.parquet#4", None)]
    assert records[1].error.startswith("unreadable Parquet value(s): created_at: ")
    assert records[4].error.startswith("unreadable Parquet row group 2 (rows 4..5 of the file are not read): OSError")


def test_a_utf8_bom_is_dropped_and_utf16_files_are_read_row_for_row():
    (first, second) = list(iter_jsonl("b.jsonl", io.BytesIO(b"\xef\xbb\xbf" + _lines(_good(1), _good(2)))))
    assert (first.error, first.data["id"], second.data["id"]) == (None, "g1", "g2")
    table = "id,text,created_at\n" + "".join(f"g{i},Sprite {i},2026-09-07T10:00:00Z\n" for i in range(10))
    for encoding in ("utf-16", "utf-32"):
        rows = list(iter_csv("u.csv", io.BytesIO(table.encode(encoding))))
        assert [r.data["id"] for r in rows] == [f"g{i}" for i in range(10)], encoding
        lines = list(iter_jsonl("u.jsonl", io.BytesIO(_lines(_good(1), _good(2)).decode().encode(encoding))))
        assert [r.data["id"] for r in lines] == ["g1", "g2"], encoding


def test_a_csv_field_past_131072_characters_keeps_its_record():
    text = "Sprite " * 30_000
    (row,) = list(iter_csv("l.csv", io.BytesIO(f"id,text,created_at\ng1,{text},2026-09-07T10:00:00Z\n".encode())))
    assert row.data["text"] == text and row.raw.startswith("g1,Sprite")
    with pytest.raises(InvalidRecord, match="text: 210000 characters, more than the limit of 40000"):
        parse_mention(row.data, now=NOW)


def test_a_line_longer_than_the_limit_is_one_dead_record():
    data = _lines(_good(1)) + b'{"id": "big", "text": "' + b"S" * 5000 + b'"}\n' + _lines(_good(2))
    records = list(iter_jsonl("l.jsonl", io.BytesIO(data), max_line_bytes=1000))
    assert [(r.source, r.data["id"] if r.data else r.error) for r in records] == [
        ("l.jsonl:1", "g1"), ("l.jsonl:2", "line longer than 1,000 bytes (not a post)"), ("l.jsonl:3", "g2")]


def test_a_file_that_cannot_be_opened_is_one_dead_letter_and_the_dofn_goes_on(tmp_path):
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(gzip.compress(_lines(_good(1), _good(2))))
    gone = tmp_path / "gone.jsonl"  # matched, then deleted before it was read
    fn = ParseFileFn(now=NOW)
    fn.setup()
    out = [x for path in (gone, good) for x in fn.process(ReadableFile(FileMetadata(str(path), 10)))]
    dead = [x.value for x in out if isinstance(x, beam.pvalue.TaggedOutput) and x.tag == DEAD]
    assert [(d.step, d.source) for d in dead] == [("read", str(gone))]
    assert dead[0].reason.startswith("file not read after 0 record(s): FileNotFoundError")
    assert [m.id for m in out if isinstance(m, Mention)] == ["g1", "g2"]
