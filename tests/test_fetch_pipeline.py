"""The job with platform sources (`pipelines.run --source x,...`) against fake servers, outputs read back."""

from __future__ import annotations

import datetime
import json
import logging
import pathlib

import pyarrow.dataset as ds
import pytest
from apache_beam.pvalue import TaggedOutput

from connectors.base import ACCOUNT, BRAND_REPLIES, MENTIONS, ConnectorSettings, FetchTask
from pipelines.run import main, run
from schemas.records import AccountSnapshot, BrandReply, Mention
from tests.support.platforms import (TOKEN, UTC, FakeBluesky, FakeMastodon, FakeReddit, FakeX, bluesky_dataset,
                                  fast_policy, mastodon_dataset, reddit_dataset, serve, x_dataset, x_id, x_tweet)
from tests.support.fake_model import FakeSentimentHandler
from transforms.fetch import DEAD, PROGRESS, REPLIES, SNAPSHOTS, FetchFn

X_QUERIES = ("(Sprite OR Спрайт OR @Sprite OR #Sprite) -is:retweet",
             '("Coca-Cola" OR Coke OR "Кока-Кола" OR "Koka-Kola" OR @CocaCola OR #CocaCola) -is:retweet',
             "(Fanta OR Фанта) -is:retweet")
FAST = ["--page_size", "10", "--http_timeout", "0.5", "--http_max_attempts", "3", "--http_backoff", "0.01",
        "--http_backoff_cap", "0.05", "--max_rate_limit_wait", "2"]


