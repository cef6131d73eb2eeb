"""The job with a query-language config: untagged inflected mentions and `matched_rule` in the Parquet output."""

from __future__ import annotations

import json

import pyarrow.dataset as ds

from pipelines.run import run
from tests.support.fake_model import FakeSentimentHandler

BRANDS = """\
brands:
  - id: zara
    names: [Zara]
    handles: [ZARA]
    exclude: ["Zara Larsson"]
    competitors: [nike]
  - id: nike
    hashtags: [JustDoIt]
    query: '(Nike OR Најк) NOT author:nike_parody OR (Nike* NEAR/2 patik*) lang:sr'
    transliterate: true
    competitors: [zara]
"""

POSTS = [
    ("p1", "Dva dana čekam dostavu iz Zare", "hr", "ana"),
    ("p2", "@ZARA gdje je moj povrat?", "hr", "ivo"),
    ("p3", "Najkom sam zadovoljan, #JustDoIt", "sr", "marko"),
    ("p4", "Купио сам Најке на снижењу", "sr", "jovan"),
    ("p5", "Nike, the goddess of victory", "en", "nike_parody"),
    ("p6", "Zara Larsson live tonight", "en", "fan"),
    ("p7", "patike Nikeove su super", "sr", "nike_parody"),
]


def test_pipeline_writes_the_matched_rule(tmp_path):
    brands = tmp_path / "brands.yaml"
    brands.write_text(BRANDS, encoding="utf-8")
    posts = tmp_path / "posts.jsonl"
    posts.write_text("\n".join(json.dumps({"id": i, "text": t, "lang": lang, "author_handle": a,
                                           "created_at": "2026-09-07T10:00:00Z", "platform": "x"},
                                          ensure_ascii=False) for i, t, lang, a in POSTS), encoding="utf-8")
    out = tmp_path / "out"
    run(["--config", str(brands), "--input", str(posts), "--output_dir", str(out)],
        model_handler=FakeSentimentHandler())

    table = ds.dataset(out / "brand_mentions", format="parquet", partitioning="hive").to_table()
    rows = {(r["mention_id"], r["brand_id"]): (r["match_kind"], r["matched_term"], r["matched_rule"])
            for r in table.to_pylist()}
    assert rows == {
        ("p1", "zara"): ("untagged", "Zara", "names"),
        ("p2", "zara"): ("tagged", "@ZARA", "handles"),
        ("p3", "nike"): ("tagged", "#JustDoIt", "hashtags"),
        ("p4", "nike"): ("untagged", "Најк", "query: (Nike OR Најк) NOT author:nike_parody"),
        ("p7", "nike"): ("untagged", "Nike*", "query: (Nike* NEAR/2 patik*) lang:sr"),
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["mentions_matched"] == 5 and manifest["counts"]["mentions_unmatched"] == 2
