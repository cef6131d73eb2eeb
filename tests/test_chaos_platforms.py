"""Chaos: every platform connector against a hostile loopback server, run after run, and the whole job on all four.

The fakes (tests/support/platforms.py) cut a body with a TCP reset, trickle one that never
ends (or a header line that never ends), hand back a cursor already followed, answer 200 with an HTML page, echo the
Authorization header in the reason phrase and the body, and send a gzip bomb; each
dataset also holds poisoned posts (a lone surrogate in the text, a count beyond int64).
Whatever happens: nothing raises, every good post arrives, no post is lost or kept twice
over the reruns, no later run replays a fault, and no secret appears anywhere.

Every server listens on 127.0.0.1 only, answers a bounded number of requests, and the
trickle is ended by the connector's per-try deadline (2 s here), never by the test.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import logging
import pathlib
import typing

import pyarrow.dataset as ds
import pytest
import yaml

from connectors.base import COMPLETE, LOOPED, MENTIONS, ConnectorSettings, DeadPage, merge_state, plan_tasks
from connectors.bluesky import BlueskyConnector
from connectors.mastodon import MastodonConnector
from connectors.reddit import RedditConnector
from connectors.x import XConnector
from pipelines.run import main
from schemas.config import parse_config
from schemas.records import Mention
from tests.support.inputs import BRANDS_YAML
from tests.support.platforms import (TOKEN, UTC, FakeBluesky, FakeMastodon, FakeReddit, FakeX, _html, bluesky_dataset,
                                  bluesky_post, fast_policy, mastodon_dataset, mastodon_id, mastodon_status,
                                  reddit_dataset, reddit_post, run_tasks, serve, x_dataset, x_id, x_tweet)

MASTODON_TOKEN = "mastodon-chaos-token-0123456789-SECRET"
REDDIT_TOKEN = "reddit-chaos-token-9876543210-SECRET"
BLUESKY_PASSWORD = "abcd-efgh-ijkl-mnop"
# Everything that must never be seen: the secrets, and the session tokens Bluesky hands out.
SECRETS = (TOKEN, MASTODON_TOKEN, REDDIT_TOKEN, BLUESKY_PASSWORD, "jwt-access-", "jwt-refresh")
ENV = {"X_BEARER_TOKEN": TOKEN, "MASTODON_ACCESS_TOKEN": MASTODON_TOKEN, "REDDIT_ACCESS_TOKEN": REDDIT_TOKEN,
       "BLUESKY_HANDLE": "brand.bsky.social", "BLUESKY_APP_PASSWORD": BLUESKY_PASSWORD}
ATTEMPTS = 2
MAX_RUNS = 12


class Chaos(typing.NamedTuple):
    """One platform under test: its connector, its fake, the query its faults hit, and its posts."""

    cls: type
    fake: typing.Any
    fault_query: str        # a substring of the query the faults are injected into
    id_of: typing.Callable[[dict], str]
    poisoned: tuple[str, ...]


def _poisoned_x(now):
    made = []
    for seq, (text, likes) in enumerate([("Sprite \ud83d half an emoji", 3), ("Sprite loved by everyone", 2 ** 64)]):
        created = now - datetime.timedelta(minutes=1, seconds=seq)
        made.append(x_tweet(x_id(created, 700 + seq), text, created, "101",
                            metrics={"like_count": likes, "retweet_count": 0, "reply_count": 0, "quote_count": 0}))
    return made


def _poisoned_mastodon(now):
    made = []
    for seq, (text, likes) in enumerate([("Sprite \ud83d half an emoji #Sprite", 3),
                                         ("Sprite loved by everyone #Sprite", 2 ** 64)]):
        created = now - datetime.timedelta(minutes=1, seconds=seq)
        status = mastodon_status(mastodon_id(created, 700 + seq), _html(text), created, tags=["Sprite"])
        status["favourites_count"] = likes
        made.append(status)
    return made


def _poisoned_reddit(now):
    return [reddit_post("1zz000", "Sprite \ud83d half an emoji", now - datetime.timedelta(minutes=1)),
            reddit_post("1zz001", "Sprite loved by everyone", now - datetime.timedelta(minutes=1, seconds=1),
                        ups=2 ** 64)]


def _poisoned_bluesky(now):
    return [bluesky_post("3zz0000", "Sprite \ud83d half an emoji", now - datetime.timedelta(minutes=1)),
            bluesky_post("3zz0001", "Sprite loved by everyone", now - datetime.timedelta(minutes=1, seconds=1),
                         likes=2 ** 64)]


def make(platform: str, now: datetime.datetime) -> Chaos:
    """A fake of `platform` holding its usual dataset plus two poisoned posts (not started)."""
    if platform == "x":
        tweets, users = x_dataset(now)
        poisoned = _poisoned_x(now)
        return Chaos(XConnector, FakeX(tweets + poisoned, users), "(Sprite", lambda t: t["id"],
                     tuple(t["id"] for t in poisoned))
    if platform == "mastodon":
        poisoned = _poisoned_mastodon(now)
        return Chaos(MastodonConnector, FakeMastodon(mastodon_dataset(now) + poisoned, token=MASTODON_TOKEN),
                     "#sprite", lambda s: s["id"], tuple(s["id"] for s in poisoned))
    if platform == "reddit":
        poisoned = _poisoned_reddit(now)
        return Chaos(RedditConnector, FakeReddit(reddit_dataset(now) + poisoned, token=REDDIT_TOKEN),
                     "Sprite", lambda d: d["name"], tuple(f"t3_{p['data']['id']}" for p in poisoned))
    poisoned = _poisoned_bluesky(now)
    return Chaos(BlueskyConnector, FakeBluesky(bluesky_dataset(now) + poisoned, password=BLUESKY_PASSWORD),
                 "Sprite", lambda p: p["uri"], tuple(p["uri"] for p in poisoned))


def good_ids(chaos: Chaos, queries) -> set[str]:
    """Every post some mention query returns, poisoned posts aside."""
    return {chaos.id_of(item) for q in queries for item in chaos.fake.select(q.text)} - set(chaos.poisoned)


def dead_post_id(dead: DeadPage, chaos: Chaos) -> str | None:
    try:
        return chaos.id_of(json.loads(dead.record))
    except (ValueError, KeyError, TypeError):
        return None  # a page-level dead letter holds a page, not a post


def assert_carriable(mention: Mention) -> None:
    for value in mention:
        if isinstance(value, str):
            value.encode("utf-8")
    assert all(-2 ** 63 <= v < 2 ** 63 for v in mention if isinstance(v, int) and not isinstance(v, bool))


@pytest.fixture
def secrets_env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


# One fault per run: (kind, times, page). `times` covers every try where a fault must persist. The loop
# needs a second page, which only the first run (no state yet) is sure to ask for; later faults hit the
# faulted query's first request of their run, whichever page that is.
SCHEDULE = [("loop", 100, 2), ("reset", 1, None), ("trickle", 1, None), ("html", 1, None), ("echo", ATTEMPTS, None),
            ("gzip_bomb", 1, None), ("reset", ATTEMPTS, None), ("trickle", ATTEMPTS, None), ("slow_headers", 1, None)]


def test_each_connector_survives_every_fault_run_after_run(secrets_env, caplog):
    """The four platforms at once, each in its own thread against its own fake: most of a run is waiting out
    the faults' timeouts, so running them side by side takes the time of the slowest, not of the four."""
    caplog.set_level(logging.DEBUG)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        runs = {platform: pool.submit(_survive_every_fault, platform)
                for platform in ("x", "mastodon", "reddit", "bluesky")}
    failed = [platform for platform, run in runs.items() if run.exception() is not None]
    for platform in failed:
        raise AssertionError(f"the {platform} connector failed (failed: {failed})") from runs[platform].exception()
    # No secret in anything a connector let out, nor in the logs.
    seen = "".join(run.result() for run in runs.values()) + caplog.text
    for secret in SECRETS:
        assert secret not in seen, secret


