"""The X connector through tweepy against a fake X API v2 on 127.0.0.1: queries, fields, paging, faults, secrecy."""

from __future__ import annotations

import datetime
import json
import logging

import pytest
import tweepy
import yaml

from connectors.base import (ACCOUNT, BRAND_REPLIES, COMPLETE, MENTIONS, STOPPED, ConnectorSettings, FetchTask,
                             merge_state, plan_tasks)
from connectors.x import XConnector, build_search_queries, snowflake_time
from schemas.config import Brand, parse_config
from tests.support.inputs import BRANDS_YAML
from tests.support.platforms import TOKEN, UTC, FakeX, fast_policy, run_tasks, serve, x_dataset, x_id, x_tweet

SPRITE_QUERY = "(Sprite OR Спрайт OR @Sprite OR #Sprite) -is:retweet"


@pytest.fixture
def brands():
    return parse_config(yaml.safe_load(BRANDS_YAML), "brands.yaml")


@pytest.fixture
def fake():
    tweets, users = x_dataset(datetime.datetime.now(UTC))
    with serve(FakeX(tweets, users)) as server:
        yield server
    assert not server.overflow


def connector(fake, **kw) -> XConnector:
    policy = kw.pop("http", fast_policy())
    settings = ConnectorSettings(base_url=fake.url, http=policy, page_size=10, **kw)
    return XConnector(settings, {"bearer_token": TOKEN})


def task(query=SPRITE_QUERY, kind=MENTIONS, **bounds) -> FetchTask:
    if not bounds:
        bounds = {"start_time": (datetime.datetime.now(UTC) - datetime.timedelta(days=1)).isoformat()}
    return FetchTask("x", f"{kind}:sprite:{query}", kind, "sprite", query, **bounds)


def expected_ids(fake, query=SPRITE_QUERY):
    return [t["id"] for t in fake.select(query)]


# ---- queries ----

def test_queries_use_keywords_exact_phrases_handles_and_hashtags(brands):
    by_brand = {b.id: b for b in brands.brands}
    assert build_search_queries(by_brand["sprite"]) == [SPRITE_QUERY]
    assert build_search_queries(by_brand["cocacola"]) == [
        '("Coca-Cola" OR Coke OR "Кока-Кола" OR "Koka-Kola" OR @CocaCola OR #CocaCola) -is:retweet']
    assert build_search_queries(by_brand["fanta"], langs=("en",), include_reposts=True) == [
        "(Fanta OR Фанта) lang:en"]
    assert build_search_queries(by_brand["fanta"], langs=("hr", "sr")) == [
        "(Fanta OR Фанта) -is:retweet (lang:hr OR lang:sr)"]


def test_queries_also_fetch_the_brand_accounts_replies_and_followers(brands):
    queries = XConnector.queries(brands, ConnectorSettings(base_url=""), {"bearer_token": "t"})
    kinds = {(q.brand_id, q.kind, q.text) for q in queries}
    assert ("sprite", BRAND_REPLIES, "from:Sprite is:reply") in kinds
    assert ("sprite", ACCOUNT, "Sprite") in kinds
    assert ("fanta", MENTIONS, "(Fanta OR Фанта) -is:retweet") in kinds
    assert not any(q.kind == ACCOUNT and q.brand_id == "fanta" for q in queries)  # no handle, no account


def test_a_brand_whose_terms_exceed_the_limit_gets_several_queries():
    names = tuple(f"Brandname{i:03d} Extra" for i in range(60))
    brand = Brand(id="big", names=names, handles=("BigCo",), hashtags=("BigCo",))
    queries = build_search_queries(brand, max_length=512)
    assert len(queries) > 1
    assert all(len(q) <= 512 and q.endswith(" -is:retweet") for q in queries)
    found = [t for q in queries for t in q.replace(" -is:retweet", "").strip("()").split(" OR ")]
    assert found == [f'"{n}"' for n in names] + ["@BigCo", "#BigCo"]  # every term once, in order


