"""The shared connector machinery: rate-limit headers, backoff, redaction, the paging loop, planning and state."""

from __future__ import annotations

import datetime
import email.utils
import json
import typing

import pytest

import connectors.base
from connectors.base import (ACCOUNT, COMPLETE, LOOPED, MENTIONS, POSITION_TIME, STOPPED, Connector,
                             ConnectorSettings, DeadPage, FetchTask, MalformedPage, Page, Query, TaskResult,
                             check_carriable, connector_class, connector_names, iso, merge_state, plan_tasks,
                             time_slices)
from connectors.http import HttpClient, HttpPolicy, backoff_seconds, check_secret, rate_limit_reset, redact
from schemas.records import (ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA, BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA,
                             AccountSnapshot, BrandReply, Mention)
from schemas.tables import TABLES

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
T0 = NOW.timestamp()


# ---- connectors.http ----

@pytest.mark.parametrize("headers, expected", [
    ({"x-rate-limit-reset": str(int(T0) + 60)}, T0 + 60),                    # X: epoch seconds
    ({"X-RateLimit-Reset": iso(NOW + datetime.timedelta(minutes=5))}, T0 + 300),  # Mastodon: ISO time
    ({"x-ratelimit-reset": "42"}, T0 + 42),                                    # Reddit: seconds from now
    ({"ratelimit-reset": str(int(T0) + 90)}, T0 + 90),                         # Bluesky: epoch seconds
    ({"Retry-After": "7"}, T0 + 7),
    ({"Retry-After": email.utils.format_datetime(NOW + datetime.timedelta(seconds=30), usegmt=True)}, T0 + 30),
    ({"x-rate-limit-remaining": "0"}, None),
])
def test_rate_limit_reset_reads_every_platforms_header(headers, expected):
    got = rate_limit_reset(headers, T0)
    assert got == pytest.approx(expected, abs=1) if expected is not None else got is None


def test_backoff_grows_exponentially_and_is_capped():
    lows = [backoff_seconds(n, 1.0, 10.0, rng=_Fixed(0.0)) for n in range(1, 7)]
    highs = [backoff_seconds(n, 1.0, 10.0, rng=_Fixed(0.999999)) for n in range(1, 7)]
    assert lows == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert highs == pytest.approx([1, 2, 4, 8, 10, 10], rel=1e-5)


class _Fixed:
    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def test_redact_and_client_messages_hide_secrets():
    assert redact("Bearer abc123 and abc123", ["abc123", ""]) == "Bearer *** and ***"
    client = HttpClient(HttpPolicy(), secrets=["tok-1"])
    client.add_secret("tok-2")
    assert client.redact("tok-1 tok-2 tok-3") == "*** *** tok-3"


SECRET = "AAAAAAAAAAAAAAAAAAAAA%2Fsecret+token=="


def test_redaction_comes_before_the_cut_and_catches_every_form_of_a_secret():
    straddling = "x" * 1990 + SECRET + "y" * 100  # the secret straddles character 2,000
    cut = redact(straddling, [SECRET], limit=2000)
    assert len(cut) == 2000 and "secret" not in cut and "AAAAAAAAAA" not in cut
    import urllib.parse
    for form in (urllib.parse.quote(SECRET, safe=""), urllib.parse.quote_plus(SECRET), json.dumps(SECRET)):
        assert "secret" not in redact(f"echo: {form}", [SECRET])
    assert redact(ValueError(f"bad header Bearer {SECRET}\n"), [SECRET]) == "bad header Bearer ***\n"


def test_redaction_makes_text_valid_unicode():
    text = redact("half an emoji \ud83d here", [])
    assert text == "half an emoji \\ud83d here"
    text.encode("utf-8")  # no lone surrogate is left for a coder to fail on
    assert redact(b"\xff\xfebytes", []) == "\ufffd\ufffdbytes"


@pytest.mark.parametrize("raw, what", [
    ("abc\ndef", "a line break"), ("abc def", "whitespace"), ("abc\x00def", "a control character"),
    ("abc\u00e9def", "a non-ASCII character"),
])
def test_a_secret_with_anything_but_one_printable_token_is_refused_without_showing_it(raw, what):
    with pytest.raises(ValueError) as info:
        check_secret(f"  {raw}\n", "--x_bearer_token_file")
    message = str(info.value)
    assert message.startswith("--x_bearer_token_file:") and what in message and "at character 4 of 7" in message
    assert "abc" not in message and "def" not in message
    assert check_secret(" \ttoken-1\r\n", "$X") == "token-1"