def _survive_every_fault(platform: str) -> str:
    """One platform's connector, run after run with a fault each; returns the text of all it let out."""
    chaos = make(platform, datetime.datetime.now(UTC))
    brands = parse_config(yaml.safe_load(BRANDS_YAML), "brands.yaml")
    policy = fast_policy(max_attempts=ATTEMPTS, max_body_bytes=8 * 1024 * 1024)
    with serve(chaos.fake) as fake:
        settings = ConnectorSettings(base_url=fake.url, http=policy, page_size=10 if platform == "x" else 5)
        credentials = chaos.cls.load_credentials(settings)
        conn = chaos.cls(settings, credentials)
        queries = [q for q in chaos.cls.queries(brands, settings, credentials) if q.kind == MENTIONS]
        expected = good_ids(chaos, queries)
        # Reddit's listing takes no bound: what lies past a looping cursor is skipped (tested below), not fetched.
        schedule = [s for s in SCHEDULE if not (platform == "reddit" and s[0] == "loop")]
        state: dict = {}
        mentions, dead, results, runs = [], [], [], 0
        for kind, times, page in schedule + [(None, 0, None)] * (MAX_RUNS - len(schedule)):
            if kind is None and not any(q.get("gaps") for q in state.get("queries", {}).values()):
                break
            if kind is not None:
                fake.inject(kind, page=page, query=chaos.fault_query, times=times)
            now = datetime.datetime.now(UTC)
            got = run_tasks(conn, plan_tasks(chaos.cls, queries, state, now=now))
            state = merge_state(state, got.results, connector=chaos.cls, now=now, run_id=f"r{runs}")
            mentions += got.mentions
            dead += got.dead
            results += got.results
            runs += 1
        # The faults did happen, and were recorded as the faulted query's gaps and dead letters.
        assert all(f.times == 0 for f in fake.faults if f.kind != "loop")
        reasons = " | ".join(r.reason for r in results)
        for words in ("connection broke", "deadline", "malformed page", "HTTP 502", "once inflated"):
            assert words in reasons
        assert platform == "reddit" or any(r.status == LOOPED for r in results)
        # No loss; every post that got through can be carried; the poisoned posts are kept somewhere.
        fetched = {m.id for m in mentions}
        assert expected <= fetched
        for mention in mentions:
            assert_carriable(mention)
        for post_id in chaos.poisoned:
            assert post_id in fetched | {dead_post_id(d, chaos) for d in dead}
        # The state is whole again, and the next run asks each query once: nothing is replayed.
        assert all(not q["gaps"] for q in state["queries"].values())
        before = len(fake.search_requests())
        now = datetime.datetime.now(UTC)
        last = run_tasks(conn, plan_tasks(chaos.cls, queries, state, now=now))
        assert all(r.status == COMPLETE for r in last.results)
        # Only a poisoned post inside the time floor's one-minute overlap can be met again (as it was).
        assert {dead_post_id(d, chaos) for d in last.dead} <= set(chaos.poisoned)
        assert len(fake.search_requests()) - before == len(queries)
        conn.close()
        assert not fake.overflow
    return repr(mentions + dead + results + last.mentions) + json.dumps(state)


