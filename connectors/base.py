"""The connector contract: queries, fetch tasks, the paging loop, incremental state, and the registry.

A platform connector is a `Connector` subclass in its own module, registered once in
`REGISTRY` below. It declares its own command-line flags (`add_flags`, e.g. `--x_*`)
and builds its `ConnectorSettings` from them (`settings_from_flags`); the job's options
(`pipelines.options`) add every registered connector's flags and know no platform by
name. It says how to turn the brand config into platform `Query`s, how to request and
parse one page, and how one item becomes a canonical record; this module holds
everything the connectors share:

- `Connector.fetch(task)`: the paging loop. It follows cursors newest-first, keeps
  only the items inside the task's bounds, validates each post into a `Mention`
  (through the file connector's `parse_mention`, so every source obeys the same
  rules), turns unreadable pages and posts into `DeadPage`s, stops cleanly on a
  rate limit that resets too late or a cursor that repeats, and always ends with
  one `TaskResult` saying how far it got. A post is contained at its own level:
  whatever exception building it raises, and whatever value in it a coder could
  not carry (a lone surrogate, an integer beyond int64), it becomes a dead letter
  holding the post, and the task's position still moves past it. Every string a
  connector lets out (reasons, records, sources, cursors) goes through
  `connectors.http.redact` first: no secret, valid Unicode, cut to length.
- `plan_tasks` / `merge_state`: incremental fetching. Per query, the state keeps the
  floor of the next run (`since`: a platform id for X and Mastodon, a time for
  Reddit and Bluesky), the `gaps` that a stopped task left behind (re-planned on
  every run until done), the backfill slices that are `done_slices`, and the ranges
  `skipped` because the platform's cursor looped where no narrower request exists.

Connectors know HTTP and the platforms, not Beam: `transforms/fetch.py` runs them.
"""

from __future__ import annotations

import abc
import argparse
import copy
import dataclasses
import datetime
import importlib
import json
import os
import typing
from dataclasses import dataclass, field

import requests

from connectors.files import DEFAULT_MAX_TEXT_CHARS, InvalidRecord, parse_mention
from connectors.http import FetchError, HttpClient, HttpPolicy, RateLimited, check_secret
from schemas.records import AccountSnapshot, BrandReply, Mention

_UTC = datetime.timezone.utc

# Which connector module implements each --source name: the one place a connector is registered.
REGISTRY: dict[str, str] = {
    "x": "connectors.x:XConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
    "reddit": "connectors.reddit:RedditConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
}

MENTIONS = "mentions"          # posts that may mention a brand -> Mention
BRAND_REPLIES = "brand_replies"  # the brand's own replies -> BrandReply
ACCOUNT = "account"            # the brand account's follower count -> AccountSnapshot
POSITION_ID = "id"             # incremental position: the platform's increasing post id
POSITION_TIME = "time"         # incremental position: a post time
# Time floors step back this far, because search indexes lag behind the clock a little;
# the overlap comes back as duplicates, which the pipeline's dedupe drops.
TIME_FLOOR_OVERLAP = datetime.timedelta(minutes=1)
COMPLETE = "complete"
STOPPED = "stopped"
# The platform handed back a cursor this task had already followed: paging ends there, and the
# state never resumes from that cursor (see `merge_state`).
LOOPED = "looped"
# Longest reason / source / cursor kept, and longest page or post kept in a dead letter (characters).
MESSAGE_CHARS = 2000
RECORD_CHARS = 200_000
# Ranges given up after a looping cursor, newest last, kept in the state for whoever looks.
MAX_SKIPPED = 20
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


@dataclass(frozen=True)
class ConnectorSettings:
    """Configuration of one connector (no secrets: those are read by `load_credentials`).

    Built on the launching machine by the connector's `settings_from_flags`, from the flags every
    platform shares and the connector's own (the X-only fields below are set by the X connector).

    Attributes:
        base_url: The API root (an enterprise gateway, a proxy, or a test server).
        http: Timeouts, retries and rate-limit waits.
        page_size: Items asked for per page (capped at the platform's maximum).
        max_pages: Pages per task; a task that needs more stops and leaves a gap for the next run.
        langs: ISO 639-1 codes to restrict the search to (platforms that can filter by language).
        max_text_chars: Longer texts go to dead letters, as for the file connector.
        max_query_length: Longest query string the platform accepts (X basic tiers: 512).
        include_reposts: Keep retweets / reposts (X adds `-is:retweet` otherwise).
        search: X only: 'recent' (last 7 days) or 'all' (full archive).
        token_file: X only: a file holding the bearer token (any Beam filesystem path).
    """

    base_url: str
    http: HttpPolicy = field(default_factory=HttpPolicy)
    page_size: int = 100
    max_pages: int = 100
    langs: tuple[str, ...] = ()
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_query_length: int = 512
    include_reposts: bool = False
    search: str = "recent"
    token_file: str | None = None