def test_min_interval_paces_requests():
    slept: list[float] = []
    clock = iter([100.0, 100.0, 100.2, 101.0]).__next__
    client = HttpClient(HttpPolicy(min_interval_s=1.0), sleep=slept.append, clock=clock)
    client._pace()
    client._pace()
    assert slept == [pytest.approx(0.8)]


# ---- the paging loop, with a connector that serves pages from memory ----

class _Response:
    def __init__(self, body):
        self.text = body if isinstance(body, str) else json.dumps(body)


class ListConnector(Connector):
    """Pages from a list; ids are numbers that grow with time, like X's."""

    name = "list"
    platform = "list"
    default_base_url = "memory://"

    def __init__(self, pages, **kw):
        super().__init__(ConnectorSettings(base_url="memory://", **kw))
        self.pages = pages
        self.asked: list[str | None] = []

    @classmethod
    def queries(cls, brands, settings, credentials):
        return []

    def request_page(self, task, cursor):
        self.asked.append(cursor)
        return _Response(self.pages[int(cursor or 0)])

    def parse_page(self, response, task):
        body = json.loads(response.text)
        if "items" not in body:
            raise MalformedPage("no items")
        return Page(body["items"], body.get("next"))

    def item_id(self, item):
        return item["id"]

    def item_time(self, item):
        return datetime.datetime.fromisoformat(item["t"])

    def to_record(self, item, page, task):
        return {"id": item["id"], "text": item.get("text", "Sprite"), "created_at": item["t"]}


def _item(n: int, text: str = "Sprite") -> dict:
    return {"id": str(1000 + n), "t": (NOW - datetime.timedelta(hours=10 - n)).isoformat(), "text": text}


def _task(**bounds) -> FetchTask:
    return FetchTask("list", "k", MENTIONS, "sprite", "q", **bounds)


def test_the_loop_follows_cursors_and_stops_at_the_floor():
    pages = [{"items": [_item(9), _item(8)], "next": "1"}, {"items": [_item(7), _item(6)], "next": "2"},
             {"items": [_item(5)], "next": None}]
    conn = ListConnector(pages)
    events = list(conn.fetch(_task(since_id="1006")))
    assert [e.id for e in events if isinstance(e, Mention)] == ["1009", "1008", "1007"]
    result = events[-1]
    assert (result.status, result.newest, result.oldest, result.pages) == (COMPLETE, "1009", "1007", 2)
    assert conn.asked == [None, "1"]  # page 3 is never asked for: the floor was reached on page 2


def test_the_loop_skips_what_lies_above_the_ceiling_and_respects_the_page_budget():
    pages = [{"items": [_item(9), _item(8)], "next": "1"}, {"items": [_item(7), _item(6)], "next": "2"},
             {"items": [_item(5)], "next": None}]
    events = list(ListConnector(pages, max_pages=2).fetch(_task(until_id="1009")))
    assert [e.id for e in events if isinstance(e, Mention)] == ["1008", "1007", "1006"]
    result = events[-1]
    assert result.status == STOPPED and "most one task may read" in result.reason and result.cursor == "2"


def test_bad_posts_and_bad_pages_become_dead_letters():
    pages = [{"items": [_item(9), {"id": "1008"}, _item(7, text="   ")], "next": "1"}, {"oops": True}]
    events = list(ListConnector(pages).fetch(_task()))
    dead = [e for e in events if type(e).__name__ == "DeadPage"]
    assert [(d.step, d.reason.split(":")[0]) for d in dead] == [
        ("fetch", "malformed post"), ("validate", "text"), ("fetch", "malformed page")]
    assert dead[1].source.startswith("list:1007") and "cursor=1" in dead[2].source
    assert [e.id for e in events if isinstance(e, Mention)] == ["1009"]
    assert events[-1].status == STOPPED


class _Boom(Exception):
    """An exception type no connector code knows."""


@pytest.mark.parametrize("exc", [
    RecursionError("maximum recursion depth exceeded"), OverflowError("int too large to convert"),
    UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed"), _Boom("anything"), KeyError("text"),
])
def test_any_exception_from_one_post_is_a_dead_letter_holding_it_and_the_position_moves_past_it(monkeypatch, exc):
    real = connectors.base.parse_mention

    def parse(record, **kw):
        if record["id"] == "1009":  # the newest post: the next run's floor must move past it
            raise exc
        return real(record, **kw)

    monkeypatch.setattr(connectors.base, "parse_mention", parse)
    pages = [{"items": [_item(9, "Sprite poisoned"), _item(8)], "next": "1"}, {"items": [_item(7)], "next": None}]
    events = list(ListConnector(pages).fetch(_task()))
    assert [e.id for e in events if isinstance(e, Mention)] == ["1008", "1007"]
    (dead,) = [e for e in events if isinstance(e, DeadPage)]
    assert dead.step in ("validate", "parse") and dead.source.startswith("list:1009")
    assert json.loads(dead.record)["text"] == "Sprite poisoned"  # the post itself is kept
    assert (events[-1].status, events[-1].newest, events[-1].items) == (COMPLETE, "1009", 3)
    state = merge_state({}, [events[-1]], connector=XLike, now=NOW)
    assert state["queries"]["k"]["since"] == {"since_id": "1009"} and state["queries"]["k"]["gaps"] == []