def test_a_looping_reddit_listing_is_skipped_recorded_and_never_replayed(secrets_env):
    chaos = make("reddit", datetime.datetime.now(UTC))
    brands = parse_config(yaml.safe_load(BRANDS_YAML), "brands.yaml")
    with serve(chaos.fake) as fake:
        settings = ConnectorSettings(base_url=fake.url, http=fast_policy(max_attempts=ATTEMPTS), page_size=5)
        conn = RedditConnector(settings, RedditConnector.load_credentials(settings))
        (sprite,) = [q for q in RedditConnector.queries(brands, settings, {}) if "Sprite" in q.text]
        fake.inject("loop", page=2, query="Sprite", times=100)
        now = datetime.datetime.now(UTC)
        first = run_tasks(conn, plan_tasks(RedditConnector, [sprite], {}, now=now))
        assert first.results[0].status == LOOPED and len(fake.search_requests()) == 2
        state = merge_state({}, first.results, connector=RedditConnector, now=now)
        qs = state["queries"][sprite.key]
        (skipped,) = qs["skipped"]
        assert qs["gaps"] == [] and "sent cursor" in skipped["reason"] and skipped["cursor"] is None
        assert [d.step for d in first.dead if d.step == "fetch"] == ["fetch"]
        # Later runs start from the newest post read; the looping cursor is never asked for again.
        for _ in range(2):
            now = datetime.datetime.now(UTC)
            again = run_tasks(conn, plan_tasks(RedditConnector, [sprite], state, now=now))
            state = merge_state(state, again.results, connector=RedditConnector, now=now)
        asked_after = [r.params.get("after") for r in fake.search_requests()[2:]]
        assert len(asked_after) == 2 and asked_after == [None, None]
        assert len(state["queries"][sprite.key]["skipped"]) == 1
        conn.close()


