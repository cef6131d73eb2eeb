"""Mastodon, Reddit and Bluesky connectors against fake servers on 127.0.0.1 in each platform's real format."""

from __future__ import annotations

import datetime
import logging

import pytest
import yaml

from connectors.base import (COMPLETE, MENTIONS, STOPPED, ConnectorSettings, FetchTask, merge_state, plan_tasks)
from connectors.bluesky import BlueskyConnector
from connectors.mastodon import MastodonConnector, html_to_text, snowflake_from_time
from connectors.reddit import RedditConnector, build_search_queries
from schemas.config import parse_config
from tests.support.inputs import BRANDS_YAML
from tests.support.platforms import (UTC, FakeBluesky, FakeMastodon, FakeReddit, bluesky_dataset, fast_policy,
                                  mastodon_dataset, reddit_dataset, run_tasks, serve)

MASTODON_TOKEN = "mastodon-user-token-SECRET"


class Platform:
    """How a test drives one platform: its connector, fake, credentials, a query and ids."""

    def __init__(self, cls, make_fake, credentials, query, id_of):
        self.cls, self.make_fake, self.credentials, self.query, self.id_of = (
            cls, make_fake, credentials, query, id_of)


PLATFORMS = {
    "mastodon": Platform(MastodonConnector, lambda now, **kw: FakeMastodon(mastodon_dataset(now), token=MASTODON_TOKEN,
                                                                           **kw),
                         {"access_token": MASTODON_TOKEN}, "#Sprite", lambda s: s["id"]),
    "reddit": Platform(RedditConnector, lambda now, **kw: FakeReddit(reddit_dataset(now), **kw), {},
                       "Sprite OR Спрайт", lambda d: d["name"]),
    "bluesky": Platform(BlueskyConnector, lambda now, **kw: FakeBluesky(bluesky_dataset(now), **kw), {},
                        "Sprite", lambda p: p["uri"]),
}


@pytest.fixture
def brands():
    return parse_config(yaml.safe_load(BRANDS_YAML), "brands.yaml")


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request):
    spec = PLATFORMS[request.param]
    with serve(spec.make_fake(datetime.datetime.now(UTC))) as fake:
        spec.fake = fake
        yield spec
    assert not fake.overflow


def connector(spec, **kw):
    settings = ConnectorSettings(base_url=spec.fake.url, http=kw.pop("http", fast_policy()), page_size=10, **kw)
    return spec.cls(settings, spec.credentials)


def expected(spec, query=None):
    return [spec.id_of(item) for item in spec.fake.select(query or spec.query)]


def task(spec, **bounds):
    if not bounds:
        bounds = {"start_time": (datetime.datetime.now(UTC) - datetime.timedelta(days=2)).isoformat()}
    return FetchTask(spec.cls.name, f"mentions:sprite:{spec.query}", MENTIONS, "sprite", spec.query, **bounds)


# ---- shared behaviour, every platform ----

def test_every_page_is_fetched_once(platform):
    got = run_tasks(connector(platform), [task(platform)])
    ids = [m.id for m in got.mentions]
    assert ids == expected(platform) and len(ids) > 10
    assert all(platform.fake.served[i] == 1 for i in ids)
    assert got.results[0].status == COMPLETE and got.results[0].pages >= 2 and not got.dead
    for m in got.mentions:
        assert m.platform == platform.cls.name and m.connector == platform.cls.name
        assert m.created_at.utcoffset() == datetime.timedelta(0) and m.url and m.author_id
        assert m.likes is not None and m.replies is not None and m.impressions is None


