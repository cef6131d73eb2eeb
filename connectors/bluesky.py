"""Bluesky connector: `app.bsky.feed.searchPosts` on the public AppView (or a PDS with a session).

Endpoint: `GET /xrpc/app.bsky.feed.searchPosts?q=...&sort=latest&limit=100&since=...&until=...&cursor=...`
-> `{"posts": [PostView], "cursor": "..."}`. `since` is inclusive and `until` exclusive,
both on the post's `sortAt` (the earlier of `createdAt` and `indexedAt`), which is
what incremental runs keep per query. One query per name (exact phrase when it is
not a single word) and per `#hashtag`, with `lang:xx` when languages are asked for.

No credentials are needed on `https://public.api.bsky.app`. Where search requires an
account, set `BLUESKY_HANDLE` and `BLUESKY_APP_PASSWORD` (an app password, not the
account password) and point `--bluesky_base_url` at the PDS (`https://bsky.social`):
a session is created with `com.atproto.server.createSession` and renewed once when
it expires. Ids are the posts' AT URIs. Counts: likeCount, repostCount, replyCount,
quoteCount (bookmarkCount when the AppView reports it); no follower counts (null).
"""

from __future__ import annotations

import datetime
import os
import re
import typing

import requests

from connectors.base import (MENTIONS, POSITION_TIME, Connector, FetchTask, MalformedPage, Page, Query, checked_id,
                             iso, parse_iso)
from connectors.files import parse_timestamp
from connectors.http import FetchError, check_secret

HANDLE_ENV = "BLUESKY_HANDLE"
PASSWORD_ENV = "BLUESKY_APP_PASSWORD"
SESSION_BASE_URL = "https://bsky.social"
MAX_LIMIT = 100
_BARE = re.compile(r"^\w+$")
_QUOTE_EMBEDS = ("app.bsky.embed.record#view", "app.bsky.embed.record", "app.bsky.embed.recordWithMedia#view",
                 "app.bsky.embed.recordWithMedia")


def _term(name: str) -> str:
    text = re.sub(r"\s+", " ", name.replace('"', " ")).strip()
    return text if _BARE.match(text) else f'"{text}"'