# ---- the whole job, all four platforms at once ----

FLAGS = ["--page_size", "10", "--http_timeout", "2", "--http_max_attempts", str(ATTEMPTS), "--http_backoff", "0.01",
         "--http_backoff_cap", "0.05", "--max_rate_limit_wait", "2"]


def _table(out: pathlib.Path, name: str) -> list:
    return ds.dataset(out / name, format="parquet", partitioning="hive").to_table().to_pylist()


def test_the_job_survives_a_hostile_network_on_every_platform_and_leaks_no_secret(
        brands_file, tmp_path, secrets_env, capsys, caplog):
    caplog.set_level(logging.INFO)
    now = datetime.datetime.now(UTC)
    platforms = {name: make(name, now) for name in ("x", "mastodon", "reddit", "bluesky")}
    # Every kind of fault in the first run, each on its own query: (platform, query substring, kind, times, page).
    for name, query, kind, times, page in [
            ("x", "(Sprite", "loop", 100, 2), ("x", "(Fanta", "echo", ATTEMPTS, None),
            ("mastodon", "#sprite", "reset", ATTEMPTS, None), ("mastodon", "#cocacola", "html", 1, None),
            ("reddit", "Sprite", "trickle", ATTEMPTS, None),
            ("bluesky", "#Sprite", "gzip_bomb", 1, None), ("bluesky", "Coke", "reset", 1, None)]:
        platforms[name].fake.inject(kind, page=page, query=query, times=times)
    out = tmp_path / "out"
    with serve(platforms["x"].fake) as x, serve(platforms["mastodon"].fake) as mastodon, \
            serve(platforms["reddit"].fake) as reddit, serve(platforms["bluesky"].fake) as bluesky:
        argv = ["--config", str(brands_file), "--output_dir", str(out), "--source", "x,mastodon,reddit,bluesky",
                "--x_base_url", x.url, "--mastodon_instance", mastodon.url, "--reddit_base_url", reddit.url,
                "--bluesky_base_url", bluesky.url] + FLAGS
        codes, manifests, dead = [], [], []
        for _ in range(2):  # the faulted run, then the run that fills its gaps
            codes.append(main(argv))
            manifests.append(json.loads((out / "manifest.json").read_text()))
            dead += _table(out, "dead_letters")  # each run writes its own
    assert codes == [0, 0] and all(m["counts"]["balanced"] for m in manifests)
    assert manifests[0]["fetch"]["tasks_stopped"] == 6 and manifests[1]["fetch"]["tasks_stopped"] == 0
    assert all(f.times == 0 for c in platforms.values() for f in c.fake.faults if f.kind != "loop")
    reasons = " | ".join(d["reason"] for d in dead if d["step"] == "fetch")
    for words in ("sent cursor", "HTTP 502 Bad Gateway (Bearer ***)", "connection broke", "malformed page",
                  "deadline", "once inflated"):
        assert words in reasons

    # No loss and no duplicate over both runs; the poisoned posts are posts that can be carried, or dead letters.
    brands = parse_config(yaml.safe_load(BRANDS_YAML), "brands.yaml")
    posts = _table(out, "posts")
    keys = [(p["platform"], p["id"]) for p in posts]
    assert len(keys) == len(set(keys))
    dead_records = " ".join(d["record"] or "" for d in dead)
    for name, chaos in platforms.items():
        settings = ConnectorSettings(base_url="")
        queries = [q for q in chaos.cls.queries(brands, settings, chaos.cls.load_credentials(settings))
                   if q.kind == MENTIONS]
        fetched = {p["id"] for p in posts if p["platform"] == chaos.cls.platform}
        assert good_ids(chaos, queries) <= fetched, name
        for post_id in chaos.poisoned:
            assert post_id in fetched or post_id.rsplit("/", 1)[-1].replace("t3_", "") in dead_records, post_id
        state = json.loads((out / "_state" / f"{name}.json").read_text())
        assert all(not q["gaps"] for q in state["queries"].values()), name
        assert not chaos.fake.overflow, name

    # No secret anywhere: printed, logged, or in any file of the output (every table, the state, the manifest).
    printed = capsys.readouterr()
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.parent.name == "_state" for p in files)
    for secret in SECRETS:
        assert secret not in printed.out + printed.err + caplog.text, secret
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
