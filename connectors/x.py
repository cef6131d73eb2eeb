"""X (Twitter) connector: API v2 recent / full-archive search through tweepy, and the brand's own account.

Endpoints (tweepy's `Client.search_recent_tweets`, `search_all_tweets`, `get_user`):

- `GET /2/tweets/search/recent` (last 7 days; every paid tier) or `/2/tweets/search/all`
  (full archive; Pro / Enterprise), newest first, `next_token` pagination, with the
  fields the metrics need (`public_metrics`, `conversation_id`, `referenced_tweets`,
  `in_reply_to_user_id`, `lang`, `entities`, `note_tweet`) and the authors
  (`expansions=author_id`, `user.fields=public_metrics,username`) for follower counts;
- `from:<handle> is:reply` through the same search: the brand's own replies;
- `GET /2/users/by/username/:username`: the brand account's follower count, once per run.

Queries come from the brand config: names as keywords (quoted as exact phrases when
they are not a single word), `@handle` and `#hashtag`, OR-ed, with `-is:retweet`
unless reposts are wanted and `lang:` when languages are asked for; a brand whose
terms do not fit in `max_query_length` (512 on the basic tiers) gets several queries.
The posts keep their text with the `@handle` / `#hashtag` entities in it, which is
what the matcher reads to tell tagged from untagged.

The bearer token comes from `X_BEARER_TOKEN` or a secret file, never from the config;
tweepy's own request method (which logs headers at DEBUG) is replaced by one that
sends through `connectors.http.HttpClient` to the configured base URL, with timeouts,
retries, bounded rate-limit waits and redaction.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import typing

import requests
import tweepy

from connectors.base import (ACCOUNT, BRAND_REPLIES, COMPLETE, MENTIONS, STOPPED, Connector, ConnectorSettings,
                             DeadPage, FetchTask, MalformedPage, Page, Query, TaskResult, checked_id, parse_iso)
from connectors.files import parse_timestamp
from connectors.http import FetchError, HttpClient, RateLimited, check_secret
from schemas.records import AccountSnapshot, BrandReply

TOKEN_ENV = "X_BEARER_TOKEN"
TWEET_FIELDS = ["created_at", "lang", "public_metrics", "conversation_id", "referenced_tweets",
                "in_reply_to_user_id", "author_id", "entities", "note_tweet"]
USER_FIELDS = ["public_metrics", "username"]
EXPANSIONS = ["author_id"]
RECENT_WINDOW = datetime.timedelta(days=7)
# X rejects a start_time / since_id at the very edge of the window and an end_time under 10 s old.
_WINDOW_MARGIN = datetime.timedelta(minutes=2)
_END_MARGIN = datetime.timedelta(seconds=15)
_TWITTER_EPOCH_MS = 1288834974657
_UNDETERMINED_LANGS = {"und", "zxx", "qme", "qht", "qam", "qct", "qst", "art"}
_BARE = re.compile(r"^\w+$")
_FROM = re.compile(r"from:(\w+)")
_UTC = datetime.timezone.utc


def snowflake_time(post_id: str | int) -> datetime.datetime:
    """The creation time encoded in an X post id."""
    return datetime.datetime.fromtimestamp(((int(post_id) >> 22) + _TWITTER_EPOCH_MS) / 1000.0, _UTC)


def _term(name: str) -> str:
    text = re.sub(r"\s+", " ", name.replace('"', " ")).strip()
    return text if _BARE.match(text) else f'"{text}"'


def build_search_queries(brand: typing.Any, *, max_length: int = 512, langs: typing.Sequence[str] = (),
                         include_reposts: bool = False) -> list[str]:
    """X search queries for one brand: its terms OR-ed, split to fit `max_length`.

    Args:
        brand: A `schemas.config.Brand` (names, handles, hashtags).
        max_length: The longest query the account's tier accepts.
        langs: Language codes for `lang:` filters (none: every language).
        include_reposts: Keep retweets (otherwise `-is:retweet`).

    Returns:
        One or more queries that together cover every term.

    Raises:
        ValueError: when one term alone does not fit.
    """
    terms: list[str] = []
    for term in ([_term(n) for n in brand.names] + [f"@{h}" for h in brand.handles]
                 + [f"#{t}" for t in brand.hashtags]):
        if term.lower() not in {t.lower() for t in terms}:
            terms.append(term)
    filters = [] if include_reposts else ["-is:retweet"]
    if len(langs) == 1:
        filters.append(f"lang:{langs[0]}")
    elif langs:
        filters.append("(" + " OR ".join(f"lang:{code}" for code in langs) + ")")
    suffix = (" " + " ".join(filters)) if filters else ""

    def render(group: list[str]) -> str:
        return (group[0] if len(group) == 1 else "(" + " OR ".join(group) + ")") + suffix

    queries: list[str] = []
    group: list[str] = []
    for term in terms:
        if len(render([term])) > max_length:
            raise ValueError(f"brand {brand.id!r}: the term {term} alone makes an X query longer than "
                             f"{max_length} characters (--x_max_query_length)")
        if group and len(render(group + [term])) > max_length:
            queries.append(render(group))
            group = []
        group.append(term)
    if group:
        queries.append(render(group))
    return queries


class _TweepyClient(tweepy.Client):
    """tweepy.Client that sends through our HttpClient to a configurable base URL.

    tweepy builds every URL from a hard-coded host inside `BaseClient.request` and logs
    the request headers (the bearer token among them) at DEBUG; overriding `request`
    is the hook that changes both, while tweepy keeps building routes and parameters.
    """

    def __init__(self, bearer_token: str, http: HttpClient, base_url: str):
        super().__init__(bearer_token=bearer_token, return_type=requests.Response, wait_on_rate_limit=False)
        self._http = http
        self._base_url = base_url

    def request(self, method, route, params=None, json=None, user_auth=False):
        headers = {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}
        return self._http.request(method, self._base_url + route, params=params, headers=headers, json=json)

    def __repr__(self) -> str:
        return f"<X client for {self._base_url}>"


class _OutsideWindow(Exception):
    """The task's range lies entirely before the recent-search window."""