class BlueskyConnector(Connector):
    """Bluesky post search."""

    name = "bluesky"
    platform = "bluesky"
    default_base_url = "https://public.api.bsky.app"
    base_url_flag = "bluesky_base_url"
    signed_in_base_url = SESSION_BASE_URL
    signed_in_credential = "password"
    position_kind = POSITION_TIME

    @classmethod
    def add_flags(cls, group):
        """--bluesky_base_url."""
        group.add_argument("--bluesky_base_url", default=None,
                           help="Bluesky XRPC root (default https://public.api.bsky.app, or https://bsky.social "
                                "with $BLUESKY_HANDLE / $BLUESKY_APP_PASSWORD).")

    def __init__(self, settings, credentials=None, http=None):
        super().__init__(settings, credentials, http)
        self._access_jwt: str | None = None

    @classmethod
    def load_credentials(cls, settings, opener=None):
        """Optional: $BLUESKY_HANDLE and $BLUESKY_APP_PASSWORD for an authenticated session."""
        handle = os.environ.get(HANDLE_ENV, "").strip()
        password = check_secret(os.environ.get(PASSWORD_ENV, ""), f"${PASSWORD_ENV}")
        if bool(handle) != bool(password):
            raise ValueError(f"--source bluesky: set both {HANDLE_ENV} and {PASSWORD_ENV}, or neither")
        return {"handle": handle, "password": password} if handle else {}

    @classmethod
    def queries(cls, brands, settings, credentials):
        out: list[Query] = []
        for brand in brands.brands:
            terms = [_term(n) for n in brand.names] + [f"#{t}" for t in brand.hashtags]
            for term in terms or [_term(h) for h in brand.handles]:
                for text in ([f"{term} lang:{code}" for code in settings.langs] or [term]):
                    out.append(Query(f"{MENTIONS}:{brand.id}:{text}", MENTIONS, brand.id, text))
        return out

    def _session_headers(self, renew: bool = False) -> dict:
        if not self.credentials.get("password"):
            return {}
        if self._access_jwt is None or renew:
            response = self.http.request(
                "POST", f"{self.base_url}/xrpc/com.atproto.server.createSession",
                json={"identifier": self.credentials["handle"], "password": self.credentials["password"]})
            session = response.json()
            tokens = [session.get(k) if isinstance(session, dict) else None for k in ("accessJwt", "refreshJwt")]
            for token in tokens:
                if isinstance(token, str):
                    self.http.add_secret(token)
            if not isinstance(tokens[0], str) or not tokens[0]:
                raise FetchError("createSession answered without an access token", response.status_code)
            self._access_jwt = tokens[0]
        return {"Authorization": f"Bearer {self._access_jwt}"}

    def request_page(self, task: FetchTask, cursor: str | None) -> requests.Response:
        params: dict[str, typing.Any] = {"q": task.query, "sort": "latest",
                                                "limit": max(1, min(MAX_LIMIT, self.settings.page_size))}
        start, end = parse_iso(task.start_time), parse_iso(task.end_time)
        if start:
            params["since"] = iso(start)
        if end:
            params["until"] = iso(end)
        if cursor:
            params["cursor"] = cursor
        url = f"{self.base_url}/xrpc/app.bsky.feed.searchPosts"
        try:
            return self.http.request("GET", url, params=params, headers=self._session_headers())
        except FetchError as exc:
            if exc.status in (400, 401) and "xpired" in exc.body and self.credentials.get("password"):
                return self.http.request("GET", url, params=params, headers=self._session_headers(renew=True))
            raise

    def parse_page(self, response: requests.Response, task: FetchTask) -> Page:
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("posts"), list):
            raise MalformedPage("expected an object with a 'posts' array")
        if not all(isinstance(p, dict) for p in body["posts"]):
            raise MalformedPage("a post is not a JSON object")
        cursor = body.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise MalformedPage("'cursor' is not a string")
        return Page(body["posts"], cursor or None)

    def item_id(self, item) -> str:
        return checked_id(item, "uri", lambda v: v.startswith("at://"), "an AT URI")

    def item_time(self, item) -> datetime.datetime:
        created = parse_timestamp(item["record"]["createdAt"], "record.createdAt")
        indexed = item.get("indexedAt")
        return min(created, parse_timestamp(indexed, "indexedAt")) if indexed else created

    def to_record(self, item, page: Page, task: FetchTask) -> dict:
        record = item["record"]
        author = item.get("author") or {}
        uri = self.item_id(item)
        reply = record.get("reply") if isinstance(record.get("reply"), dict) else None
        embed = item.get("embed") if isinstance(item.get("embed"), dict) else {}
        quote_of = None
        if embed.get("$type") in _QUOTE_EMBEDS:
            inner = embed.get("record") or {}
            # recordWithMedia nests the quoted record one level deeper.
            quote_of = (inner.get("record") or {}).get("uri") if "record" in inner else inner.get("uri")
        langs = record.get("langs") or []
        handle = author.get("handle")
        rkey = uri.rsplit("/", 1)[-1]
        return {
            "id": uri,
            "platform": self.platform,
            "text": record.get("text"),
            "created_at": record["createdAt"],
            "lang": langs[0].split("-")[0].lower() if langs and isinstance(langs[0], str) else None,
            "url": f"https://bsky.app/profile/{handle or author.get('did')}/post/{rkey}",
            "author_id": author.get("did"),
            "author_handle": handle,
            "author_followers": None,
            "is_repost": False,  # search returns posts, never reposts
            "repost_of": None,
            "is_reply": reply is not None,
            "reply_to": ((reply or {}).get("parent") or {}).get("uri"),
            "is_quote": quote_of is not None,
            "quote_of": quote_of,
            "conversation_id": ((reply or {}).get("root") or {}).get("uri") or uri,
            "likes": item.get("likeCount"),
            "reposts": item.get("repostCount"),
            "replies": item.get("replyCount"),
            "quotes": item.get("quoteCount"),
            "impressions": None,
            "bookmarks": item.get("bookmarkCount"),
        }