class Query(typing.NamedTuple):
    """One thing to fetch repeatedly: a search, a timeline, or an account.

    Attributes:
        key: Stable key of its incremental state (changes when the query text changes).
        kind: MENTIONS, BRAND_REPLIES or ACCOUNT.
        brand_id: The brand it was built for.
        text: The platform query (X search syntax, a hashtag, a handle, ...).
    """

    key: str
    kind: str
    brand_id: str
    text: str


class FetchTask(typing.NamedTuple):
    """One unit of parallel work: a query over a range of positions / times.

    Bounds are exclusive ids (`since_id` < id < `until_id`) and a half-open time range
    (`start_time` <= t < `end_time`, ISO 8601 UTC). `origin` says why it was planned:
    'new' (incremental, from the stored floor), 'slice' (a backfill slice) or 'gap'
    (the rest of a task that stopped in an earlier run).
    """

    connector: str
    key: str
    kind: str
    brand_id: str
    query: str
    since_id: str | None = None
    until_id: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    slice: str | None = None
    origin: str = "new"


class Page(typing.NamedTuple):
    """A parsed page: its items (newest first), the cursor of the next page, and page-wide data."""

    items: list
    next_cursor: str | None
    context: typing.Any = None


class DeadPage(typing.NamedTuple):
    """A page or post that could not be read: becomes a dead letter (step, reason, record, source)."""

    step: str
    reason: str
    record: str
    source: str


class TaskResult(typing.NamedTuple):
    """How far a task got: the last thing `Connector.fetch` yields.

    Attributes:
        task: The task.
        status: COMPLETE; STOPPED (rate limit, failure, page budget) or LOOPED (a repeated cursor),
            with `reason`.
        reason: Why it stopped ('' when complete).
        newest: Position of the newest item seen (id, or ISO time), or None.
        oldest: Position of the oldest item seen, or None.
        pages: Pages read.
        items: Items inside the bounds (posts, dead-lettered posts, replies).
        cursor: The cursor it would have asked for next when it stopped.
    """

    task: FetchTask
    status: str
    reason: str = ""
    newest: str | None = None
    oldest: str | None = None
    pages: int = 0
    items: int = 0
    cursor: str | None = None


class MalformedPage(ValueError):
    """A 2xx page that is not what the platform documents; the message says what is wrong."""


FetchEvent = typing.Union[Mention, BrandReply, AccountSnapshot, DeadPage, TaskResult]


def iso(ts: datetime.datetime) -> str:
    """UTC ISO 8601 with milliseconds and 'Z' (accepted by every platform here)."""
    return ts.astimezone(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime.datetime | None:
    """Parses an ISO 8601 timestamp (a trailing Z or no offset means UTC)."""
    if not text:
        return None
    ts = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return ts.replace(tzinfo=_UTC) if ts.tzinfo is None else ts.astimezone(_UTC)


def _compact(record: typing.Any) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str, sort_keys=True)
    except (RecursionError, ValueError, TypeError):  # nested too deeply, or keys JSON cannot write
        try:
            return repr(record)
        except Exception:
            return f"<a {type(record).__name__} that cannot be rendered>"


def optional_access_token(env_var: str) -> dict[str, str]:
    """`{'access_token': ...}` from the environment variable `env_var` (checked), or {} when it is unset or empty.

    Raises:
        ValueError: naming the variable when its value cannot be a token (see `check_secret`).
    """
    token = check_secret(os.environ.get(env_var, ""), f"${env_var}")
    return {"access_token": token} if token else {}