def test_incremental_runs_fetch_what_is_new(platform):
    fake, now = platform.fake, datetime.datetime.now(UTC)
    items = {"mastodon": "statuses", "reddit": "things", "bluesky": "posts"}[platform.cls.name]
    everything = list(getattr(fake, items))
    setattr(fake, items, everything[3:])  # the 3 newest posts appear only after the first run
    conn = connector(platform)
    queries = [q for q in platform.cls.queries(parse_config(yaml.safe_load(BRANDS_YAML)), conn.settings,
                                               platform.credentials) if q.text == platform.query]
    first = run_tasks(conn, plan_tasks(platform.cls, queries, {}, now=now))
    state = merge_state({}, first.results, connector=platform.cls, now=now, run_id="r1")
    assert state["queries"][queries[0].key]["since"]

    setattr(fake, items, everything)
    second = run_tasks(conn, plan_tasks(platform.cls, queries, state, now=now))
    new = set(expected(platform)) - {m.id for m in first.mentions}
    assert len(new) >= 1 and new <= {m.id for m in second.mentions}
    again = [m.id for m in second.mentions if m.id not in new]
    if platform.cls.position_kind == "id":
        assert not again  # since_id: not one post twice
        assert fake.search_requests()[-1].params["since_id"] == state["queries"][queries[0].key]["since"]["since_id"]
    else:
        assert len(again) <= 1  # the time floor overlaps by a minute; the pipeline's dedupe drops it


def test_a_short_rate_limit_is_waited_out(platform, caplog):
    caplog.set_level(logging.WARNING)
    platform.fake.inject("rate_limit", page=2, reset_in=1)
    got = run_tasks(connector(platform), [task(platform)])
    assert got.results[0].status == COMPLETE and [m.id for m in got.mentions] == expected(platform)
    assert "rate limited; waiting" in caplog.text  # the platform's own reset header was understood


def test_a_long_rate_limit_stops_and_the_rerun_finishes(platform):
    platform.fake.inject("rate_limit", page=2, reset_in=3600)
    conn, now = connector(platform), datetime.datetime.now(UTC)
    queries = [q for q in platform.cls.queries(parse_config(yaml.safe_load(BRANDS_YAML)), conn.settings,
                                               platform.credentials) if q.text == platform.query]
    first = run_tasks(conn, plan_tasks(platform.cls, queries, {}, now=now))
    assert first.results[0].status == STOPPED and "rate limited until" in first.results[0].reason
    state = merge_state({}, first.results, connector=platform.cls, now=now, run_id="r1")
    assert len(state["queries"][queries[0].key]["gaps"]) == 1
    second = run_tasks(conn, plan_tasks(platform.cls, queries, state, now=now))
    assert all(r.status == COMPLETE for r in second.results)
    assert {m.id for m in first.mentions + second.mentions} == set(expected(platform))


def test_server_errors_and_slow_answers_are_retried(platform):
    platform.fake.inject("status", page=1, status=500, times=2)
    platform.fake.inject("slow", page=2, seconds=3.0)
    got = run_tasks(connector(platform), [task(platform)])
    assert got.results[0].status == COMPLETE and [m.id for m in got.mentions] == expected(platform)


def test_a_malformed_page_is_a_dead_letter_with_its_cursor(platform):
    platform.fake.inject("malformed", page=2)
    got = run_tasks(connector(platform), [task(platform)])
    (dead,) = got.dead
    assert dead.step == "fetch" and dead.reason.startswith("malformed page")
    assert platform.query in dead.source and "cursor=-" not in dead.source
    assert got.results[0].status == STOPPED and len(got.mentions) == 10
    assert MASTODON_TOKEN not in dead.record


# ---- Mastodon ----

