"""Mastodon connector: hashtag timelines and full-text search on one configured instance.

Endpoints (Mastodon REST API, JSON):

- `GET /api/v1/timelines/tag/:hashtag` for each configured hashtag: public, no token
  needed; newest first, `limit` up to 40, paged with `max_id` (from the `Link: <...>;
  rel="next"` header) and bounded below with `since_id`;
- `GET /api/v2/search?type=statuses&q=...` for each brand name: full-text search of
  statuses needs a user access token (`MASTODON_ACCESS_TOKEN`, scope `read:search`)
  and an instance with search enabled; without a token only hashtags are fetched.

Mastodon ids are time-ordered ("snowflakes": milliseconds << 16), so a time range
becomes an id range and incremental runs keep `since_id` per query. Statuses carry
HTML; it is turned into plain text, keeping `@user` and `#tag` as the matcher expects.
Counts: favourites -> likes, reblogs -> reposts, replies -> replies, quotes when the
server reports them; the author's followers from the status' account.
"""

from __future__ import annotations

import datetime
import html
import html.parser
import typing
import urllib.parse

import requests

from connectors.base import (MENTIONS, Connector, FetchTask, MalformedPage, Page, Query, checked_id,
                             optional_access_token, parse_iso)
from connectors.files import parse_timestamp

TOKEN_ENV = "MASTODON_ACCESS_TOKEN"
MAX_LIMIT = 40


def snowflake_from_time(ts: datetime.datetime) -> int:
    """The smallest Mastodon id a status created at `ts` can have."""
    return int(ts.timestamp() * 1000) << 16


class _Text(html.parser.HTMLParser):
    """Collects the text of a status' HTML: paragraphs and <br> become line breaks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(content: str) -> str:
    """Plain text of a Mastodon status' `content` HTML."""
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    return html.unescape("".join(parser.parts)).strip()


class MastodonConnector(Connector):
    """Hashtag timelines and status search on one Mastodon instance."""

    name = "mastodon"
    platform = "mastodon"
    default_base_url = "https://mastodon.social"
    base_url_flag = "mastodon_instance"

    @classmethod
    def add_flags(cls, group):
        """--mastodon_instance."""
        group.add_argument("--mastodon_instance", default=None,
                           help="Mastodon instance to query (default https://mastodon.social).")

    @classmethod
    def load_credentials(cls, settings, opener=None):
        """An optional user access token ($MASTODON_ACCESS_TOKEN) enables full-text search."""
        return optional_access_token(TOKEN_ENV)

    @classmethod
    def queries(cls, brands, settings, credentials):
        out: list[Query] = []
        for brand in brands.brands:
            for tag in brand.hashtags:
                out.append(Query(f"{MENTIONS}:{brand.id}:#{tag}", MENTIONS, brand.id, f"#{tag}"))
            if credentials.get("access_token"):
                for name in brand.names or brand.handles:
                    out.append(Query(f"{MENTIONS}:{brand.id}:{name}", MENTIONS, brand.id, name))
        if not out:
            raise ValueError("--source mastodon: the config has no hashtags, and full-text search needs "
                             f"{TOKEN_ENV}: nothing to fetch")
        return out

    def _headers(self) -> dict:
        token = self.credentials.get("access_token")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _limit(self) -> int:
        return max(1, min(MAX_LIMIT, self.settings.page_size))

    def request_page(self, task: FetchTask, cursor: str | None) -> requests.Response:
        params: dict[str, typing.Any] = {"limit": self._limit()}
        end = parse_iso(task.end_time)
        max_id = cursor or task.until_id or (str(snowflake_from_time(end)) if end else None)
        if max_id:
            params["max_id"] = max_id
        if task.query.startswith("#"):
            start = parse_iso(task.start_time)
            since_id = task.since_id or (str(snowflake_from_time(start) - 1) if start else None)
            if since_id:
                params["since_id"] = since_id
            url = f"{self.base_url}/api/v1/timelines/tag/{urllib.parse.quote(task.query[1:], safe='')}"
        else:
            # Search has no lower bound parameter: the paging loop stops at the floor itself.
            params.update(q=task.query, type="statuses", resolve="false")
            url = f"{self.base_url}/api/v2/search"
        return self.http.request("GET", url, params=params, headers=self._headers())

    def parse_page(self, response: requests.Response, task: FetchTask) -> Page:
        body = response.json()
        if task.query.startswith("#"):
            if not isinstance(body, list):
                raise MalformedPage(f"expected a JSON array of statuses, got {type(body).__name__}")
            statuses = body
            next_url = (response.links.get("next") or {}).get("url")
            next_cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(next_url).query).get("max_id", [None])[0] \
                if next_url else None
        else:
            if not isinstance(body, dict) or not isinstance(body.get("statuses"), list):
                raise MalformedPage("expected an object with a 'statuses' array")
            statuses = body["statuses"]
            next_cursor = None
        if not all(isinstance(s, dict) for s in statuses):
            raise MalformedPage("a status is not a JSON object")
        if next_cursor is None and len(statuses) >= self._limit():
            next_cursor = str(statuses[-1].get("id"))
        return Page(statuses, next_cursor)

    def item_id(self, item) -> str:
        return checked_id(item, "id", str.isdigit, "a Mastodon status id")

    def item_time(self, item) -> datetime.datetime:
        return parse_timestamp(item["created_at"])

    def to_record(self, item, page: Page, task: FetchTask) -> dict:
        boosted = item.get("reblog")
        shown = boosted if isinstance(boosted, dict) else item
        text = html_to_text(shown.get("content") or "")
        if shown.get("spoiler_text"):
            text = f"{shown['spoiler_text']}\n\n{text}".strip()
        quote = shown.get("quote") if isinstance(shown.get("quote"), dict) else {}
        quoted = quote.get("quoted_status") if isinstance(quote.get("quoted_status"), dict) else {}
        lang = shown.get("language")
        return {
            "id": item["id"],
            "platform": self.platform,
            "text": text,
            "created_at": item["created_at"],
            "lang": lang.split("-")[0].lower() if isinstance(lang, str) and lang else None,
            "url": item.get("url") or item.get("uri"),
            "author_id": (item.get("account") or {}).get("id"),
            "author_handle": (item.get("account") or {}).get("acct"),
            "author_followers": (item.get("account") or {}).get("followers_count"),
            "is_repost": isinstance(boosted, dict),
            "repost_of": boosted.get("id") if isinstance(boosted, dict) else None,
            "is_reply": shown.get("in_reply_to_id") is not None,
            "reply_to": shown.get("in_reply_to_id"),
            "is_quote": bool(quoted) if "quote" in shown else None,  # servers before 4.4 do not say
            "quote_of": quoted.get("id"),
            "conversation_id": None,  # Mastodon exposes threads through /context, not on the status
            "likes": shown.get("favourites_count"),
            "reposts": shown.get("reblogs_count"),
            "replies": shown.get("replies_count"),
            "quotes": shown.get("quotes_count"),
            "impressions": None,
            "bookmarks": None,
        }