def checked_id(item: typing.Mapping, key: str, valid: typing.Callable[[str], bool], what: str) -> str:
    """`item[key]` when it is a string that `valid` accepts: a post's platform id.

    Raises:
        ValueError: naming the field and what it should have been (e.g. `id: 12.5 is not an X post id`).
    """
    value = item[key]
    if not isinstance(value, str) or not valid(value):
        raise ValueError(f"{key}: {value!r} is not {what}")
    return value


def check_carriable(value: typing.Any, name: str = "record") -> None:
    """Raises ValueError when a value holds what a Beam coder or a Parquet file cannot carry.

    Strings must encode as UTF-8 (no lone surrogates) and integers fit in int64, at any depth
    of tuples, lists and dicts. Checked before a record leaves a connector, so that a bad
    post is a dead letter here instead of an exception in a coder, later, that ends the run.

    Args:
        value: A record (NamedTuple) or any of its values.
        name: The field's name, for the message.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{name}: holds a lone surrogate (half of a UTF-16 pair) at character {exc.start}, "
                             "which no output can carry") from None
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"{name}: {str(value)[:30]}... does not fit in a 64-bit integer")
    elif hasattr(value, "_fields"):
        for field_name, item in zip(value._fields, value):
            check_carriable(item, field_name)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_carriable(item, name)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_carriable(key, name)
            check_carriable(item, name)


class Connector(abc.ABC):
    """A platform connector. Subclasses set the class attributes and implement the hooks.

    Args:
        settings: The connector's settings.
        credentials: What `load_credentials` returned (kept out of every message).
        http: An HTTP client to use instead of a new one (tests).
    """

    name: typing.ClassVar[str]
    platform: typing.ClassVar[str]
    default_base_url: typing.ClassVar[str]
    position_kind: typing.ClassVar[str] = POSITION_ID
    # False: the API has no time-range filter; backfills are one task filtered client-side.
    supports_time_range: typing.ClassVar[bool] = True
    # The connector's flag (declared in `add_flags`) that replaces `default_base_url`; '' for none.
    base_url_flag: typing.ClassVar[str] = ""
    # The API root used instead of `default_base_url` when the credentials hold `signed_in_credential`
    # (an OAuth token, an account password) and no base URL flag was given; '' for none.
    signed_in_base_url: typing.ClassVar[str] = ""
    signed_in_credential: typing.ClassVar[str] = ""

    # ---- launcher side: flags and settings -----------------------------------------------

    @classmethod
    def add_flags(cls, group: argparse._ActionsContainer) -> None:
        """Declares the connector's own command-line flags (`--<name>_...`) on an argparse group."""

    @classmethod
    def settings_from_flags(cls, flags: typing.Mapping[str, typing.Any], common: ConnectorSettings
                            ) -> ConnectorSettings:
        """The connector's settings: `common` (from the flags every platform shares) with its own flags applied.

        Args:
            flags: Every flag's value by its name (`x_base_url`, `page_size`, ...).
            common: The settings from the shared flags (HTTP policy, page size, languages, ...).

        Raises:
            ValueError: naming the connector's flag at fault.
        """
        base_url = str(flags.get(cls.base_url_flag) or "").strip() if cls.base_url_flag else ""
        if base_url and "://" not in base_url:
            base_url = "https://" + base_url  # --mastodon_instance mastodon.social
        return dataclasses.replace(common, base_url=base_url)

    @classmethod
    def check_backfill(cls, settings: ConnectorSettings, start: datetime.datetime, now: datetime.datetime) -> None:
        """Raises ValueError (naming the flag) when the platform cannot reach back to a backfill's `start`."""

    @classmethod
    def reply_coverage(cls, brands: typing.Any) -> list[tuple[str, str]]:
        """(brand id, platform) of every brand whose own replies this connector fetches (the metrics count
        reply times only there); none by default."""
        return []

    def __init__(self, settings: ConnectorSettings, credentials: dict[str, str] | None = None,
                 http: HttpClient | None = None):
        self.settings = settings
        self.credentials = dict(credentials or {})
        # Every credential is a secret, except an account's public handle.
        secrets = [v for k, v in self.credentials.items() if k != "handle"]
        self.http = http or HttpClient(settings.http, secrets=secrets)
        for secret in secrets:
            self.http.add_secret(secret)
        default = self.default_base_url
        if self.signed_in_base_url and self.credentials.get(self.signed_in_credential):
            default = self.signed_in_base_url
        self.base_url = (settings.base_url or default).rstrip("/")

    # ---- driver side: credentials and queries --------------------------------------------

    @classmethod
    def load_credentials(cls, settings: ConnectorSettings,
                         opener: typing.Callable[[str], typing.IO[bytes]] | None = None
                         ) -> dict[str, str]:
        """Reads the connector's secrets (environment, secret file). Raises ValueError if required and absent."""
        return {}

    @classmethod
    @abc.abstractmethod
    def queries(cls, brands: typing.Any, settings: ConnectorSettings,
                credentials: typing.Mapping[str, str]) -> list[Query]:
        """Builds the platform queries for every brand of the config (raises ValueError when impossible)."""

    # ---- worker side: paging hooks -------------------------------------------------------

    @abc.abstractmethod
    def request_page(self, task: FetchTask, cursor: str | None) -> requests.Response:
        """Requests one page of `task` (the first when `cursor` is None)."""

    @abc.abstractmethod
    def parse_page(self, response: requests.Response, task: FetchTask) -> Page:
        """Parses a page; raises MalformedPage (or ValueError / KeyError / TypeError) when it cannot."""

    @abc.abstractmethod
    def item_id(self, item: typing.Any) -> str:
        """The item's platform id."""

    @abc.abstractmethod
    def item_time(self, item: typing.Any) -> datetime.datetime:
        """The time the platform sorts and filters the item by (UTC)."""

    def item_position(self, item: typing.Any) -> int | datetime.datetime:
        """The item's incremental position: its numeric id (POSITION_ID) or its time (POSITION_TIME)."""
        return int(self.item_id(item)) if self.position_kind == POSITION_ID else self.item_time(item)

    @abc.abstractmethod
    def to_record(self, item: typing.Any, page: Page, task: FetchTask) -> dict:
        """The item as a canonical record (the file connector's field names; see `connectors.files`)."""

    def to_reply(self, item: typing.Any, page: Page, task: FetchTask, fetched_at: datetime.datetime) -> BrandReply:
        """The item as a BrandReply (connectors that fetch the brand's replies)."""
        raise NotImplementedError(f"{self.name} does not fetch brand replies")

    def fetch_account(self, task: FetchTask, now: datetime.datetime) -> typing.Iterator[FetchEvent]:
        """Yields an AccountSnapshot (or a DeadPage), then a TaskResult (connectors with ACCOUNT queries)."""
        raise NotImplementedError(f"{self.name} does not fetch accounts")

    def close(self) -> None:
        """Releases the HTTP session."""
        self.http.close()

    # ---- the shared paging loop ----------------------------------------------------------

    def source(self, task: FetchTask, cursor: str | None) -> str:
        """Where a dead letter came from: connector, kind, query and cursor."""
        return f"{self.name}:{task.kind}:{task.query} cursor={cursor or '-'}"

    def format_position(self, position: int | datetime.datetime) -> str:
        """A position as stored in the state file."""
        return str(position) if self.position_kind == POSITION_ID else iso(position)

    def fetch(self, task: FetchTask, now: datetime.datetime | None = None
              ) -> typing.Iterator[FetchEvent]:
        """Fetches every page of `task`, newest first.

        Args:
            task: What to fetch.
            now: Reference time for plausibility checks (defaults to now).

        Yields:
            Mentions (or BrandReplies, or an AccountSnapshot), DeadPages, and last a TaskResult.
        """
        now = now or datetime.datetime.now(_UTC)
        if task.kind == ACCOUNT:
            yield from self._fetch_account_contained(task, now)
            return
        since_id = int(task.since_id) if task.since_id and self.position_kind == POSITION_ID else None
        until_id = int(task.until_id) if task.until_id and self.position_kind == POSITION_ID else None
        start, end = parse_iso(task.start_time), parse_iso(task.end_time)
        cursor: str | None = None
        followed: set[str] = set()
        newest = oldest = None
        pages = items = 0
        status, reason = COMPLETE, ""
        while True:
            if pages >= self.settings.max_pages:
                status, reason = STOPPED, f"read {pages} pages, the most one task may read (--max_pages_per_query)"
                break
            where = self.clean(self.source(task, cursor), MESSAGE_CHARS)
            try:
                response = self.request_page(task, cursor)
            except RateLimited as exc:
                status, reason = STOPPED, self.clean(exc, MESSAGE_CHARS)
                break
            except FetchError as exc:
                reason = self.clean(exc, MESSAGE_CHARS)
                yield DeadPage("fetch", f"page could not be fetched: {reason}", self.clean(exc.body, RECORD_CHARS),
                               where)
                status = STOPPED
                break
            except Exception as exc:  # whatever a connector's request raises is this query's fault only
                reason = self.clean(f"page could not be requested: {type(exc).__name__}: {exc}", MESSAGE_CHARS)
                yield DeadPage("fetch", reason, "", where)
                status = STOPPED
                break
            try:
                page = self.parse_page(response, task)
                page_items = list(page.items)
            except Exception as exc:  # not only ValueError: a page nested too deeply raises RecursionError
                reason = self.clean(f"malformed page: {_describe(exc)}", MESSAGE_CHARS)
                yield DeadPage("fetch", reason, self.clean(_body_text(response), RECORD_CHARS), where)
                status = STOPPED
                break
            pages += 1
            fetched_at = datetime.datetime.now(_UTC)
            reached_floor = False
            for item in page_items:
                try:
                    position, when = self.item_position(item), self.item_time(item)
                except Exception as exc:
                    yield DeadPage("fetch", self.clean(f"malformed post: {_describe(exc)}", MESSAGE_CHARS),
                                   self.clean(_compact(item), RECORD_CHARS), where)
                    continue
                if (until_id is not None and position >= until_id) or (end is not None and when >= end):
                    continue  # newer than the task's range: another task's (or run's) share
                if (since_id is not None and position <= since_id) or (start is not None and when < start):
                    reached_floor = True  # older than the range: this and every later page are done
                    continue
                # Counted before the post is built: a post that cannot be carried is still passed.
                newest = position if newest is None or position > newest else newest
                oldest = position if oldest is None or position < oldest else oldest
                items += 1
                yield self._convert(item, page, task, fetched_at, now, where)
            if reached_floor or not page_items or not page.next_cursor:
                cursor = None
                break
            if page.next_cursor in followed or page.next_cursor == cursor:
                shown = self.clean(page.next_cursor, 80)
                status = LOOPED
                reason = (f"the platform sent cursor {shown!r} again after {pages} page(s): paging stopped; "
                          "the older part of this range is re-planned below the oldest post read, or skipped "
                          "where the platform takes no such bound")
                yield DeadPage("fetch", reason, "", where)
                cursor = None  # never resume from a cursor that loops
                break
            cursor = page.next_cursor
            followed.add(cursor)
        yield TaskResult(task, status, self.clean(reason, MESSAGE_CHARS),
                         self.format_position(newest) if newest is not None else None,
                         self.format_position(oldest) if oldest is not None else None,
                         pages, items, self.clean(cursor, MESSAGE_CHARS) if cursor is not None else None)

    def clean(self, text: typing.Any, limit: int | None = None) -> str:
        """Any text on its way out of the connector: no secret, valid Unicode, then cut to `limit`."""
        return self.http.redact(text, limit)

    def _fetch_account_contained(self, task: FetchTask, now: datetime.datetime) -> typing.Iterator[FetchEvent]:
        where = self.clean(f"{self.name}:{task.kind}:{task.query}", MESSAGE_CHARS)
        try:
            for event in self.fetch_account(task, now):
                if isinstance(event, AccountSnapshot):
                    try:
                        check_carriable(event)
                    except ValueError as exc:
                        yield DeadPage("validate", self.clean(exc, MESSAGE_CHARS),
                                       self.clean(_compact(event._asdict()), RECORD_CHARS), where)
                        continue
                elif isinstance(event, DeadPage):
                    event = DeadPage(event.step, self.clean(event.reason, MESSAGE_CHARS),
                                     self.clean(event.record, RECORD_CHARS), self.clean(event.source, MESSAGE_CHARS))
                elif isinstance(event, TaskResult):
                    event = event._replace(reason=self.clean(event.reason, MESSAGE_CHARS))
                yield event
        except Exception as exc:
            reason = self.clean(f"account could not be read: {type(exc).__name__}: {exc}", MESSAGE_CHARS)
            yield DeadPage("fetch", reason, "", where)
            yield TaskResult(task, STOPPED, reason)

    def _convert(self, item, page: Page, task: FetchTask, fetched_at: datetime.datetime,
                 now: datetime.datetime, where: str) -> Mention | BrandReply | DeadPage:
        try:
            if task.kind == BRAND_REPLIES:
                built = self.to_reply(item, page, task, fetched_at)
            else:
                record = self.to_record(item, page, task)
                record.setdefault("platform", self.platform)
                record.setdefault("fetched_at", fetched_at)
                built = parse_mention(record, connector=self.name, query=task.query,
                                      max_text_chars=self.settings.max_text_chars, now=now)
            check_carriable(built)
            return built
        except Exception as exc:  # whatever the type: one post never stops its connector
            step = "validate" if isinstance(exc, (InvalidRecord, ValueError, KeyError, TypeError,
                                                  AttributeError)) else "parse"
            try:
                item_ref = self.clean(self.item_id(item), 200)
            except Exception:  # the id itself may be what is broken
                item_ref = "?"
            return DeadPage(step, self.clean(_describe(exc), MESSAGE_CHARS), self.clean(_compact(item), RECORD_CHARS),
                            self.clean(f"{self.platform}:{item_ref} ({where})", MESSAGE_CHARS))