def test_mastodon_fields_html_and_search_needs_a_token(brands):
    now = datetime.datetime.now(UTC)
    with serve(FakeMastodon(mastodon_dataset(now), token=MASTODON_TOKEN)) as fake:
        settings = ConnectorSettings(base_url=fake.url, http=fast_policy(), page_size=40)
        assert {q.text for q in MastodonConnector.queries(brands, settings, {})} == {"#Sprite", "#CocaCola"}
        with_token = {q.text for q in MastodonConnector.queries(brands, settings, {"access_token": "t"})}
        assert {"Sprite", "Coca-Cola", "Fanta"} <= with_token
        got = run_tasks(MastodonConnector(settings, {"access_token": MASTODON_TOKEN}),
                        [FetchTask("mastodon", "k", MENTIONS, "cocacola", "Coca-Cola",
                                   start_time=(now - datetime.timedelta(days=2)).isoformat())])
        assert [m.id for m in got.mentions] == [s["id"] for s in fake.select("Coca-Cola")]
        first = got.mentions[0]
        status = fake.select("Coca-Cola")[0]
        assert "#Sprite" in first.text and "<" not in first.text  # tags survive as text for the matcher
        assert (first.likes, first.reposts, first.replies, first.quotes) == (5, 2, 1, None)
        assert first.author_followers == status["account"]["followers_count"]
        assert first.author_handle == status["account"]["acct"] and first.url == status["url"]
        assert fake.search_requests()[0].params["type"] == "statuses"
    with pytest.raises(ValueError, match="no hashtags"):
        MastodonConnector.queries(parse_config({"brands": [{"id": "a", "names": ["A"]}]}), settings, {})


def test_mastodon_time_bounds_become_snowflake_ids():
    now = datetime.datetime.now(UTC)
    with serve(FakeMastodon(mastodon_dataset(now))) as fake:
        start, end = now - datetime.timedelta(hours=6), now - datetime.timedelta(hours=2)
        settings = ConnectorSettings(base_url=fake.url, http=fast_policy(), page_size=40)
        got = run_tasks(MastodonConnector(settings), [FetchTask("mastodon", "k", MENTIONS, "sprite", "#Sprite",
                                                                start_time=start.isoformat(),
                                                                end_time=end.isoformat())])
        params = fake.search_requests()[0].params
        assert int(params["max_id"]) == snowflake_from_time(end)
        assert int(params["since_id"]) == snowflake_from_time(start) - 1
        assert got.mentions and all(start <= m.created_at < end for m in got.mentions)


def test_html_to_text():
    assert html_to_text('<p>Hi <span class="h-card"><a href="x">@<span>Sprite</span></a></span> &amp; '
                        '<a href="t" rel="tag">#<span>Soda</span></a><br>line</p><p>next</p>') == \
        "Hi @Sprite & #Soda\nline\n\nnext"


# ---- Reddit ----

def test_reddit_queries_fields_and_client_side_bounds(brands):
    assert build_search_queries(brands.brands[1]) == ['"Coca-Cola" OR Coke OR "Кока-Кола" OR "Koka-Kola"']
    assert all(len(q) <= 40 for q in build_search_queries(brands.brands[1], max_length=40))
    now = datetime.datetime.now(UTC)
    with serve(FakeReddit(reddit_dataset(now))) as fake:
        settings = ConnectorSettings(base_url=fake.url, http=fast_policy(), page_size=10)
        start, end = now - datetime.timedelta(hours=10), now - datetime.timedelta(hours=4)
        tasks = plan_tasks(RedditConnector, RedditConnector.queries(brands, settings, {}), {}, now=now,
                           start=start, end=end, slice_hours=1)
        assert len(tasks) == 3  # no time-range filter in the API: one task per query, not per slice
        got = run_tasks(RedditConnector(settings), tasks)
        assert got.mentions and all(start <= m.created_at < end for m in got.mentions)
        post = next(m for m in got.mentions if m.id == "t3_1ab007")
        raw = next(d for d in fake.select("Sprite") if d["name"] == "t3_1ab007")
        assert post.text == f"{raw['title']}\n\n{raw['selftext']}"
        assert (post.likes, post.replies, post.reposts, post.quotes, post.author_followers) == (7, 3, 0, None, None)
        assert post.url.startswith("https://www.reddit.com/r/soda/comments/1ab007")
        params = fake.search_requests()[0].params
        assert (params["sort"], params["type"], params["raw_json"]) == ("new", "link", "1")