class XConnector(Connector):
    """X API v2 search through tweepy."""

    name = "x"
    platform = "x"
    default_base_url = "https://api.x.com"
    base_url_flag = "x_base_url"

    @classmethod
    def add_flags(cls, group):
        """--x_base_url, --x_search, --x_bearer_token_file, --x_max_query_length, --x_include_retweets."""
        group.add_argument("--x_base_url", default=None,
                           help="X API root (default https://api.x.com), e.g. an enterprise gateway or proxy.")
        group.add_argument("--x_search", choices=("recent", "all"), default="recent",
                           help="X search endpoint: recent (last 7 days) or all (full archive, Pro/Enterprise).")
        group.add_argument("--x_bearer_token_file", default=None,
                           help="File holding the X bearer token (local or gs://...); default: $X_BEARER_TOKEN.")
        group.add_argument("--x_max_query_length", type=int, default=512,
                           help="Longest X query your access tier accepts; longer term lists are split.")
        group.add_argument("--x_include_retweets", action="store_true",
                           help="Keep retweets (by default X queries carry -is:retweet).")

    @classmethod
    def settings_from_flags(cls, flags, common):
        """The shared settings with the X flags: endpoint, token file, query length, retweets."""
        if flags["x_max_query_length"] <= 0:
            raise ValueError("--x_max_query_length must be positive")
        return dataclasses.replace(
            super().settings_from_flags(flags, common), search=flags["x_search"],
            token_file=flags["x_bearer_token_file"], max_query_length=flags["x_max_query_length"],
            include_reposts=bool(flags["x_include_retweets"]))

    @classmethod
    def check_backfill(cls, settings, start, now):
        """Recent search reaches 7 days back only."""
        if settings.search == "recent" and start < now - RECENT_WINDOW:
            raise ValueError("--start_time: X recent search reaches 7 days back only; use --x_search all "
                             "(full-archive access) or a later --start_time")

    @classmethod
    def reply_coverage(cls, brands):
        """Every brand with a handle: X fetches each handle's replies (`from:<handle> is:reply`)."""
        return [(b.id, cls.platform) for b in brands.brands if b.search_terms()[1]]

    def __init__(self, settings: ConnectorSettings, credentials: dict[str, str] | None = None,
                 http: HttpClient | None = None):
        if settings.search == "all" and settings.http.min_interval_s <= 0:
            # Full-archive search allows one request per second per app.
            settings = dataclasses.replace(settings, http=dataclasses.replace(settings.http, min_interval_s=1.0))
        super().__init__(settings, credentials, http)
        base = self.base_url[:-2] if self.base_url.endswith("/2") else self.base_url
        self.client = _TweepyClient(self.credentials.get("bearer_token", ""), self.http, base.rstrip("/"))

    @classmethod
    def load_credentials(cls, settings, opener=None):
        """The bearer token from `settings.token_file` (read with `opener`) or $X_BEARER_TOKEN.

        Read once at start, stripped and checked: a line break, space or control character
        inside is a configuration error naming the flag or variable, never showing the token
        (sent as a header, it would fail every request and print itself in the traceback).
        """
        token = ""
        if settings.token_file:
            try:
                with (opener(settings.token_file) if opener else open(settings.token_file, "rb")) as fh:
                    raw = fh.read(64 * 1024 + 1)
                if len(raw) > 64 * 1024:
                    raise ValueError(f"--x_bearer_token_file: {settings.token_file} is larger than 64 KiB; "
                                     "it must hold the token alone")
                token = check_secret(raw.decode("utf-8"), "--x_bearer_token_file")
            except (OSError, IOError, UnicodeDecodeError) as exc:
                raise ValueError(f"--x_bearer_token_file: cannot read {settings.token_file}: "
                                 f"{type(exc).__name__}") from None
            if not token:
                raise ValueError(f"--x_bearer_token_file: {settings.token_file} is empty")
        else:
            token = check_secret(os.environ.get(TOKEN_ENV, ""), f"${TOKEN_ENV}")
        if not token:
            raise ValueError(f"--source x needs an X API bearer token: set {TOKEN_ENV} or pass "
                             "--x_bearer_token_file (a local or gs:// file holding only the token)")
        return {"bearer_token": token}

    @classmethod
    def queries(cls, brands, settings, credentials):
        out: list[Query] = []
        for brand in brands.brands:
            for text in build_search_queries(brand, max_length=settings.max_query_length, langs=settings.langs,
                                             include_reposts=settings.include_reposts):
                out.append(Query(f"{MENTIONS}:{brand.id}:{text}", MENTIONS, brand.id, text))
            for handle in brand.handles:
                text = f"from:{handle} is:reply"
                out.append(Query(f"{BRAND_REPLIES}:{brand.id}:{text}", BRAND_REPLIES, brand.id, text))
                out.append(Query(f"{ACCOUNT}:{brand.id}:{handle}", ACCOUNT, brand.id, handle))
            # The accounts that answer for the brand beside its own (a support account): replies only,
            # since their followers are not the brand's audience.
            for handle in brand.response.accounts:
                text = f"from:{handle} is:reply"
                out.append(Query(f"{BRAND_REPLIES}:{brand.id}:{text}", BRAND_REPLIES, brand.id, text))
        return out

    # ---- paging hooks ----

    def _window_floor(self, now: datetime.datetime) -> datetime.datetime | None:
        return now - RECENT_WINDOW + _WINDOW_MARGIN if self.settings.search == "recent" else None

    def _bounds(self, task: FetchTask, now: datetime.datetime) -> dict:
        params: dict[str, typing.Any] = {}
        floor = self._window_floor(now)
        start = parse_iso(task.start_time)
        if task.since_id and (floor is None or snowflake_time(task.since_id) > floor):
            params["since_id"] = task.since_id
        elif floor is not None and (start is None or start < floor):
            # Older posts are out of recent search's reach; say so instead of failing the request.
            params["start_time"] = floor
        elif start is not None:
            params["start_time"] = start
        if task.until_id:
            params["until_id"] = task.until_id
            upper = snowflake_time(task.until_id)
        else:
            end = parse_iso(task.end_time)
            if end is not None:
                # Whole seconds only: round the exclusive end up (the overlap is deduplicated).
                end = end.replace(microsecond=0) + datetime.timedelta(seconds=1 if end.microsecond else 0)
                end = min(end, now - _END_MARGIN)
                params["end_time"] = end
            upper = end
        if floor is not None and upper is not None and upper <= floor:
            raise _OutsideWindow()
        return params

    def fetch(self, task: FetchTask, now: datetime.datetime | None = None):
        now = now or datetime.datetime.now(_UTC)
        if task.kind != ACCOUNT:
            try:
                # Fixed once per task, so that every page of it asks for the same range.
                self._task_bounds = (task, self._bounds(task, now))
            except _OutsideWindow:
                yield TaskResult(task, COMPLETE, "older than recent search's 7 days: needs --x_search all")
                return
        yield from super().fetch(task, now)

    def request_page(self, task: FetchTask, cursor: str | None) -> requests.Response:
        bounds_task, bounds = getattr(self, "_task_bounds", (None, None))
        if bounds_task != task:
            bounds = self._bounds(task, datetime.datetime.now(_UTC))
        limit = 500 if self.settings.search == "all" else 100
        params = dict(max_results=max(10, min(limit, self.settings.page_size)), tweet_fields=TWEET_FIELDS,
                      expansions=EXPANSIONS, user_fields=USER_FIELDS, **bounds)
        if cursor:
            params["next_token"] = cursor
        search = self.client.search_all_tweets if self.settings.search == "all" else self.client.search_recent_tweets
        return search(task.query, **params)

    def parse_page(self, response: requests.Response, task: FetchTask) -> Page:
        body = response.json()
        if not isinstance(body, dict):
            raise MalformedPage(f"expected a JSON object, got {type(body).__name__}")
        meta = body.get("meta")
        if "data" not in body and not isinstance(meta, dict):
            errors = body.get("errors") or []
            details = "; ".join(str(e.get("detail") or e.get("title") or e) for e in errors if isinstance(e, dict))
            raise MalformedPage(f"no data and no meta{': ' + details if details else ''}")
        if not isinstance(meta, dict):
            raise MalformedPage("'meta' is missing")
        data = body.get("data", [])
        if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
            raise MalformedPage("'data' is not a list of posts")
        users = {u.get("id"): u for u in (body.get("includes") or {}).get("users", []) if isinstance(u, dict)}
        next_token = meta.get("next_token")
        if next_token is not None and not isinstance(next_token, str):
            raise MalformedPage("'meta.next_token' is not a string")
        return Page(data, next_token, users)

    def item_id(self, item) -> str:
        return checked_id(item, "id", str.isdigit, "an X post id")

    def item_time(self, item) -> datetime.datetime:
        return parse_timestamp(item["created_at"])

    def to_record(self, item, page: Page, task: FetchTask) -> dict:
        user = page.context.get(item.get("author_id")) or {}
        username = user.get("username")
        metrics = item.get("public_metrics") or {}
        refs = {r.get("type"): r.get("id") for r in item.get("referenced_tweets") or [] if isinstance(r, dict)}
        note = item.get("note_tweet") or {}
        lang = item.get("lang")
        post_id = item["id"]
        return {
            "id": post_id,
            "platform": self.platform,
            # Long posts come truncated in `text` and whole in `note_tweet.text`.
            "text": note.get("text") or item["text"],
            "created_at": item["created_at"],
            "lang": None if not lang or lang in _UNDETERMINED_LANGS else lang,
            "url": f"https://x.com/{username}/status/{post_id}" if username else f"https://x.com/i/status/{post_id}",
            "author_id": item.get("author_id"),
            "author_handle": username,
            "author_followers": (user.get("public_metrics") or {}).get("followers_count"),
            "is_repost": "retweeted" in refs,
            "repost_of": refs.get("retweeted"),
            "is_reply": "replied_to" in refs or item.get("in_reply_to_user_id") is not None,
            "reply_to": refs.get("replied_to"),
            "is_quote": "quoted" in refs,
            "quote_of": refs.get("quoted"),
            "conversation_id": item.get("conversation_id"),
            "likes": metrics.get("like_count"),
            "reposts": metrics.get("retweet_count"),
            "replies": metrics.get("reply_count"),
            "quotes": metrics.get("quote_count"),
            "impressions": metrics.get("impression_count"),
            "bookmarks": metrics.get("bookmark_count"),
        }

    def to_reply(self, item, page: Page, task: FetchTask, fetched_at: datetime.datetime) -> BrandReply:
        refs = {r.get("type"): r.get("id") for r in item.get("referenced_tweets") or [] if isinstance(r, dict)}
        match = _FROM.search(task.query)
        handle = match.group(1) if match else task.query
        text = (item.get("note_tweet") or {}).get("text") or item["text"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text: empty")
        return BrandReply(
            id=self.item_id(item), platform=self.platform, brand_id=task.brand_id, handle=handle,
            created_at=parse_timestamp(item["created_at"]),
            in_reply_to_id=refs.get("replied_to"),
            in_reply_to_user_id=item.get("in_reply_to_user_id"),
            conversation_id=item.get("conversation_id"),
            text=text, url=f"https://x.com/{handle}/status/{item['id']}",
            fetched_at=fetched_at, query=task.query,
        )

    def fetch_account(self, task: FetchTask, now: datetime.datetime):
        where = f"x:account:{task.query}"
        response = None
        try:
            response = self.client.get_user(username=task.query, user_fields=["public_metrics", "created_at"])
            body = response.json()
            user = body.get("data") if isinstance(body, dict) else None
            if not isinstance(user, dict):
                errors = body.get("errors") if isinstance(body, dict) else None
                raise MalformedPage(f"no user in the answer{': ' + str(errors) if errors else ''}")
            metrics = user.get("public_metrics") or {}
            snapshot = AccountSnapshot(
                brand_id=task.brand_id, platform=self.platform, handle=user.get("username") or task.query,
                account_id=user.get("id"), followers=_count(metrics.get("followers_count")),
                following=_count(metrics.get("following_count")), posts=_count(metrics.get("tweet_count")),
                fetched_at=datetime.datetime.now(_UTC))
        except RateLimited as exc:
            yield TaskResult(task, STOPPED, str(exc))
            return
        except FetchError as exc:
            yield DeadPage("fetch", f"account could not be fetched: {exc}", exc.body, where)
            yield TaskResult(task, STOPPED, str(exc))
            return
        except Exception as exc:  # not only ValueError: an answer nested too deeply raises RecursionError
            reason = self.clean(f"malformed account: {type(exc).__name__}: {exc}", 2000)
            yield DeadPage("fetch", reason, self.clean(response.text if response is not None else "", 20_000), where)
            yield TaskResult(task, STOPPED, reason)
            return
        yield snapshot
        yield TaskResult(task, COMPLETE, pages=1, items=1)


def _count(value: typing.Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = int(value)
    if number < 0:
        raise ValueError(f"negative count {number}")
    return number