def _describe(exc: BaseException) -> str:
    """An exception in words: its message, with its type where the message alone would not say."""
    text = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
    if isinstance(exc, (InvalidRecord, MalformedPage, ValueError)) and not isinstance(exc, UnicodeError):
        return text
    return f"{type(exc).__name__}: {text}"


def _body_text(response: typing.Any) -> str:
    try:
        return response.text
    except Exception:  # no body at all, or one that cannot be decoded
        return ""


def connector_class(name: str) -> type[Connector]:
    """The Connector class registered under `name` (imported on first use).

    Raises:
        KeyError: for a name that is not in REGISTRY.
    """
    module_name, _, class_name = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def connector_names() -> list[str]:
    """The registered connector names."""
    return sorted(REGISTRY)


# ---- planning and incremental state ---------------------------------------------------------

def time_slices(start: datetime.datetime, end: datetime.datetime, hours: float
                ) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """Splits [start, end) into consecutive slices of `hours` (the last one may be shorter)."""
    step = datetime.timedelta(hours=hours)
    slices, cursor = [], start
    while cursor < end:
        slices.append((cursor, min(cursor + step, end)))
        cursor += step
    return slices


_BOUNDS = ("since_id", "until_id", "start_time", "end_time", "slice")


def plan_tasks(connector: type[Connector], queries: typing.Sequence[Query], state: typing.Mapping,
               *, now: datetime.datetime, start: datetime.datetime | None = None,
               end: datetime.datetime | None = None, slice_hours: float = 24.0,
               lookback_hours: float = 168.0) -> list[FetchTask]:
    """Plans the run's tasks for one connector.

    Every gap a stopped task left is planned again. Then either a backfill (`start`
    given): one task per query and time slice that is not done yet; or an incremental
    run: one task per query from its stored floor (the first run looks back
    `lookback_hours`).

    Args:
        connector: The connector class.
        queries: Its queries.
        state: Its state (as `merge_state` wrote it; {} for none).
        now: The run's reference time.
        start, end: The backfill window, or None for an incremental run.
        slice_hours: Length of a backfill slice.
        lookback_hours: How far the first incremental run looks back.

    Returns:
        The tasks, in a deterministic order.
    """
    known = state.get("queries", {}) if state else {}
    tasks: list[FetchTask] = []
    for q in queries:
        base = FetchTask(connector.name, q.key, q.kind, q.brand_id, q.text)
        if q.kind == ACCOUNT:
            tasks.append(base)
            continue
        qs = known.get(q.key, {})
        gaps = qs.get("gaps", [])
        for gap in gaps:
            tasks.append(base._replace(origin="gap", **{k: gap.get(k) for k in _BOUNDS}))
        if start is not None:
            stop = end or now
            done = set(qs.get("done_slices", []))
            pending = {gap.get("slice") for gap in gaps}
            spans = time_slices(start, stop, slice_hours) if connector.supports_time_range else [(start, stop)]
            for s, e in spans:
                name = f"{iso(s)}/{iso(e)}"
                if name not in done and name not in pending:
                    tasks.append(base._replace(origin="slice", start_time=iso(s), end_time=iso(e), slice=name))
        else:
            floor = dict(qs.get("since") or {"start_time": iso(now - datetime.timedelta(hours=lookback_hours))})
            tasks.append(base._replace(origin="new", since_id=floor.get("since_id"),
                                       start_time=floor.get("start_time")))
    return tasks