def test_reddit_with_a_token_uses_oauth(monkeypatch):
    monkeypatch.setenv("REDDIT_ACCESS_TOKEN", "reddit-secret")
    creds = RedditConnector.load_credentials(ConnectorSettings(base_url=""))
    assert RedditConnector(ConnectorSettings(base_url=""), creds).base_url == "https://oauth.reddit.com"
    now = datetime.datetime.now(UTC)
    with serve(FakeReddit(reddit_dataset(now), token="reddit-secret")) as fake:
        got = run_tasks(RedditConnector(ConnectorSettings(base_url=fake.url, http=fast_policy()), creds),
                        [FetchTask("reddit", "k", MENTIONS, "fanta", "Fanta")])
        assert got.mentions and not got.dead


# ---- Bluesky ----

def test_bluesky_fields_bounds_and_langs(brands):
    now = datetime.datetime.now(UTC)
    settings = ConnectorSettings(base_url="", langs=("en", "ru"))
    texts = [q.text for q in BlueskyConnector.queries(brands, settings, {})]
    assert "Sprite lang:en" in texts and "Sprite lang:ru" in texts and '"Coca-Cola" lang:en' in texts
    with serve(FakeBluesky(bluesky_dataset(now))) as fake:
        start, end = now - datetime.timedelta(hours=5), now - datetime.timedelta(hours=1)
        conn = BlueskyConnector(ConnectorSettings(base_url=fake.url, http=fast_policy(), page_size=10))
        got = run_tasks(conn, [FetchTask("bluesky", "k", MENTIONS, "sprite", "Sprite", start_time=start.isoformat(),
                                         end_time=end.isoformat())])
        params = fake.search_requests()[0].params
        assert params["sort"] == "latest" and params["since"].endswith("Z") and params["until"].endswith("Z")
        assert got.mentions and all(start - datetime.timedelta(seconds=5) <= m.created_at < end
                                    for m in got.mentions)
        everything = run_tasks(conn, [FetchTask("bluesky", "k", MENTIONS, "sprite", "Sprite")]).mentions
        reply = next(m for m in everything if m.text.endswith("(3)"))
        assert reply.is_reply and reply.reply_to == reply.conversation_id == "at://did:plc:root/app.bsky.feed.post/r0"
        quote = next(m for m in everything if m.text.endswith("(7)"))
        assert quote.is_quote and quote.quote_of == "at://did:plc:q/app.bsky.feed.post/q0"
        assert quote.url.startswith("https://bsky.app/profile/carol.bsky.social/post/")
        assert (quote.likes, quote.reposts, quote.replies, quote.quotes) == (7, 2, 1, 0)


def test_bluesky_session_with_an_app_password(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("BLUESKY_HANDLE", "me.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "app-password-SECRET")
    creds = BlueskyConnector.load_credentials(ConnectorSettings(base_url=""))
    now = datetime.datetime.now(UTC)
    with serve(FakeBluesky(bluesky_dataset(now), password="app-password-SECRET")) as fake:
        conn = BlueskyConnector(ConnectorSettings(base_url=fake.url, http=fast_policy()), creds)
        got = run_tasks(conn, [FetchTask("bluesky", "k", MENTIONS, "fanta", "Fanta")])
        assert got.mentions and fake.sessions == 1
        fake.sessions += 1  # the server forgets the session: the connector renews it once
        got = run_tasks(conn, [FetchTask("bluesky", "k", MENTIONS, "fanta", "Fanta")])
        assert got.mentions and not got.dead and fake.sessions == 3
    assert "app-password-SECRET" not in caplog.text
    monkeypatch.delenv("BLUESKY_APP_PASSWORD")
    with pytest.raises(ValueError, match="both"):
        BlueskyConnector.load_credentials(ConnectorSettings(base_url=""))