@pytest.fixture
def x_fake(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    tweets, users = x_dataset(datetime.datetime.now(UTC))
    with serve(FakeX(tweets, users)) as fake:
        yield fake
    assert not fake.overflow


def _run(brands_file, out, *extra) -> dict:
    run(["--config", str(brands_file), "--output_dir", str(out)] + FAST + list(extra),
        model_handler=FakeSentimentHandler())
    return json.loads((out / "manifest.json").read_text())


def _table(out: pathlib.Path, name: str) -> list:
    return ds.dataset(out / name, format="parquet", partitioning="hive").to_table().to_pylist()


def _mention_ids(fake: FakeX) -> set:
    return {t["id"] for q in X_QUERIES for t in fake.select(q)}


def test_x_fault_and_a_poisoned_post_then_an_incremental_rerun_lose_and_duplicate_nothing(
        brands_file, tmp_path, x_fake, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    x_fake.inject("rate_limit", page=2, query="Sprite", reset_in=3600)  # longer than --max_rate_limit_wait
    # A poisoned post (a lone surrogate in its text), the newest of all: it must block neither run.
    created = datetime.datetime.now(UTC) - datetime.timedelta(minutes=1)
    poisoned = x_tweet(x_id(created, 800), "Sprite \ud83d half an emoji", created, "101")
    x_fake.tweets.insert(0, poisoned)

    first = _run(brands_file, out, "--source", "x", "--x_base_url", x_fake.url)
    assert first["counts"]["balanced"] is True and first["sources"] == ["x"]
    assert first["fetch"]["tasks"] == 7 and first["fetch"]["tasks_stopped"] == 1
    state = json.loads((out / "_state" / "x.json").read_text())
    sprite = state["queries"][f"mentions:sprite:{X_QUERIES[0]}"]
    assert len(sprite["gaps"]) == 1 and "rate limited" in sprite["gaps"][0]["reason"]
    assert sprite["since"] == {"since_id": poisoned["id"]}  # moved past the poisoned post
    posts = [r["id"] for r in _table(out, "posts")]
    assert len(posts) == len(set(posts)) < len(_mention_ids(x_fake))  # partial, each once
    dead = [d for d in _table(out, "dead_letters") if poisoned["id"] in (d["source"] or "")]
    # A valid post (its text repaired) or a dead letter holding it: never an exception.
    assert poisoned["id"] in posts or (len(dead) == 1 and "half an emoji" in dead[0]["record"])

    # New posts arrive; the rerun fills the gap and fetches only what is new.
    now = datetime.datetime.now(UTC)
    for i in range(2):
        created = now - datetime.timedelta(minutes=1, seconds=i)
        x_fake.tweets.insert(0, x_tweet(x_id(created, 500 + i), f"Sprite, new post {i}", created, "101"))
    second = _run(brands_file, out, "--source", "x", "--x_base_url", x_fake.url)
    assert second["counts"]["balanced"] is True and second["fetch"]["tasks_stopped"] == 0
    sprite_requests = [r.params for r in x_fake.search_requests() if r.params["query"] == X_QUERIES[0]]
    assert any("until_id" in p for p in sprite_requests)  # the gap
    assert any(p.get("since_id") == sprite["since"]["since_id"] for p in sprite_requests)  # the new posts

    posts = [r["id"] for r in _table(out, "posts")]
    # Every post, once, over both runs (the poisoned one as a post or, above, a dead letter).
    assert len(posts) == len(set(posts))
    assert set(posts) - {poisoned["id"]} == set(_mention_ids(x_fake)) - {poisoned["id"]}
    for post_id in posts:  # ... and the fake served each once per query that matches it
        assert x_fake.served[post_id] == sum(post_id in {t["id"] for t in x_fake.select(q)} for q in X_QUERIES)
    mentions = _table(out, "brand_mentions")
    assert {m["platform"] for m in mentions} == {"x"} and {m["mention_id"] for m in mentions} == set(posts)
    assert {m["brand_id"] for m in mentions} == {"sprite", "cocacola", "fanta"}
    state = json.loads((out / "_state" / "x.json").read_text())
    assert all(not q["gaps"] for q in state["queries"].values())

    replies = _table(out, "brand_replies")
    complaint = next(t for t in x_fake.tweets if t["text"].startswith("@Sprite your can"))
    assert len(replies) == 2 and {r["in_reply_to_id"] for r in replies} == {complaint["id"]}
    (row,) = [m for m in mentions if m["mention_id"] == complaint["id"] and m["brand_id"] == "sprite"]
    assert (row["match_kind"], row["matched_term"]) == ("tagged", "@Sprite")  # entities kept in the text
    assert row["author_followers"] == 1500 and row["likes"] == 3  # the later metric's join works on this id
    snapshots = _table(out, "account_snapshots")
    assert sorted((s["handle"], s["followers"]) for s in snapshots) == [
        ("CocaCola", 1_000_000), ("CocaCola", 1_000_000), ("Sprite", 250_000), ("Sprite", 250_000)]

    # The token is in no log line, no printed line and no output file.
    printed = capsys.readouterr()
    assert TOKEN not in caplog.text + printed.out + printed.err
    files = [path for path in out.rglob("*") if path.is_file()]
    assert files and [path for path in files if TOKEN.encode() in path.read_bytes()] == []


def test_several_sources_at_once_with_the_file_connector(brands_file, mixed_jsonl, tmp_path, x_fake):
    now = datetime.datetime.now(UTC)
    out = tmp_path / "out"
    with serve(FakeMastodon(mastodon_dataset(now))) as mastodon, serve(FakeReddit(reddit_dataset(now))) as reddit, \
            serve(FakeBluesky(bluesky_dataset(now))) as bluesky:
        manifest = _run(brands_file, out, "--source", "file,x,mastodon", "--source", "reddit,bluesky",
                        "--input", str(mixed_jsonl), "--x_base_url", x_fake.url,
                        "--mastodon_instance", mastodon.url, "--reddit_base_url", reddit.url,
                        "--bluesky_base_url", bluesky.url)
    counts = manifest["counts"]
    assert counts["balanced"] is True and counts["dead_letter_rows"] > 0  # the file's bad lines
    assert sorted(manifest["fetch"]["connectors"]) == ["bluesky", "mastodon", "reddit", "x"]
    assert all(c["posts_fetched"] > 0 for c in manifest["fetch"]["connectors"].values())
    platforms = {m["platform"] for m in _table(out, "brand_mentions")}
    assert {"x", "mastodon", "reddit", "bluesky"} <= platforms and "g1" in {
        m["mention_id"] for m in _table(out, "brand_mentions")}
    posts = _table(out, "posts")
    assert {p["platform"] for p in posts} == {"x", "mastodon", "reddit", "bluesky"}  # the files are not archived
    assert len({(p["platform"], p["id"]) for p in posts}) == len(posts)
    assert sorted(p.name for p in (out / "_state").glob("*.json")) == [
        "bluesky.json", "mastodon.json", "reddit.json", "x.json"]


def test_a_backfill_runs_one_task_per_query_and_slice(brands_file, tmp_path, x_fake):
    now = datetime.datetime.now(UTC)
    start, end = now - datetime.timedelta(hours=10), now - datetime.timedelta(hours=1)
    out = tmp_path / "out"
    manifest = _run(brands_file, out, "--source", "x", "--x_base_url", x_fake.url,
                    "--start_time", start.isoformat(), "--end_time", end.isoformat(), "--slice_hours", "3")
    assert manifest["fetch"]["tasks"] == 3 * 5 + 2  # (3 mention + 2 reply queries) x 3 slices + 2 accounts
    assert manifest["counts"]["balanced"] is True
    windows = {(r.params["start_time"], r.params["end_time"]) for r in x_fake.search_requests()}
    assert len(windows) == 3
    state = json.loads((out / "_state" / "x.json").read_text())
    assert all(len(q["done_slices"]) == 3 for q in state["queries"].values())
    posts = _table(out, "posts")
    assert posts and all(start <= p["created_at"] < end for p in posts)


def test_the_fetch_dofn_directly(x_fake):
    settings = {"x": ConnectorSettings(base_url=x_fake.url, http=fast_policy(), page_size=10)}
    fn = FetchFn(settings)
    assert TOKEN not in repr(fn.__dict__)  # the DoFn holds configuration only
    fn.setup()
    try:
        since = (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).isoformat()
        outputs = list(fn.process(FetchTask("x", "k", MENTIONS, "sprite", X_QUERIES[0], start_time=since)))
        outputs += list(fn.process(FetchTask("x", "r", BRAND_REPLIES, "sprite", "from:Sprite is:reply",
                                             start_time=since)))
        outputs += list(fn.process(FetchTask("x", "a", ACCOUNT, "sprite", "Sprite")))
    finally:
        fn.teardown()
    mentions = [o for o in outputs if isinstance(o, Mention)]
    tagged = [o for o in outputs if isinstance(o, TaggedOutput)]
    assert [m.id for m in mentions] == [t["id"] for t in x_fake.select(X_QUERIES[0])]
    by_tag = {}
    for o in tagged:
        by_tag.setdefault(o.tag, []).append(o.value)
    assert len(by_tag[REPLIES]) == 2 and all(isinstance(r, BrandReply) for r in by_tag[REPLIES])
    assert [type(s) for s in by_tag[SNAPSHOTS]] == [AccountSnapshot]
    assert len(by_tag[PROGRESS]) == 3 and DEAD not in by_tag


@pytest.mark.parametrize("extra, message", [
    (["--source", "x"], "X_BEARER_TOKEN"),  # the only case run without a token in the environment
    (["--source", "myspace"], "'myspace' is not a source"),
    (["--source", "x", "--input", "PLACEHOLDER"], "file source only"),
    (["--source", "x", "--end_time", "2026-01-01T00:00:00Z"], "--end_time needs --start_time"),
    (["--source", "x", "--start_time", "2020-01-01T00:00:00Z"], "7 days"),
    (["--source", "x", "--start_time", "yesterday"], "--start_time: 'yesterday' is not an ISO 8601 time"),
    (["--source", "reddit", "--slice_hours", "0"], "--slice_hours must be positive"),
    (["--source", "bluesky", "--langs", "english"], "--langs: 'english'"),
    (["--start_time", "2026-01-01T00:00:00Z", "--input", "PLACEHOLDER"], "platform sources only"),
])
def test_misconfiguration_stops_before_any_work(brands_file, mixed_jsonl, tmp_path, capsys, monkeypatch, extra,
                                                message):
    if message == "X_BEARER_TOKEN":
        monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    else:
        monkeypatch.setenv("X_BEARER_TOKEN", "some-token")
    argv = ["--config", str(brands_file), "--output_dir", str(tmp_path / "o")]
    argv += [str(mixed_jsonl) if a == "PLACEHOLDER" else a for a in extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", ["AAAA-first-half\nsecond-half-BBBB\n", "AAAA-first-half second-half-BBBB"])
def test_a_token_file_with_a_break_inside_exits_2_naming_the_flag_not_the_token(brands_file, tmp_path, capsys,
                                                                                  monkeypatch, content):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    token_file = tmp_path / "x.token"
    token_file.write_text(content)
    argv = ["--config", str(brands_file), "--output_dir", str(tmp_path / "o"), "--source", "x",
            "--x_bearer_token_file", str(token_file), "--x_base_url", "http://127.0.0.1:9"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--x_bearer_token_file" in err and "first-half" not in err and "second-half" not in err
    assert not (tmp_path / "o").exists()