def test_a_term_longer_than_the_limit_is_an_error():
    with pytest.raises(ValueError, match="longer than 30 characters"):
        build_search_queries(Brand(id="b", names=("a very long brand name indeed here",)), max_length=30)


# ---- fetching ----

def test_every_page_is_fetched_once_with_the_fields_the_metrics_need(fake):
    got = run_tasks(connector(fake), [task()])
    ids = [m.id for m in got.mentions]
    assert ids == expected_ids(fake) and len(ids) > 10  # several pages, newest first, the retweet left out
    assert all(fake.served[i] == 1 for i in ids)
    assert not got.dead and got.results[0].status == COMPLETE and got.results[0].pages == 2

    first = fake.search_requests()[0]
    assert first.path == "/2/tweets/search/recent"
    assert first.params["query"] == SPRITE_QUERY and first.params["max_results"] == "10"
    for name in ("created_at", "lang", "public_metrics", "conversation_id", "referenced_tweets",
                 "in_reply_to_user_id", "entities"):
        assert name in first.params["tweet.fields"].split(",")
    assert first.params["expansions"] == "author_id"
    assert set(first.params["user.fields"].split(",")) == {"public_metrics", "username"}
    assert "Tweepy" in first.headers["User-Agent"]  # tweepy built the request

    complaint = next(m for m in got.mentions if m.text.startswith("@Sprite your can"))
    assert complaint.platform == "x" and complaint.connector == "x" and complaint.query == SPRITE_QUERY
    assert complaint.created_at.tzinfo is not None and complaint.created_at.utcoffset().total_seconds() == 0
    assert (complaint.likes, complaint.reposts, complaint.replies, complaint.quotes) == (3, 1, 2, 0)
    assert (complaint.impressions, complaint.bookmarks) == (120, 1)
    assert complaint.author_handle == "alice" and complaint.author_followers == 1500
    assert complaint.url == f"https://x.com/alice/status/{complaint.id}"
    assert complaint.is_repost is False and complaint.is_reply is False and complaint.conversation_id == complaint.id
    assert complaint.fetched_at is not None
    assert any(m.lang == "ru" for m in got.mentions)


def test_unreported_counts_stay_unknown_and_references_are_kept(fake):
    now = datetime.datetime.now(UTC)
    quoted = fake.tweets[0]["id"]
    extra = dict(fake.tweets[0], id=x_id(now - datetime.timedelta(minutes=1), 77), text="Sprite quoted",
                 public_metrics={"retweet_count": 0, "reply_count": 0, "like_count": 2, "quote_count": 0},
                 referenced_tweets=[{"type": "quoted", "id": quoted}], lang="und",
                 note_tweet={"text": "Sprite quoted, and the long version of the post"})
    fake.tweets.insert(0, extra)
    got = run_tasks(connector(fake), [task()])
    post = next(m for m in got.mentions if m.id == extra["id"])
    assert post.impressions is None and post.bookmarks is None and post.likes == 2  # absent != 0
    assert post.is_quote is True and post.quote_of == quoted and post.lang is None
    assert post.text == "Sprite quoted, and the long version of the post"


def test_since_id_is_honoured(fake):
    all_ids = expected_ids(fake)
    floor = all_ids[4]
    got = run_tasks(connector(fake), [task(since_id=floor)])
    assert [m.id for m in got.mentions] == all_ids[:4]
    assert fake.search_requests()[0].params["since_id"] == floor
    assert got.results[0].newest == all_ids[0]


def test_a_since_id_older_than_recent_search_becomes_its_start_time(fake):
    old = x_id(datetime.datetime.now(UTC) - datetime.timedelta(days=9), 1)
    got = run_tasks(connector(fake), [task(since_id=old)])
    params = fake.search_requests()[0].params
    assert "since_id" not in params and "start_time" in params
    assert [m.id for m in got.mentions] == expected_ids(fake)