@pytest.mark.parametrize("text, likes, field", [
    ("Sprite \ud83d half an emoji", 3, "text"),  # a lone surrogate: no UTF-8 coder or file can carry it
    ("Sprite, many likes", 2 ** 64, "likes"),     # beyond int64: Beam's VarIntCoder overflows
])
def test_a_post_that_no_coder_can_carry_is_a_dead_letter_here(monkeypatch, text, likes, field):
    real = connectors.base.parse_mention

    def parse(record, **kw):  # whatever the record parser lets through
        return real(record, **kw)._replace(**{field: text if field == "text" else likes})

    monkeypatch.setattr(connectors.base, "parse_mention", parse)
    events = list(ListConnector([{"items": [_item(9, "Sprite")], "next": None}]).fetch(_task()))
    (dead,) = [e for e in events if isinstance(e, DeadPage)]
    assert dead.step == "validate" and dead.reason.startswith(f"{field}:")
    for value in dead:
        value.encode("utf-8")  # the dead letter itself can be carried
    assert events[-1].newest == "1009" and not [e for e in events if isinstance(e, Mention)]


def test_check_carriable_looks_into_every_field():
    check_carriable(Mention._make([None] * len(Mention._fields))._replace(text="ok", likes=2 ** 63 - 1))
    with pytest.raises(ValueError, match="^likes:"):
        check_carriable(Mention._make([None] * len(Mention._fields))._replace(likes=-(2 ** 63) - 1))
    with pytest.raises(ValueError, match="^tags:"):
        check_carriable({"tags": ["ok", "\udc80"]}["tags"], "tags")


def test_a_page_nested_too_deeply_is_a_dead_letter_not_a_crash():
    deep = '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}"
    events = list(ListConnector([deep]).fetch(_task()))
    (dead,) = [e for e in events if isinstance(e, DeadPage)]
    assert dead.step == "fetch" and "malformed page" in dead.reason and len(dead.record) <= 200_000
    assert events[-1].status == STOPPED


def test_a_repeating_cursor_ends_the_task_without_replaying_it():
    pages = [{"items": [_item(9), _item(8)], "next": "1"}, {"items": [_item(7), _item(6)], "next": "1"},
             {"items": [_item(5)], "next": None}]
    conn = ListConnector(pages)
    events = list(conn.fetch(_task()))
    assert conn.asked == [None, "1"]  # not 100 pages of the same answer
    result = events[-1]
    assert (result.status, result.newest, result.oldest, result.cursor) == (LOOPED, "1009", "1006", None)
    assert "sent cursor '1' again" in result.reason
    assert [(d.step, d.reason) for d in events if isinstance(d, DeadPage)] == [("fetch", result.reason)]
    # A cursor that comes back later (A -> B -> A) is a loop too.
    pages = [{"items": [_item(9)], "next": "1"}, {"items": [_item(8)], "next": "2"}, {"items": [_item(7)], "next": "1"}]
    conn = ListConnector(pages)
    assert list(conn.fetch(_task()))[-1].status == LOOPED and conn.asked == [None, "1", "2"]


def test_the_registry_names_every_connector():
    assert connector_names() == ["bluesky", "mastodon", "reddit", "x"]
    assert all(connector_class(n).name == n for n in connector_names())


# ---- planning and state ----

def test_time_slices_cover_the_window_exactly():
    start = datetime.datetime(2026, 9, 1, tzinfo=UTC)
    slices = time_slices(start, start + datetime.timedelta(days=30, hours=6), 24)
    assert len(slices) == 31 and slices[0][0] == start and slices[-1][1] == start + datetime.timedelta(days=30, hours=6)
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))


Q = [Query("mentions:sprite:q", MENTIONS, "sprite", "q"), Query("account:sprite:Sprite", ACCOUNT, "sprite", "Sprite")]


class XLike(ListConnector):
    name = "x"


class TimeLike(ListConnector):
    name = "bluesky"
    position_kind = POSITION_TIME


