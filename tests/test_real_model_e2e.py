"""The real embedded model through the whole job: a dozen posts in five languages, from the file to every table.

Every other job test swaps the model for the lexicon double (`tests/support/fake_model.py`)
to run in seconds; this one runs `python -m pipelines.run`'s `run()` exactly as a user does,
with the default `--model embedded` (multilingual e5-small and the shipped head, converted
into the cache on first use), on hand-written posts whose sentiment no reader would dispute.
The cost is the model's load (some 30 s on 2 cores); the posts are few so that the rest is
the job's own fixed cost.
"""

from __future__ import annotations

import json
import pathlib

import pyarrow.dataset as ds
import pytest

from pipelines.run import run
from schemas.tables import JOB_TABLES
from tests.support.inputs import write_brands, write_jsonl

pytestmark = pytest.mark.slow  # the real model's load: CI runs it, `make test-fast` does not

BRANDS_YAML = """\
brands:
  - id: sprite
    names: [Sprite, Спрайт, Спрајт]
    handles: [Sprite]
    competitors: [cocacola]
  - id: cocacola
    names: [Coca-Cola, Coke, Кока-Кола, Koka-Kola]
    handles: [CocaCola]
    competitors: [sprite]
  - id: fanta
    names: [Fanta, Фанта]
"""

# (id, language, text, brand, what the author means). Hand-written for this test (2026-12, project licence):
# plain praise and plain complaints, a slang one without capitals, two neutral facts about prices.
POSTS = [
    ("en-pos", "en", "Honestly Sprite is the best drink ever, I love it so much 😍", "sprite", "positive"),
    ("en-neg", "en", "@CocaCola my order arrived broken and support never answered. Worst service ever, "
                     "I'm furious", "cocacola", "negative"),
    ("en-slang", "en", "ugh coke tastes like flat garbage today smh", "cocacola", "negative"),
    ("en-fact", "en", "Sprite 0.5 l costs 1.20 EUR at the station shop", "sprite", "neutral"),
    ("ru-pos", "ru", "Обожаю Спрайт, лучший напиток этим летом! 👍", "sprite", "positive"),
    ("ru-neg", "ru", "Кока-Кола стала ужасной на вкус, больше никогда не куплю", "cocacola", "negative"),
    ("uk-neg", "uk", "Фанта просто жахлива, найгірший напій у моєму житті", "fanta", "negative"),
    ("hr-pos", "hr", "Fanta je odlična, obožavam je, super osvježenje za ljeto", "fanta", "positive"),
    ("sr-fact", "sr", "Koka-Kola je danas na akciji u Maxiju, 1,5 l za 150 dinara", "cocacola", "neutral"),
    ("sr-pos", "sr", "Спрајт је најбољи, пијем га сваки дан 😊", "sprite", "positive"),
]
UNMATCHED = {"id": "none", "text": "Going hiking this weekend, anyone want to join?", "lang": "en"}
BAD_LINE = b'{"id": "broken", "text": "Sprite is gr'  # cut off mid-write


def _records() -> list:
    records = [{"id": pid, "platform": "x", "text": text, "lang": lang, "author_id": f"u{i}",
                "created_at": f"2026-09-{7 + i % 3:02d}T{9 + i:02d}:00:00Z"}
               for i, (pid, lang, text, _brand, _sentiment) in enumerate(POSTS)]
    records.append(dict(UNMATCHED, platform="x", created_at="2026-09-08T12:00:00Z"))
    records.append(dict(records[0]))  # the same post fetched twice
    return records


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_model")
    posts = write_jsonl(root / "in" / "posts.jsonl", _records(), [BAD_LINE])
    out = root / "out"
    run(["--config", str(write_brands(root, BRANDS_YAML)), "--input", str(posts), "--output_dir", str(out)])
    return out, json.loads((out / "manifest.json").read_text())


def _rows(out: pathlib.Path, table: str) -> list:
    return ds.dataset(out / table, format="parquet", partitioning="hive").to_table().to_pylist()


def test_counts_balance_and_every_table_is_written(real_run):
    out, manifest = real_run
    counts = manifest["counts"]
    assert counts["records_read"] == len(POSTS) + 3  # + the unmatched post, the duplicate, the bad line
    assert (counts["duplicates_dropped"], counts["dead_letter_rows"]) == (1, 1)
    assert (counts["mentions_matched"], counts["mentions_unmatched"]) == (len(POSTS), 1)
    assert counts["balanced"] is True
    assert set(JOB_TABLES) <= set(manifest["tables"])
    for table in JOB_TABLES:
        assert (out / table).is_dir(), table
    assert manifest["table_rows"]["brand_mentions"] == len(POSTS)
    (dead,) = _rows(out, "dead_letters")
    assert dead["step"] == "parse" and "malformed JSON" in dead["reason"]


def test_the_real_model_reads_the_sentiment_of_clear_posts_in_every_language(real_run):
    out, manifest = real_run
    rows = {r["mention_id"]: r for r in _rows(out, "brand_mentions")}
    assert {pid: (rows[pid]["brand_id"], rows[pid]["sentiment"]) for pid in rows} == {
        pid: (brand, sentiment) for pid, _lang, _text, brand, sentiment in POSTS}
    model_ids = {r["model_id"] for r in rows.values()}
    assert len(model_ids) == 1 and "fake" not in model_ids.pop()  # one real model scored every post
    assert manifest["model"]["model_ids"] == sorted({r["model_id"] for r in rows.values()})
    for row in rows.values():
        probs = {"negative": row["p_negative"], "neutral": row["p_neutral"], "positive": row["p_positive"]}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert max(probs, key=probs.get) == row["sentiment"]


def test_topics_come_from_one_taxonomy_with_a_score_for_every_topic(real_run):
    out, _manifest = real_run
    rows = _rows(out, "brand_mentions")
    taxonomies = {tuple(sorted(dict(r["topic_scores"]))) for r in rows}
    assert len(taxonomies) == 1 and len(taxonomies.pop()) >= 2
    for row in rows:
        scores = dict(row["topic_scores"])
        assert all(0.0 <= v <= 1.0 for v in scores.values())
        assert set(row["topics"]) <= set(scores)


def test_metrics_count_the_models_labels(real_run):
    out, _manifest = real_run
    day_totals = [m for m in _rows(out, "metrics") if m["period"] == "day" and m["platform"] is None]
    for brand in ("sprite", "cocacola", "fanta"):
        expected = {s: sum(1 for _p, _l, _t, b, sentiment in POSTS if b == brand and sentiment == s)
                    for s in ("negative", "neutral", "positive")}
        got = {s: sum(m[f"{s}_mentions"] for m in day_totals if m["brand_id"] == brand) for s in expected}
        assert got == expected, brand