def test_a_range_older_than_recent_search_is_skipped_not_failed(fake):
    end = datetime.datetime.now(UTC) - datetime.timedelta(days=8)
    got = run_tasks(connector(fake), [task(start_time=(end - datetime.timedelta(days=1)).isoformat(),
                                           end_time=end.isoformat())])
    assert got.results[0].status == COMPLETE and "x_search all" in got.results[0].reason
    assert not fake.requests


def test_full_archive_search_uses_its_endpoint(fake):
    got = run_tasks(connector(fake, search="all", http=fast_policy(min_interval_s=0.01)), [task()])
    assert {r.path for r in fake.search_requests()} == {"/2/tweets/search/all"}
    assert [m.id for m in got.mentions] == expected_ids(fake)


def test_a_short_rate_limit_is_waited_out(fake):
    fake.inject("rate_limit", page=2, reset_in=1)
    got = run_tasks(connector(fake), [task()])
    assert got.results[0].status == COMPLETE
    assert [m.id for m in got.mentions] == expected_ids(fake)
    assert len(fake.search_requests()) == 3  # page 1, 429, page 2 again


def test_a_long_rate_limit_stops_cleanly_and_the_rerun_finishes_the_job(fake):
    fake.inject("rate_limit", page=2, reset_in=3600)
    conn = connector(fake)
    now = datetime.datetime.now(UTC)
    queries = [q for q in XConnector.queries(parse_config(yaml.safe_load(BRANDS_YAML)), conn.settings, {})
               if q.text == SPRITE_QUERY]
    first = run_tasks(conn, plan_tasks(XConnector, queries, {}, now=now))
    result = first.results[0]
    assert result.status == STOPPED and "rate limited until" in result.reason and not first.dead
    assert result.cursor == "b2610" and result.pages == 1
    state = merge_state({}, first.results, connector=XConnector, now=now, run_id="r1")
    qs = state["queries"][queries[0].key]
    assert qs["since"] == {"since_id": expected_ids(fake)[0]}
    assert qs["gaps"][0]["until_id"] == result.oldest and "rate limited" in qs["gaps"][0]["reason"]

    second = run_tasks(conn, plan_tasks(XConnector, queries, state, now=now))
    assert {t.origin for t in (r.task for r in second.results)} == {"gap", "new"}
    assert all(r.status == COMPLETE for r in second.results)
    fetched = [m.id for m in first.mentions + second.mentions]
    assert sorted(fetched) == sorted(expected_ids(fake))  # nothing lost, nothing twice
    assert all(n == 1 for n in fake.served.values())
    final = merge_state(state, second.results, connector=XConnector, now=now, run_id="r2")
    assert final["queries"][queries[0].key]["gaps"] == []


def test_server_errors_are_retried_with_backoff(fake):
    fake.inject("status", page=1, status=503, times=2)
    got = run_tasks(connector(fake), [task()])
    assert got.results[0].status == COMPLETE and not got.dead
    assert [m.id for m in got.mentions] == expected_ids(fake)


def test_a_page_that_keeps_failing_goes_to_dead_letters_with_query_and_cursor(fake):
    fake.inject("status", page=2, status=502, times=10)
    got = run_tasks(connector(fake), [task()])
    assert len(got.mentions) == 10 and got.results[0].status == STOPPED
    (dead,) = got.dead
    assert dead.step == "fetch" and "HTTP 502" in dead.reason and "3 times" in dead.reason
    assert SPRITE_QUERY in dead.source and "cursor=b2610" in dead.source


def test_a_slow_answer_times_out_and_is_retried(fake):
    fake.inject("slow", page=2, seconds=3.0)
    got = run_tasks(connector(fake), [task()])
    assert got.results[0].status == COMPLETE
    assert [m.id for m in got.mentions] == expected_ids(fake)