def test_first_incremental_run_looks_back_then_continues_from_the_newest_id():
    (first, account) = plan_tasks(XLike, Q, {}, now=NOW, lookback_hours=24)
    assert account.kind == ACCOUNT
    assert first.origin == "new" and first.start_time == iso(NOW - datetime.timedelta(hours=24))
    state = merge_state({}, [TaskResult(first, COMPLETE, newest="1009", oldest="1001", pages=2, items=9),
                             TaskResult(account, COMPLETE)], connector=XLike, now=NOW, run_id="r1")
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["since"] == {"since_id": "1009"} and qs["gaps"] == [] and list(state["queries"]) == ["mentions:sprite:q"]
    assert qs["last_run"]["status"] == COMPLETE and state["run_id"] == "r1"
    (nxt, _) = plan_tasks(XLike, Q, state, now=NOW)
    assert (nxt.since_id, nxt.start_time) == ("1009", None)


def test_a_stopped_run_leaves_a_gap_that_the_next_run_fills():
    state = {"queries": {"mentions:sprite:q": {"since": {"since_id": "1000"}}}}
    (new, _) = plan_tasks(XLike, Q, state, now=NOW)
    state = merge_state(state, [TaskResult(new, STOPPED, "rate limited until 13:00", newest="1009", oldest="1005",
                                           cursor="c2")], connector=XLike, now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["since"] == {"since_id": "1009"}
    assert qs["gaps"] == [{"since_id": "1000", "until_id": "1005", "reason": "rate limited until 13:00",
                           "stopped_at": iso(NOW), "cursor": "c2"}]
    gap, new2, _ = plan_tasks(XLike, Q, state, now=NOW)
    assert (gap.origin, gap.since_id, gap.until_id) == ("gap", "1000", "1005")
    assert (new2.origin, new2.since_id) == ("new", "1009")
    # The gap stops again further down, then completes.
    state = merge_state(state, [TaskResult(gap, STOPPED, "again", newest="1004", oldest="1003"),
                                TaskResult(new2, COMPLETE)], connector=XLike, now=NOW)
    assert [(g["since_id"], g["until_id"]) for g in state["queries"]["mentions:sprite:q"]["gaps"]] == [("1000", "1003")]
    gap2, _new3, _ = plan_tasks(XLike, Q, state, now=NOW)
    state = merge_state(state, [TaskResult(gap2, COMPLETE, newest="1002", oldest="1001")], connector=XLike, now=NOW)
    assert state["queries"]["mentions:sprite:q"]["gaps"] == []
    assert state["queries"]["mentions:sprite:q"]["since"] == {"since_id": "1009"}


def test_a_run_that_fetched_nothing_keeps_its_floor():
    (new, _) = plan_tasks(XLike, Q, {}, now=NOW)
    state = merge_state({}, [TaskResult(new, STOPPED, "HTTP 503")], connector=XLike, now=NOW)
    assert state["queries"]["mentions:sprite:q"]["since"] == {"start_time": new.start_time}
    assert state["queries"]["mentions:sprite:q"]["gaps"] == []
    (again, _) = plan_tasks(XLike, Q, state, now=NOW + datetime.timedelta(days=1))
    assert again.start_time == new.start_time


def test_backfill_slices_are_planned_once_and_resumed_where_they_stopped():
    start = NOW - datetime.timedelta(days=3)
    tasks = [t for t in plan_tasks(XLike, Q, {}, now=NOW, start=start, slice_hours=24) if t.kind == MENTIONS]
    assert [t.origin for t in tasks] == ["slice"] * 3
    assert [(t.start_time, t.end_time) for t in tasks] == [
        (iso(start + datetime.timedelta(days=i)), iso(start + datetime.timedelta(days=i + 1))) for i in range(3)]
    results = [TaskResult(tasks[0], COMPLETE, newest="1001", oldest="1000"),
               TaskResult(tasks[1], STOPPED, "rate limited", newest="1005", oldest="1003"),
               TaskResult(tasks[2], STOPPED, "HTTP 503")]
    state = merge_state({}, results, connector=XLike, now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["done_slices"] == [tasks[0].slice] and "since" not in qs  # a backfill does not move the floor
    assert [(g["slice"], g.get("until_id")) for g in qs["gaps"]] == [(tasks[1].slice, "1003"), (tasks[2].slice, None)]
    again = [t for t in plan_tasks(XLike, Q, state, now=NOW, start=start, slice_hours=24) if t.kind == MENTIONS]
    assert [(t.origin, t.slice, t.until_id) for t in again] == [
        ("gap", tasks[1].slice, "1003"), ("gap", tasks[2].slice, None)]
    # An incremental run plans the unfinished backfill gaps too.
    incremental = [t.origin for t in plan_tasks(XLike, Q, state, now=NOW) if t.kind == MENTIONS]
    assert incremental == ["gap", "gap", "new"]


def test_time_positions_overlap_the_floor_and_keep_the_oldest_instant_in_the_gap():
    (new, _) = plan_tasks(TimeLike, Q, {}, now=NOW)
    newest, oldest = iso(NOW - datetime.timedelta(hours=1)), iso(NOW - datetime.timedelta(hours=3))
    state = merge_state({}, [TaskResult(new, STOPPED, "429", newest=newest, oldest=oldest)], connector=TimeLike,
                        now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["since"] == {"start_time": iso(NOW - datetime.timedelta(hours=1, minutes=1))}
    assert qs["gaps"][0]["end_time"] == iso(NOW - datetime.timedelta(hours=3) + datetime.timedelta(milliseconds=1))
    assert qs["gaps"][0]["start_time"] == new.start_time


def test_queries_without_results_keep_their_state():
    state = {"queries": {"mentions:old:q": {"since": {"since_id": "5"}, "gaps": [{"until_id": "4"}]}}}
    (new, _) = plan_tasks(XLike, Q, state, now=NOW)
    merged = merge_state(state, [TaskResult(new, COMPLETE, newest="9")], connector=XLike, now=NOW)
    assert merged["queries"]["mentions:old:q"] == state["queries"]["mentions:old:q"]
    json.dumps(merged)  # the state file is plain JSON


def test_after_a_loop_the_state_moves_on_below_the_oldest_post_or_records_what_it_skipped():
    state = {"queries": {"mentions:sprite:q": {"since": {"since_id": "1000"}}}}
    (new, _) = plan_tasks(XLike, Q, state, now=NOW)
    looped = TaskResult(new, LOOPED, "the platform sent cursor 'c' again", newest="1009", oldest="1006", pages=2)
    state = merge_state(state, [looped], connector=XLike, now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["since"] == {"since_id": "1009"} and qs["last_run"]["status"] == LOOPED
    # X takes an upper bound: the rest is a narrower request next time, never the looping cursor.
    assert [(g["since_id"], g["until_id"], g["cursor"]) for g in qs["gaps"]] == [("1000", "1006", None)]
    gap, _new, _ = plan_tasks(XLike, Q, state, now=NOW)
    # The gap loops again without reading anything: no progress possible, so it is skipped, not replayed.
    state = merge_state(state, [TaskResult(gap, LOOPED, "again", pages=2)], connector=XLike, now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["gaps"] == [] and [(s["until_id"], s["reason"]) for s in qs["skipped"]] == [("1006", "again")]
    assert [t.origin for t in plan_tasks(XLike, Q, state, now=NOW) if t.kind == MENTIONS] == ["new"]


class NoBounds(TimeLike):
    name = "reddit"
    supports_time_range = False


def test_after_a_loop_a_platform_without_bounds_skips_the_rest_and_records_it():
    start = NOW - datetime.timedelta(days=2)
    (new, _) = plan_tasks(NoBounds, Q, {}, now=NOW, lookback_hours=48)
    newest, oldest = iso(NOW - datetime.timedelta(hours=1)), iso(NOW - datetime.timedelta(hours=5))
    state = merge_state({}, [TaskResult(new, LOOPED, "looped", newest=newest, oldest=oldest)], connector=NoBounds,
                        now=NOW)
    qs = state["queries"]["mentions:sprite:q"]
    assert qs["gaps"] == [] and qs["since"] == {"start_time": iso(NOW - datetime.timedelta(hours=1, minutes=1))}
    (skipped,) = qs["skipped"]
    assert (skipped["start_time"], skipped["reason"]) == (iso(start), "looped") and "end_time" in skipped
    assert [t.origin for t in plan_tasks(NoBounds, Q, state, now=NOW) if t.kind == MENTIONS] == ["new"]


# ---- the connectors' records ----

@pytest.mark.parametrize("record, fields, schema", [
    (AccountSnapshot, ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA),
    (BrandReply, BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA),
])
def test_new_records_agree_with_their_schemas(record, fields, schema):
    hints = typing.get_type_hints(record)
    assert list(record._fields) == schema.names == [f.name for f in fields]
    for fld in fields:
        assert schema.field(fld.name).nullable == fld.nullable
        assert (hints[fld.name] == typing.Optional[fld.pytype]) == fld.nullable
    assert schema.field("fetched_at").type.tz == "UTC"


def test_new_tables_are_registered_with_their_partitioning():
    for table in ("posts", "brand_replies", "account_snapshots"):
        assert TABLES[table].partition in TABLES[table].description
