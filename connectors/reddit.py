"""Reddit connector: the site-wide search listing, newest first.

Endpoint: `GET /search.json?q=...&sort=new&type=link&limit=100&after=...` (a
`Listing`: `data.children[].data` are posts, `data.after` the next page's cursor).
Without credentials it uses `https://www.reddit.com` (a low, per-IP rate limit); with
an OAuth application token in `REDDIT_ACCESS_TOKEN` it uses `https://oauth.reddit.com`
(100 requests per minute per client). Reddit asks every client for a descriptive
User-Agent (`HttpPolicy.user_agent`).

The listing has no time-range or since-id parameter, so bounds are applied while
paging (newest first; it stops at the first post older than the floor) and a
backfill is one task rather than one per slice. Incremental runs keep the newest
post time per query. Search covers posts (title + body), not comments; a listing
goes at most ~1000 posts deep. Counts: upvotes -> likes, comments -> replies,
crossposts -> reposts; Reddit reports no follower counts or quotes (null).
"""

from __future__ import annotations

import datetime
import re
import typing

import requests

from connectors.base import (MENTIONS, POSITION_TIME, Connector, FetchTask, MalformedPage, Page, Query, checked_id,
                             optional_access_token)
from connectors.files import parse_timestamp

TOKEN_ENV = "REDDIT_ACCESS_TOKEN"
OAUTH_BASE_URL = "https://oauth.reddit.com"
MAX_LIMIT = 100
_BARE = re.compile(r"^\w+$")


def _term(name: str) -> str:
    text = re.sub(r"\s+", " ", name.replace('"', " ")).strip()
    return text if _BARE.match(text) else f'"{text}"'


def build_search_queries(brand: typing.Any, max_length: int = 512) -> list[str]:
    """Reddit search queries for one brand: its names (or handles/hashtags as words) OR-ed, split to fit.

    Raises:
        ValueError: when one term alone does not fit.
    """
    terms: list[str] = []
    for term in [_term(n) for n in (brand.names or tuple(brand.handles) + tuple(brand.hashtags))]:
        if term.lower() not in {t.lower() for t in terms}:
            terms.append(term)
    queries: list[str] = []
    group: list[str] = []
    for term in terms:
        if len(term) > max_length:
            raise ValueError(f"brand {brand.id!r}: the term {term} is longer than {max_length} characters")
        if group and len(" OR ".join(group + [term])) > max_length:
            queries.append(" OR ".join(group))
            group = []
        group.append(term)
    if group:
        queries.append(" OR ".join(group))
    return queries


class RedditConnector(Connector):
    """Reddit search listing."""

    name = "reddit"
    platform = "reddit"
    default_base_url = "https://www.reddit.com"
    base_url_flag = "reddit_base_url"
    signed_in_base_url = OAUTH_BASE_URL
    signed_in_credential = "access_token"
    position_kind = POSITION_TIME
    supports_time_range = False

    @classmethod
    def add_flags(cls, group):
        """--reddit_base_url."""
        group.add_argument("--reddit_base_url", default=None,
                           help="Reddit API root (default https://www.reddit.com, or https://oauth.reddit.com "
                                "with $REDDIT_ACCESS_TOKEN).")

    @classmethod
    def load_credentials(cls, settings, opener=None):
        """An optional OAuth token ($REDDIT_ACCESS_TOKEN) raises the rate limit."""
        return optional_access_token(TOKEN_ENV)

    @classmethod
    def queries(cls, brands, settings, credentials):
        return [Query(f"{MENTIONS}:{brand.id}:{text}", MENTIONS, brand.id, text)
                for brand in brands.brands
                for text in build_search_queries(brand, settings.max_query_length)]

    def request_page(self, task: FetchTask, cursor: str | None) -> requests.Response:
        params = {"q": task.query, "sort": "new", "t": "all", "type": "link", "raw_json": 1,
                  "limit": max(1, min(MAX_LIMIT, self.settings.page_size))}
        if cursor:
            params["after"] = cursor
        token = self.credentials.get("access_token")
        headers = {"Authorization": f"bearer {token}"} if token else {}
        return self.http.request("GET", f"{self.base_url}/search.json", params=params, headers=headers)

    def parse_page(self, response: requests.Response, task: FetchTask) -> Page:
        body = response.json()
        if not isinstance(body, dict) or body.get("kind") != "Listing" or not isinstance(body.get("data"), dict):
            raise MalformedPage("expected a Listing object")
        children = body["data"].get("children")
        if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
            raise MalformedPage("'data.children' is not a list of things")
        posts = [c.get("data") for c in children if c.get("kind") == "t3"]
        if not all(isinstance(p, dict) for p in posts):
            raise MalformedPage("a post has no 'data' object")
        after = body["data"].get("after")
        if after is not None and not isinstance(after, str):
            raise MalformedPage("'data.after' is not a string")
        return Page(posts, after)

    def item_id(self, item) -> str:
        return checked_id(item, "name", lambda v: v.startswith("t3_"), "a Reddit post fullname")

    def item_time(self, item) -> datetime.datetime:
        return parse_timestamp(item["created_utc"], "created_utc")

    def to_record(self, item, page: Page, task: FetchTask) -> dict:
        title = (item.get("title") or "").strip()
        body = (item.get("selftext") or "").strip()
        author = item.get("author")
        ups = item.get("ups")
        if ups is None and isinstance(item.get("score"), int) and item["score"] >= 0:
            ups = item["score"]
        permalink = item.get("permalink")
        return {
            "id": self.item_id(item),
            "platform": self.platform,
            "text": f"{title}\n\n{body}" if body else title,
            "created_at": item["created_utc"],
            "lang": None,
            "url": f"https://www.reddit.com{permalink}" if permalink else item.get("url"),
            "author_id": item.get("author_fullname"),
            "author_handle": None if author in (None, "[deleted]") else author,
            "author_followers": None,
            "is_repost": bool(item.get("crosspost_parent")),
            "repost_of": item.get("crosspost_parent"),
            "is_reply": False,
            "reply_to": None,
            "is_quote": False,
            "quote_of": None,
            "conversation_id": self.item_id(item),
            "likes": ups,
            "reposts": item.get("num_crossposts"),
            "replies": item.get("num_comments"),
            "quotes": None,
            "impressions": item.get("view_count"),
            "bookmarks": None,
        }