def test_a_malformed_page_is_a_dead_letter_and_the_token_never_leaks(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.inject("malformed", page=2)  # the fake echoes the Authorization header into the broken page
    conn = connector(fake)
    got = run_tasks(conn, [task()])
    (dead,) = got.dead
    assert dead.reason.startswith("malformed page") and "cursor=b2610" in dead.source
    assert "Bearer ***" in dead.record and TOKEN not in dead.record
    assert got.results[0].status == STOPPED and got.results[0].cursor == "b2610"
    assert caplog.records and TOKEN not in caplog.text
    assert TOKEN not in repr(conn.client) and TOKEN not in repr(got)


def test_a_wrong_token_is_a_dead_letter_without_the_token(fake, caplog):
    caplog.set_level(logging.DEBUG)
    settings = ConnectorSettings(base_url=fake.url, http=fast_policy(), page_size=10)
    got = run_tasks(XConnector(settings, {"bearer_token": "wrong-secret-token"}), [task()])
    (dead,) = got.dead
    assert "HTTP 401" in dead.reason and "wrong-secret-token" not in repr(got) + caplog.text
    assert len(fake.requests) == 1  # a 4xx other than 429 is not retried


def test_the_brand_accounts_replies_and_follower_count(fake):
    reply_task = task("from:Sprite is:reply", BRAND_REPLIES)
    account_task = FetchTask("x", "account:sprite:Sprite", ACCOUNT, "sprite", "Sprite")
    got = run_tasks(connector(fake), [reply_task, account_task])
    complaint = next(t for t in fake.tweets if t["text"].startswith("@Sprite your can"))
    assert len(got.replies) == 2 and not got.mentions
    for reply in got.replies:
        assert (reply.brand_id, reply.handle, reply.platform) == ("sprite", "Sprite", "x")
        assert reply.in_reply_to_id == complaint["id"] and reply.conversation_id == complaint["id"]
        assert reply.in_reply_to_user_id == complaint["author_id"] and reply.created_at.tzinfo is not None
    (snapshot,) = got.snapshots
    assert (snapshot.handle, snapshot.account_id, snapshot.followers, snapshot.posts) == ("Sprite", "900", 250_000,
                                                                                          3400)


def test_the_client_is_tweepy_pointed_at_the_configured_base_url(fake):
    conn = connector(fake)
    assert isinstance(conn.client, tweepy.Client)
    response = conn.client.search_recent_tweets(SPRITE_QUERY, max_results=10)
    assert response.status_code == 200 and fake.requests[-1].path == "/2/tweets/search/recent"


def test_the_token_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    with pytest.raises(ValueError, match="X_BEARER_TOKEN"):
        XConnector.load_credentials(ConnectorSettings(base_url=""))
    monkeypatch.setenv("X_BEARER_TOKEN", " from-env \n")
    assert XConnector.load_credentials(ConnectorSettings(base_url="")) == {"bearer_token": "from-env"}
    secret = tmp_path / "x.token"
    secret.write_text("from-file\n")
    assert XConnector.load_credentials(ConnectorSettings(base_url="", token_file=str(secret))) == {
        "bearer_token": "from-file"}
    secret.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        XConnector.load_credentials(ConnectorSettings(base_url="", token_file=str(secret)))


def test_snowflake_time_matches_the_ids_the_fake_makes():
    ts = datetime.datetime(2026, 9, 7, 10, 0, tzinfo=UTC)
    assert abs((snowflake_time(x_id(ts, 5)) - ts).total_seconds()) < 0.002


def test_an_unknown_account_is_a_dead_letter(fake):
    got = run_tasks(connector(fake), [FetchTask("x", "account:b:NoSuchBrand", ACCOUNT, "b", "NoSuchBrand")])
    (dead,) = got.dead
    assert "Could not find user" in dead.reason and dead.source == "x:account:NoSuchBrand"
    assert got.results[0].status == STOPPED and not got.snapshots


# ---- a hostile network: resets, trickles, bombs, loops, echoes, poisoned posts ----

def _sprite_state(fake, conn, results):
    return merge_state({}, results, connector=XConnector, now=datetime.datetime.now(UTC))["queries"]


def test_a_reset_mid_body_is_retried_like_a_server_error(fake):
    fake.inject("reset", page=2)  # headers and half the page, then a TCP reset
    got = run_tasks(connector(fake), [task()])
    assert got.results[0].status == COMPLETE and not got.dead
    assert [m.id for m in got.mentions] == expected_ids(fake)


def test_a_reset_that_persists_is_the_querys_gap_and_a_dead_letter(fake):
    fake.inject("reset", page=2, times=3)
    got = run_tasks(connector(fake), [task()])
    result = got.results[0]
    assert result.status == STOPPED and "connection broke" in result.reason and "3 tries" in result.reason
    (dead,) = got.dead
    assert dead.step == "fetch" and "cursor=b2610" in dead.source and len(got.mentions) == 10
    (qs,) = _sprite_state(fake, None, got.results).values()
    assert qs["gaps"][0]["until_id"] == result.oldest and "connection broke" in qs["gaps"][0]["reason"]


def test_a_trickling_answer_ends_at_the_deadline_of_each_try(fake):
    # 40 bytes every 0.25 s of a body that never ends: every read succeeds, only the deadline stops it.
    fake.inject("trickle", page=2, times=2)
    got = run_tasks(connector(fake, http=fast_policy(max_attempts=2)), [task()])
    result = got.results[0]
    assert result.status == STOPPED and "within the 2 s deadline" in result.reason and "2 tries" in result.reason
    assert len(got.mentions) == 10 and len(fake.search_requests()) == 3


def test_a_server_trickling_its_headers_ends_at_the_deadline_of_each_try(fake):
    fake.inject("slow_headers", page=2, times=2)  # a header line that grows by a byte every 0.25 s
    got = run_tasks(connector(fake, http=fast_policy(max_attempts=2)), [task()])
    result = got.results[0]
    assert result.status == STOPPED and "did not answer in full within the 2 s deadline" in result.reason
    assert len(got.mentions) == 10 and len(fake.search_requests()) == 3
    # The connection the watchdog shut down is not reused: the next request is answered normally.
    assert [m.id for m in run_tasks(connector(fake), [task()]).mentions] == expected_ids(fake)


def test_a_gzip_bomb_is_refused_at_the_body_cap(fake):
    fake.inject("gzip_bomb", page=2)  # ~100 KB that inflates to 100 MiB
    # A long deadline: the cap, not a timeout on a loaded machine (then retried), must stop the try.
    got = run_tasks(connector(fake, http=fast_policy(max_body_bytes=4 * 1024 * 1024, timeout_s=60.0)), [task()])
    result = got.results[0]
    assert result.status == STOPPED and "larger than 4194304 bytes once inflated" in result.reason
    assert len(got.mentions) == 10 and len(fake.search_requests()) == 2  # refused, not retried


def test_a_gzip_body_is_read_as_json(fake):
    import gzip
    import json as jsonlib

    body = {"data": [{"id": expected_ids(fake)[0], "text": "Sprite zipped", "created_at": fake.tweets[0]["created_at"],
                      "author_id": "101"}], "meta": {"result_count": 1}}
    fake.route = lambda method, path: lambda *a: (200, {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                                                  gzip.compress(jsonlib.dumps(body).encode()), 0.0)
    got = run_tasks(connector(fake), [task()])
    assert [m.text for m in got.mentions] == ["Sprite zipped"] and got.results[0].status == COMPLETE


def test_a_token_echoed_in_the_reason_phrase_and_body_never_leaves_the_connector(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.inject("echo", page=2, times=3)  # 502 "Bad Gateway (Bearer <token>)", the token astride character 2,000
    conn = connector(fake)
    got = run_tasks(conn, [task()])
    (dead,) = got.dead
    assert "HTTP 502 Bad Gateway (Bearer ***)" in dead.reason and "Authorization: Bearer ***" in dead.record
    state = merge_state({}, got.results, connector=XConnector, now=datetime.datetime.now(UTC))
    leaked = repr(got) + caplog.text + json.dumps(state)
    for part in (TOKEN, TOKEN[:12], TOKEN[-12:]):
        assert part not in leaked


def test_a_repeating_next_token_ends_the_task_and_is_not_replayed(fake):
    fake.inject("loop", page=2, times=100)  # page 2 names itself as the next page, forever
    conn = connector(fake)
    queries = [q for q in XConnector.queries(parse_config(yaml.safe_load(BRANDS_YAML)), conn.settings, {})
               if q.text == SPRITE_QUERY]
    now = datetime.datetime.now(UTC)
    first = run_tasks(conn, plan_tasks(XConnector, queries, {}, now=now))
    assert len(fake.search_requests()) == 2 and first.results[0].status == "looped"
    assert [d.step for d in first.dead] == ["fetch"] and "sent cursor 'b2610' again" in first.dead[0].reason
    state = merge_state({}, first.results, connector=XConnector, now=now)
    qs = state["queries"][queries[0].key]
    assert qs["since"] == {"since_id": expected_ids(fake)[0]} and qs["gaps"][0]["cursor"] is None
    # The next run asks below the oldest post read (a new request), and the loop does not come back.
    fake.faults.clear()
    second = run_tasks(conn, plan_tasks(XConnector, queries, state, now=now))
    gap_requests = [r.params for r in fake.search_requests()[2:] if "until_id" in r.params]
    assert gap_requests and all("next_token" not in p or p["next_token"] != "b2610" for p in gap_requests)
    assert sorted({m.id for m in first.mentions + second.mentions}) == sorted(expected_ids(fake))
    assert merge_state(state, second.results, connector=XConnector, now=now)["queries"][queries[0].key]["gaps"] == []


def test_a_poisoned_post_does_not_block_the_connector_and_its_position_moves_past_it(fake):
    now = datetime.datetime.now(UTC)
    surrogate = x_tweet(x_id(now - datetime.timedelta(minutes=1), 900), "Sprite \ud83d half an emoji",
                        now - datetime.timedelta(minutes=1), "101")
    huge = x_tweet(x_id(now - datetime.timedelta(minutes=2), 901), "Sprite with too many likes",
                   now - datetime.timedelta(minutes=2), "101",
                   metrics={"like_count": 2 ** 64, "retweet_count": 0, "reply_count": 0, "quote_count": 0})
    fake.tweets[:0] = [surrogate, huge]
    got = run_tasks(connector(fake), [task()])
    for mention in got.mentions:  # whatever got through can be carried by every coder and file
        mention.text.encode("utf-8")
        assert all(-2 ** 63 <= v < 2 ** 63 for v in mention if isinstance(v, int))
    dead_ids = {json.loads(d.record)["id"] for d in got.dead}
    for post in (surrogate, huge):  # each is a valid post or a dead letter holding it, never an exception
        assert post["id"] in {m.id for m in got.mentions} | dead_ids
    assert {m.id for m in got.mentions} >= set(expected_ids(fake)) - {surrogate["id"], huge["id"]}
    assert got.results[0].status == COMPLETE and got.results[0].newest == surrogate["id"]


def test_a_token_file_with_a_line_break_is_refused_without_showing_the_token(tmp_path, monkeypatch):
    secret = tmp_path / "x.token"
    secret.write_text(TOKEN[:20] + "\n" + TOKEN[20:] + "\n")
    with pytest.raises(ValueError) as info:
        XConnector.load_credentials(ConnectorSettings(base_url="", token_file=str(secret)))
    assert str(info.value).startswith("--x_bearer_token_file:") and "line break" in str(info.value)
    assert TOKEN[:20] not in str(info.value) and TOKEN[20:] not in str(info.value)
    monkeypatch.setenv("X_BEARER_TOKEN", "two words")
    with pytest.raises(ValueError, match=r"^\$X_BEARER_TOKEN: .*whitespace"):
        XConnector.load_credentials(ConnectorSettings(base_url=""))
