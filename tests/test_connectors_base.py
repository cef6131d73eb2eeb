"""The shared connector machinery: rate-limit headers, backoff, redaction, the paging loop, planning and state."""

from __future__ import annotations

import datetime
import email.utils
import json
import typing

import pytest

from connectors.base import (ACCOUNT, COMPLETE, MENTIONS, POSITION_TIME, STOPPED, Connector, ConnectorSettings,
                             FetchTask, MalformedPage, Page, Query, TaskResult, connector_class, connector_names,
                             iso, merge_state, plan_tasks, time_slices)
from connectors.http import HttpClient, HttpPolicy, backoff_seconds, rate_limit_reset, redact
from schemas.records import (ACCOUNT_SNAPSHOT_FIELDS, ACCOUNT_SNAPSHOT_SCHEMA, BRAND_REPLY_FIELDS, BRAND_REPLY_SCHEMA,
                             TABLES, AccountSnapshot, BrandReply, Mention)
from schemas.docs import PARTITIONS

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


def test_min_interval_paces_requests():
    slept: typing.List[float] = []
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
        self.asked: typing.List[typing.Optional[str]] = []

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
        assert table in TABLES and table in PARTITIONS