def _gap(task: FetchTask, result: TaskResult, position_kind: str, now: datetime.datetime) -> dict:
    gap = {k: getattr(task, k) for k in _BOUNDS if getattr(task, k)}
    if result.oldest:
        if position_kind == POSITION_ID:
            gap["until_id"] = result.oldest
        else:  # the end is exclusive: keep the oldest post's instant inside (its twins may be unread)
            gap["end_time"] = iso(parse_iso(result.oldest) + datetime.timedelta(milliseconds=1))
    gap.update(reason=result.reason, stopped_at=iso(now), cursor=result.cursor)
    return gap


def merge_state(state: typing.Mapping | None, results: typing.Iterable[TaskResult], *,
                connector: type[Connector], now: datetime.datetime,
                run_id: str | None = None) -> dict:
    """The connector's state after a successful run.

    Per query seen in `results`: the floor moves to the newest position fetched by
    its incremental task; the gaps are rebuilt from the tasks that stopped (every
    old gap was planned, so one that did not come back stopped is done); completed
    backfill slices are recorded. Queries without results keep their state.

    A task whose cursor looped is never resumed from that cursor. Where the platform
    takes an upper bound (`supports_time_range`) and the task read something, the rest
    of its range becomes a gap below the oldest post read: a narrower request next
    time, not a replay. Otherwise (Reddit's listing has no bound; or the new gap would
    be the old one again) the rest is given up, listed under the query's `skipped`
    with the reason, and a backfill slice counts as done.

    Args:
        state: The state read at the start of the run ({} or None for none).
        results: Every task's TaskResult.
        connector: The connector class (its name and position kind).
        now: The run's reference time.
        run_id: The run that produced the results.

    Returns:
        The new state, a JSON-serialisable dict.
    """
    new = copy.deepcopy(dict(state or {}))
    new.update(version=1, connector=connector.name, updated_at=iso(now), run_id=run_id)
    queries = new.setdefault("queries", {})
    by_key: dict[str, list[TaskResult]] = {}
    for result in results:
        if result.task.kind != ACCOUNT:
            by_key.setdefault(result.task.key, []).append(result)
    for key in sorted(by_key):
        results_of_key = by_key[key]
        first = results_of_key[0].task
        qs = queries.setdefault(key, {})
        qs.update(kind=first.kind, brand_id=first.brand_id, query=first.query)
        gaps: list[dict] = []
        skipped: list[dict] = list(qs.get("skipped", []))
        done = set(qs.get("done_slices", []))
        for result in results_of_key:
            task = result.task
            if task.origin == "new":
                if result.newest:
                    if connector.position_kind == POSITION_ID:
                        qs["since"] = {"since_id": result.newest}
                    else:
                        qs["since"] = {"start_time": iso(parse_iso(result.newest) - TIME_FLOOR_OVERLAP)}
                elif not qs.get("since"):
                    floor = {k: getattr(task, k) for k in ("since_id", "start_time") if getattr(task, k)}
                    qs["since"] = floor or None
            if result.status == COMPLETE:
                if task.origin != "new" and task.slice:
                    done.add(task.slice)
            elif result.status == LOOPED:
                gap = _gap(task, result, connector.position_kind, now)
                gap["cursor"] = None
                narrower = any(gap.get(k) != getattr(task, k) for k in _BOUNDS)
                if connector.supports_time_range and result.oldest and narrower:
                    gaps.append(gap)
                else:
                    skipped.append(gap)
                    if task.slice:
                        done.add(task.slice)
            elif task.origin != "new" or result.oldest:
                gaps.append(_gap(task, result, connector.position_kind, now))
        stops = [r for r in results_of_key if r.status != COMPLETE]
        qs["gaps"] = gaps
        if skipped:
            qs["skipped"] = skipped[-MAX_SKIPPED:]
        qs["done_slices"] = sorted(done)
        qs["last_run"] = {
            "at": iso(now),
            "run_id": run_id,
            "status": (stops[0].status if stops else COMPLETE),
            "reason": stops[0].reason if stops else "",
            "tasks": len(results_of_key),
            "pages": sum(r.pages for r in results_of_key),
            "items": sum(r.items for r in results_of_key),
        }
    return new
