"""Fake X, Mastodon, Reddit and Bluesky servers on 127.0.0.1, serving the platforms' real response formats.

Each fake is a real HTTP server (`ThreadingHTTPServer` on an ephemeral loopback port)
holding a small dataset of posts in the platform's own JSON shape (written from the
public API docs: X API v2 search, Mastodon statuses and `Link` paging, Reddit
listings, Bluesky `app.bsky.feed.searchPosts`), with the platform's query filters,
cursors and rate-limit headers. Faults are injected per page and query:

    fake.inject("rate_limit", page=2, reset_in=1)     # 429 with the platform's reset header
    fake.inject("status", page=1, status=503, times=2) # 5xx, twice
    fake.inject("slow", page=2, seconds=3.0)          # answers after a delay
    fake.inject("malformed", page=3)                  # 200 with a truncated JSON body

and the chaos faults of a hostile network or proxy:

    fake.inject("reset", page=2)          # headers and half the body, then a TCP reset
    fake.inject("trickle", page=2)        # 40 bytes every 0.25 s of a body that never ends
    fake.inject("slow_headers", page=2)   # the status line, then one byte of a header every 0.25 s
    fake.inject("loop", page=2)           # the page's next cursor is the cursor it was asked with
    fake.inject("html", page=2)           # 200 with an HTML error page (echoing the Authorization header)
    fake.inject("echo", page=2, times=3)  # 502 whose reason phrase and body echo the Authorization header
    fake.inject("gzip_bomb", page=2)      # 200, Content-Encoding gzip: ~100 KB inflating to 100 MiB

Every server answers at most `max_requests` requests (then 503 and `overflow` is
set) and is shut down by `serve()`'s finaliser. `served` counts how often each post
id went out, so tests can assert that every post was fetched exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import http.server
import json
import re
import socket
import struct
import threading
import time
import typing
import urllib.parse
from dataclasses import dataclass

UTC = datetime.timezone.utc
X_EPOCH_MS = 1288834974657
TOKEN = "AAAAAAAAAAAAAAAAAAAAAFakeBearerToken0123456789SECRET"


@dataclass
class Fault:
    # rate_limit | status | slow | malformed | reset | trickle | slow_headers | loop | html | echo | gzip_bomb
    kind: str
    page: int | None = None
    query: str | None = None
    times: int = 1
    status: int = 503
    seconds: float = 0.0
    reset_in: float = 1.0


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class Chaos(typing.NamedTuple):
    """An answer that `Handler` writes itself: cut by a reset, trickled, or with a reason phrase of its own."""

    kind: str  # reset | trickle | slow_headers | plain
    reason: str | None = None


Response = tuple[int, dict[str, str], bytes, float | Chaos]
TRICKLE_BYTES, TRICKLE_EVERY_S, TRICKLE_FOR_AT_MOST_S = 40, 0.25, 120.0
BOMB_MIB = 100


def _json(status: int, body: typing.Any, headers: dict | None = None) -> Response:
    # A lone surrogate goes out as the JSON escape `\\udXXX`, as the platforms send it.
    return status, dict({"Content-Type": "application/json; charset=utf-8"}, **(headers or {})), \
        json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace"), 0.0


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A gzip stream of ~100 KB that inflates to BOMB_MIB MiB of zeros (built once per test session)."""
    import zlib

    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join([packer.compress(block) for _ in range(BOMB_MIB)] + [packer.flush()])


def iso_z(ts: datetime.datetime, ms: bool = True) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime:
    ts = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


_TOKEN_RE = re.compile(r'"([^"]+)"|(\S+)')


def query_terms(text: str) -> list[str]:
    """Terms of a simple OR query: quoted phrases and bare words; operators and parentheses dropped."""
    terms = []
    for phrase, word in _TOKEN_RE.findall(text.replace("(", " ").replace(")", " ")):
        term = phrase or word
        if term.upper() in ("OR", "AND") or term.startswith("-") or (":" in term and not phrase):
            continue
        terms.append(term)
    return terms


def matches(text: str, terms: typing.Sequence[str]) -> bool:
    low = text.casefold()
    for term in terms:
        t = term.casefold()
        if t[:1] in "@#":
            if re.search(r"(?<!\w)" + re.escape(t) + r"(?!\w)", low):
                return True
        elif re.search(r"(?<!\w)" + re.escape(t) + r"(?!\w)", low):
            return True
    return False


class FakePlatform:
    """A platform's fake API: subclasses implement `route`."""

    name = "fake"

    def __init__(self, max_requests: int = 400):
        self.max_requests = max_requests
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.served: typing.Counter[str] = collections.Counter()
        self.overflow = False
        self.url = ""
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> "FakePlatform":
        platform = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self):
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError):
                    pass  # a client that dropped a connection it had stopped reading (a bomb, a trickle)

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

            def _dispatch(self, method):
                url = urllib.parse.urlsplit(self.path)
                params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload, delay = platform.handle(method, url.path, params, dict(self.headers), body)
                if isinstance(delay, Chaos):
                    self._chaos(status, headers, payload, delay)
                    return
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of a slow answer

            def _chaos(self, status, headers, payload, chaos):
                self.close_connection = True
                try:
                    if chaos.kind == "slow_headers":  # a header line that never ends
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                        stop_at = time.monotonic() + TRICKLE_FOR_AT_MOST_S
                        while not platform.stopping.is_set() and time.monotonic() < stop_at:
                            self.wfile.write(b"a")
                            self.wfile.flush()
                            platform.stopping.wait(TRICKLE_EVERY_S)
                        return
                    self.send_response(status, chaos.reason)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    if chaos.kind == "trickle":  # announces far more than it will ever send
                        self.send_header("Content-Length", str(10 ** 9))
                        self.end_headers()
                        stop_at = time.monotonic() + TRICKLE_FOR_AT_MOST_S
                        while not platform.stopping.is_set() and time.monotonic() < stop_at:
                            self.wfile.write(b" " * TRICKLE_BYTES)
                            self.wfile.flush()
                            platform.stopping.wait(TRICKLE_EVERY_S)
                        return
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if chaos.kind == "reset":
                        self.wfile.write(payload[: len(payload) // 2])
                        self.wfile.flush()
                        # SO_LINGER 0: close() sends a TCP reset instead of a clean end of stream.
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        return
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (its deadline): that is the point of a trickle

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # ---- faults ----

    def inject(self, kind: str, *, page: int | None = None, query: str | None = None,
               times: int = 1, **kw) -> None:
        """Adds a fault served `times` times on `page` (1-based) of queries containing `query`."""
        self.faults.append(Fault(kind, page, query, times, **kw))

    def _fault(self, page: int, query: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.page in (None, page) and (fault.query is None or fault.query in query):
                    fault.times -= 1
                    return fault
        return None

    def rate_limit_headers(self, reset_epoch: float) -> dict[str, str]:
        return {"Retry-After": str(max(0, int(reset_epoch - time.time())))}

    def apply(self, page: int, query: str, normal: typing.Callable[..., Response],
              headers: dict | None = None) -> Response:
        """Serves the page, or the fault injected for it.

        `normal(loop=False)` builds the page; with loop=True its next cursor is the one it was asked with.
        """
        fault = self._fault(page, query)
        if fault is None:
            return normal()
        echoed = (headers or {}).get("Authorization", "")
        if fault.kind == "reset":
            status, hdrs, body, _ = normal()
            return status, hdrs, body, Chaos("reset")
        if fault.kind in ("trickle", "slow_headers"):
            return 200, {"Content-Type": "application/json; charset=utf-8"}, b"", Chaos(fault.kind)
        if fault.kind == "loop":
            return normal(loop=True)
        if fault.kind == "html":
            page_html = (f"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                         f"<h1>Bad Gateway</h1><p>upstream request: Authorization: {echoed}</p></body></html>")
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page_html.encode(), 0.0
        if fault.kind == "echo":
            # The header straddles character 2,000 of the body, where an excerpt used to be cut.
            text = "x" * (2000 - len("Authorization: ") - len(echoed) // 2) + f"Authorization: {echoed} " + "y" * 500
            return 502, {"Content-Type": "text/plain"}, text.encode(), Chaos("plain", f"Bad Gateway ({echoed})")
        if fault.kind == "gzip_bomb":
            return 200, {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"}, \
                gzip_bomb(), 0.0
        if fault.kind == "rate_limit":
            return _json(429, self.error_body(429, "Too Many Requests"),
                         self.rate_limit_headers(time.time() + fault.reset_in))
        if fault.kind == "status":
            return _json(fault.status, self.error_body(fault.status, "Service Unavailable"))
        if fault.kind == "slow":
            status, hdrs, body, _ = normal()
            return status, hdrs, body, fault.seconds
        if fault.kind == "malformed":
            status, hdrs, body, _ = normal()
            return 200, hdrs, body[: max(20, len(body) // 3)] + f' "debug": "{echoed}'.encode(), 0.0
        raise ValueError(fault.kind)

    def error_body(self, status: int, title: str) -> typing.Any:
        return {"error": title}

    # ---- dispatch ----

    def handle(self, method: str, path: str, params: dict, headers: dict, body: bytes) -> Response:
        with self._lock:
            self.requests.append(Request(method, path, params, headers))
            if len(self.requests) > self.max_requests:
                self.overflow = True
                return _json(503, {"error": "fake server request budget exhausted"})
        route = self.route(method, path)
        if route is None:
            return _json(404, self.error_body(404, "Not Found"))
        return route(path, params, headers, body)

    def route(self, method: str, path: str):
        raise NotImplementedError

    def search_requests(self) -> list[Request]:
        return [r for r in self.requests if self.is_search(r.path)]

    def is_search(self, path: str) -> bool:
        return False


@contextlib.contextmanager
def serve(platform: FakePlatform) -> typing.Iterator[FakePlatform]:
    """Starts the fake, yields it, and always shuts it down."""
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


# ---- X API v2 ------------------------------------------------------------------------------------

def x_id(ts: datetime.datetime, seq: int) -> str:
    return str(((int(ts.timestamp() * 1000) - X_EPOCH_MS) << 22) | (seq & 0xFFF))


def x_time(post_id: str) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(((int(post_id) >> 22) + X_EPOCH_MS) / 1000, UTC)


class FakeX(FakePlatform):
    """`/2/tweets/search/recent|all` and `/2/users/by/username/:username` with bearer auth."""

    name = "x"

    def __init__(self, tweets: typing.Sequence[dict], users: typing.Sequence[dict], token: str = TOKEN, **kw):
        super().__init__(**kw)
        self.tweets = sorted(tweets, key=lambda t: int(t["id"]), reverse=True)
        self.users = {u["id"]: u for u in users}
        self.token = token

    def is_search(self, path):
        return path.startswith("/2/tweets/search/")

    def error_body(self, status, title):
        if status == 429:
            return {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                    "status": 429}
        return {"title": title, "detail": title, "type": "about:blank", "status": status}

    def rate_limit_headers(self, reset_epoch):
        return {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(reset_epoch) + (1 if reset_epoch % 1 else 0))}

    def route(self, method, path):
        if method == "GET" and path in ("/2/tweets/search/recent", "/2/tweets/search/all"):
            return self._search
        if method == "GET" and path.startswith("/2/users/by/username/"):
            return self._user
        return None

    def _unauthorized(self, headers) -> Response | None:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return _json(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                               "detail": "Unauthorized"})
        return None

    def _invalid(self, message: str) -> Response:
        return _json(400, {"errors": [{"parameters": {}, "message": message}], "title": "Invalid Request",
                           "detail": "One or more parameters to your request was invalid.",
                           "type": "https://api.twitter.com/2/problems/invalid-request"})

    def select(self, query: str) -> list[dict]:
        by_name = {u["username"].casefold(): uid for uid, u in self.users.items()}
        out = self.tweets
        replies = re.search(r"from:(\w+)", query)
        if replies:
            uid = by_name.get(replies.group(1).casefold())
            out = [t for t in out if t["author_id"] == uid]
            if "is:reply" in query:
                out = [t for t in out if any(r["type"] == "replied_to" for r in t.get("referenced_tweets", []))]
            return out
        terms = query_terms(query)
        out = [t for t in out if matches(t["text"], terms)]
        if "-is:retweet" in query:
            out = [t for t in out if not any(r["type"] == "retweeted" for r in t.get("referenced_tweets", []))]
        langs = re.findall(r"lang:(\w+)", query)
        if langs:
            out = [t for t in out if t.get("lang") in langs]
        return out

    def _search(self, path, params, headers, body):
        denied = self._unauthorized(headers)
        if denied:
            return denied
        query = params.get("query")
        if not query:
            return self._invalid("The `query` query parameter can not be empty")
        if len(query) > 512:
            return self._invalid(f"The `query` parameter is too long: {len(query)} > 512")
        limit = int(params.get("max_results", 10))
        if not 10 <= limit <= (100 if path.endswith("recent") else 500):
            return self._invalid("The `max_results` query parameter value is not between 10 and 100")
        now = datetime.datetime.now(UTC)
        posts = self.select(query)
        if "since_id" in params:
            if path.endswith("recent") and x_time(params["since_id"]) < now - datetime.timedelta(days=7):
                return self._invalid("Invalid 'since_id': it must be a post id created in the last 7 days")
            posts = [t for t in posts if int(t["id"]) > int(params["since_id"])]
        if "until_id" in params:
            posts = [t for t in posts if int(t["id"]) < int(params["until_id"])]
        if "start_time" in params:
            start = parse_time(params["start_time"])
            if path.endswith("recent") and start < now - datetime.timedelta(days=7):
                return self._invalid("Invalid 'start_time': must be on or after 7 days ago")
            posts = [t for t in posts if parse_time(t["created_at"]) >= start]
        if "end_time" in params:
            end = parse_time(params["end_time"])
            if end > now - datetime.timedelta(seconds=10):
                return self._invalid("Invalid 'end_time': must be a minimum of 10 seconds prior to the request time")
            posts = [t for t in posts if parse_time(t["created_at"]) < end]
        token = params.get("next_token")
        offset = int(token[3:]) if token else 0
        page_posts = posts[offset: offset + limit]
        page = offset // limit + 1
        fields = set((params.get("tweet.fields") or "").split(","))

        def normal(loop: bool = False) -> Response:
            if not page_posts:
                return _json(200, {"meta": {"result_count": 0}}, self.rate_limit_headers(time.time() + 900))
            data = []
            for t in page_posts:
                self.served[t["id"]] += 1
                data.append({k: v for k, v in t.items()
                             if k in ("id", "text", "edit_history_tweet_ids") or k in fields})
            authors = {t["author_id"] for t in page_posts}
            meta = {"newest_id": page_posts[0]["id"], "oldest_id": page_posts[-1]["id"],
                    "result_count": len(page_posts)}
            if loop and token:
                meta["next_token"] = token
            elif offset + limit < len(posts):
                meta["next_token"] = f"b26{offset + limit}"
            body = {"data": data, "meta": meta}
            if "author_id" in (params.get("expansions") or ""):
                body["includes"] = {"users": [self.users[a] for a in sorted(authors) if a in self.users]}
            return _json(200, body, {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449",
                                     "x-rate-limit-reset": str(int(time.time()) + 900)})

        return self.apply(page, query, normal, headers)

    def _user(self, path, params, headers, body):
        denied = self._unauthorized(headers)
        if denied:
            return denied
        username = path.rsplit("/", 1)[-1]
        for user in self.users.values():
            if user["username"].casefold() == username.casefold():
                return self.apply(1, f"user:{username}", lambda: _json(200, {"data": user}), headers)
        return _json(200, {"errors": [{"value": username, "detail": f"Could not find user with username: "
                                       f"[{username}].", "title": "Not Found Error", "resource_type": "user",
                                       "parameter": "username", "resource_id": username,
                                       "type": "https://api.twitter.com/2/problems/resource-not-found"}]})


def x_user(uid: str, username: str, followers: int) -> dict:
    return {"id": uid, "name": username.title(), "username": username,
            "public_metrics": {"followers_count": followers, "following_count": 12, "tweet_count": 3400,
                               "listed_count": 7, "like_count": 99}}


def x_tweet(post_id: str, text: str, created: datetime.datetime, author_id: str, *, lang: str = "en",
            metrics: dict | None = None, refs: typing.Sequence[tuple[str, str]] = (),
            reply_to_user: str | None = None, conversation_id: str | None = None) -> dict:
    tweet = {
        "id": post_id, "text": text, "edit_history_tweet_ids": [post_id], "author_id": author_id,
        "created_at": iso_z(created), "lang": lang, "conversation_id": conversation_id or post_id,
        "public_metrics": metrics if metrics is not None else {
            "retweet_count": 1, "reply_count": 2, "like_count": 3, "quote_count": 0, "bookmark_count": 1,
            "impression_count": 120},
    }
    entities = {}
    tags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in re.finditer(r"#(\w+)", text)]
    mentions = [{"start": m.start(), "end": m.end(), "username": m.group(1), "id": "9"}
                for m in re.finditer(r"@(\w+)", text)]
    if tags:
        entities["hashtags"] = tags
    if mentions:
        entities["mentions"] = mentions
    if entities:
        tweet["entities"] = entities
    if refs:
        tweet["referenced_tweets"] = [{"type": kind, "id": rid} for kind, rid in refs]
    if reply_to_user:
        tweet["in_reply_to_user_id"] = reply_to_user
    return tweet


# ---- Mastodon ------------------------------------------------------------------------------------

def mastodon_id(ts: datetime.datetime, seq: int) -> str:
    return str((int(ts.timestamp() * 1000) << 16) | (seq & 0xFFFF))


def mastodon_status(status_id: str, html_content: str, created: datetime.datetime, *, tags: typing.Sequence[str],
                    acct: str = "alice", followers: int = 42, language: str = "en",
                    in_reply_to_id: str | None = None, base: str = "https://mastodon.example") -> dict:
    return {
        "id": status_id, "created_at": iso_z(created), "in_reply_to_id": in_reply_to_id,
        "in_reply_to_account_id": "7" if in_reply_to_id else None, "sensitive": False, "spoiler_text": "",
        "visibility": "public", "language": language, "uri": f"{base}/users/{acct}/statuses/{status_id}",
        "url": f"{base}/@{acct}/{status_id}", "replies_count": 1, "reblogs_count": 2, "favourites_count": 5,
        "edited_at": None, "content": html_content, "reblog": None,
        "account": {"id": str(abs(hash(acct)) % 10**6), "username": acct, "acct": acct,
                    "display_name": acct.title(), "followers_count": followers, "following_count": 3,
                    "statuses_count": 10, "url": f"{base}/@{acct}"},
        "media_attachments": [], "mentions": [], "emojis": [], "card": None, "poll": None,
        "tags": [{"name": t.lower(), "url": f"{base}/tags/{t.lower()}"} for t in tags],
    }


class FakeMastodon(FakePlatform):
    """`/api/v1/timelines/tag/:hashtag` (Link paging) and `/api/v2/search` (token required for statuses)."""

    name = "mastodon"

    def __init__(self, statuses: typing.Sequence[dict], token: str | None = None, **kw):
        super().__init__(**kw)
        self.statuses = sorted(statuses, key=lambda s: int(s["id"]), reverse=True)
        self.token = token

    def is_search(self, path):
        return path.startswith("/api/v1/timelines/tag/") or path == "/api/v2/search"

    def rate_limit_headers(self, reset_epoch):
        reset = datetime.datetime.fromtimestamp(reset_epoch, UTC)
        return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds").replace("+00:00", "Z")}

    def route(self, method, path):
        if method == "GET" and path.startswith("/api/v1/timelines/tag/"):
            return self._tag
        if method == "GET" and path == "/api/v2/search":
            return self._search
        return None

    def _window(self, statuses, params):
        if "since_id" in params:
            statuses = [s for s in statuses if int(s["id"]) > int(params["since_id"])]
        if "max_id" in params:
            statuses = [s for s in statuses if int(s["id"]) < int(params["max_id"])]
        return statuses

    def select(self, query: str) -> list[dict]:
        """Every status a hashtag timeline ('#tag') or a search returns, newest first."""
        from html import unescape

        if query.startswith("#"):
            return [s for s in self.statuses if query[1:].casefold() in {t["name"] for t in s["tags"]}]
        return [s for s in self.statuses
                if matches(unescape(re.sub(r"<[^>]+>", "", s["content"])), query_terms(query))]

    def _tag(self, path, params, headers, body):
        tag = urllib.parse.unquote(path.rsplit("/", 1)[-1]).casefold()
        limit = min(40, int(params.get("limit", 20)))
        everything = self.select(f"#{tag}")
        window = self._window(everything, params)
        page_items = window[:limit]
        page = 1 + (len(everything) - len(window)) // limit if "max_id" in params else 1

        def normal(loop: bool = False):
            for s in page_items:
                self.served[s["id"]] += 1
            links = []
            if page_items:
                next_id = params["max_id"] if loop and "max_id" in params else page_items[-1]["id"]
                links.append(f'<{self.url}{path}?max_id={next_id}>; rel="next"')
                links.append(f'<{self.url}{path}?min_id={page_items[0]["id"]}>; rel="prev"')
            hdrs = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299"}
            if links:
                hdrs["Link"] = ", ".join(links)
            return _json(200, page_items, hdrs)

        return self.apply(page, f"#{tag}", normal, headers)

    def _search(self, path, params, headers, body):
        query = params.get("q", "")
        limit = min(40, int(params.get("limit", 20)))
        if self.token is None or headers.get("Authorization") != f"Bearer {self.token}":
            return _json(200, {"accounts": [], "statuses": [], "hashtags": []})
        everything = self.select(query)
        window = self._window(everything, params)
        page_items = window[:limit]
        page = 1 + (len(everything) - len(window)) // limit if "max_id" in params else 1

        def normal(loop: bool = False):
            items = everything[:limit] if loop else page_items
            for s in items:
                self.served[s["id"]] += 1
            return _json(200, {"accounts": [], "statuses": items, "hashtags": []})

        return self.apply(page, query, normal, headers)


# ---- Reddit --------------------------------------------------------------------------------------

def reddit_post(base36: str, title: str, created: datetime.datetime, *, selftext: str = "", ups: int = 10,
                comments: int = 3, subreddit: str = "soda", author: str = "bob") -> dict:
    return {
        "kind": "t3",
        "data": {
            "id": base36, "name": f"t3_{base36}", "title": title, "selftext": selftext, "author": author,
            "author_fullname": f"t2_{author}", "subreddit": subreddit, "subreddit_name_prefixed": f"r/{subreddit}",
            "created_utc": float(int(created.timestamp())), "permalink": f"/r/{subreddit}/comments/{base36}/x/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{base36}/x/", "score": ups, "ups": ups,
            "downs": 0, "upvote_ratio": 0.9, "num_comments": comments, "num_crossposts": 0, "over_18": False,
            "view_count": None, "is_self": bool(selftext),
        },
    }


class FakeReddit(FakePlatform):
    """`/search.json` listings (`after` paging), with Reddit's `x-ratelimit-*` headers (reset in seconds)."""

    name = "reddit"

    def __init__(self, things: typing.Sequence[dict], token: str | None = None, **kw):
        super().__init__(**kw)
        self.things = sorted(things, key=lambda t: t["data"]["created_utc"], reverse=True)
        self.token = token

    def is_search(self, path):
        return path == "/search.json"

    def rate_limit_headers(self, reset_epoch):
        return {"x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0",
                "x-ratelimit-reset": str(max(0, round(reset_epoch - time.time(), 1)))}

    def error_body(self, status, title):
        return {"message": title, "error": status}

    def route(self, method, path):
        return self._search if method == "GET" and path == "/search.json" else None

    def select(self, query: str) -> list[dict]:
        """Every post the search returns, newest first (the `data` objects)."""
        terms = query_terms(query)
        return [t["data"] for t in self.things if matches(t["data"]["title"] + " " + t["data"]["selftext"], terms)]

    def _search(self, path, params, headers, body):
        if "social-listening" not in headers.get("User-Agent", ""):
            return _json(429, {"message": "Too Many Requests", "error": 429})
        if self.token and headers.get("Authorization") != f"bearer {self.token}":
            return _json(401, {"message": "Unauthorized", "error": 401})
        query = params.get("q", "")
        limit = min(100, int(params.get("limit", 25)))
        selected = {d["name"] for d in self.select(query)}
        everything = [t for t in self.things if t["data"]["name"] in selected]
        offset = 0
        if params.get("after"):
            names = [t["data"]["name"] for t in everything]
            offset = names.index(params["after"]) + 1 if params["after"] in names else len(everything)
        page_items = everything[offset: offset + limit]
        page = offset // limit + 1

        def normal(loop: bool = False):
            for t in page_items:
                self.served[t["data"]["name"]] += 1
            after = page_items[-1]["data"]["name"] if offset + limit < len(everything) and page_items else None
            if loop and params.get("after"):
                after = params["after"]
            return _json(200, {"kind": "Listing", "data": {"after": after, "dist": len(page_items),
                                                           "modhash": "", "geo_filter": "",
                                                           "children": page_items, "before": None}},
                         {"x-ratelimit-used": "1", "x-ratelimit-remaining": "99.0", "x-ratelimit-reset": "400"})

        return self.apply(page, query, normal, headers)


# ---- Bluesky -------------------------------------------------------------------------------------

def bluesky_post(rkey: str, text: str, created: datetime.datetime, *, handle: str = "carol.bsky.social",
                 langs: typing.Sequence[str] = ("en",), likes: int = 4, indexed_delay_s: float = 2.0,
                 reply_parent: str | None = None, quote: str | None = None) -> dict:
    did = f"did:plc:{abs(hash(handle)) % 10**12:012d}"
    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso_z(created), "langs": list(langs)}
    if reply_parent:
        record["reply"] = {"root": {"uri": reply_parent, "cid": "bafyroot"},
                           "parent": {"uri": reply_parent, "cid": "bafyparent"}}
    post = {
        "uri": uri, "cid": f"bafy{rkey}",
        "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title(), "labels": [],
                   "createdAt": "2023-05-01T00:00:00.000Z"},
        "record": record, "replyCount": 1, "repostCount": 2, "likeCount": likes, "quoteCount": 0,
        "indexedAt": iso_z(created + datetime.timedelta(seconds=indexed_delay_s)), "labels": [],
    }
    if quote:
        post["embed"] = {"$type": "app.bsky.embed.record#view",
                         "record": {"$type": "app.bsky.embed.record#viewRecord", "uri": quote, "cid": "bafyq",
                                    "author": post["author"], "value": {"text": "quoted"},
                                    "indexedAt": post["indexedAt"]}}
    return post


def _sort_at(post: dict) -> datetime.datetime:
    return min(parse_time(post["record"]["createdAt"]), parse_time(post["indexedAt"]))


class FakeBluesky(FakePlatform):
    """`/xrpc/app.bsky.feed.searchPosts` (since inclusive, until exclusive on sortAt; offset cursors)."""

    name = "bluesky"

    def __init__(self, posts: typing.Sequence[dict], password: str | None = None, **kw):
        super().__init__(**kw)
        self.posts = sorted(posts, key=_sort_at, reverse=True)
        self.password = password  # set: search needs a session from createSession
        self.sessions = 0

    def is_search(self, path):
        return path == "/xrpc/app.bsky.feed.searchPosts"

    def rate_limit_headers(self, reset_epoch):
        return {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(int(reset_epoch) + 1),
                "ratelimit-policy": "3000;w=300"}

    def error_body(self, status, title):
        return {"error": "RateLimitExceeded" if status == 429 else "InternalServerError", "message": title}

    def route(self, method, path):
        if method == "POST" and path == "/xrpc/com.atproto.server.createSession":
            return self._session
        return self._search if method == "GET" and path == "/xrpc/app.bsky.feed.searchPosts" else None

    def _session(self, path, params, headers, body):
        creds = json.loads(body or b"{}")
        if self.password is None or creds.get("password") != self.password:
            return _json(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
        self.sessions += 1
        return _json(200, {"accessJwt": f"jwt-access-{self.sessions}", "refreshJwt": "jwt-refresh",
                           "handle": creds.get("identifier"), "did": "did:plc:me", "active": True})

    def select(self, query: str) -> list[dict]:
        """Every post the search returns (no since/until), newest first by sortAt."""
        langs = re.findall(r"lang:(\w+)", query)
        return [p for p in self.posts if matches(p["record"]["text"], query_terms(query))
                and (not langs or set(langs) & set(p["record"].get("langs", [])))]

    def _search(self, path, params, headers, body):
        query = params.get("q")
        if not query:
            return _json(400, {"error": "InvalidRequest", "message": "Error: Params must have the property \"q\""})
        if self.password is not None and headers.get("Authorization") != f"Bearer jwt-access-{self.sessions}":
            return _json(401, {"error": "ExpiredToken" if self.sessions else "AuthMissing",
                               "message": "Token has expired" if self.sessions else "Authentication Required"})
        limit = min(100, int(params.get("limit", 25)))
        everything = self.select(query)
        if "since" in params:
            everything = [p for p in everything if _sort_at(p) >= parse_time(params["since"])]
        if "until" in params:
            everything = [p for p in everything if _sort_at(p) < parse_time(params["until"])]
        offset = int(params.get("cursor") or 0)
        page_items = everything[offset: offset + limit]
        page = offset // limit + 1

        def normal(loop: bool = False):
            for p in page_items:
                self.served[p["uri"]] += 1
            out = {"hitsTotal": len(everything), "posts": page_items}
            if loop and params.get("cursor"):
                out["cursor"] = params["cursor"]
            elif offset + limit < len(everything):
                out["cursor"] = str(offset + limit)
            return _json(200, out, {"ratelimit-limit": "3000", "ratelimit-remaining": "2999",
                                    "ratelimit-reset": str(int(time.time()) + 300), "ratelimit-policy": "3000;w=300"})

        return self.apply(page, query, normal, headers)


# ---- datasets ------------------------------------------------------------------------------------

# Texts about the test config's brands (tests/conftest.py: sprite, cocacola, fanta).
TEXTS = [
    "I love Sprite, best drink of the summer",
    "@Sprite your can arrived broken, awful",
    "Sprite or Coca-Cola? Coca-Cola wins",  # two brands: two queries fetch it, it is kept once
    "#Sprite summer vibes",
    "Fanta is super today",
    "Coke tastes great cold",
    "Спрайт лучше всех",
]


def x_dataset(now: datetime.datetime, n: int = 23, step_minutes: int = 37) -> tuple[list, list]:
    """`n` posts over the last hours (newest first), two authors, and the brand account's two replies."""
    users = [x_user("101", "alice", 1500), x_user("102", "bob", 20), x_user("900", "Sprite", 250_000),
             x_user("901", "CocaCola", 1_000_000)]
    tweets = []
    for i in range(n):
        created = now - datetime.timedelta(minutes=5 + i * step_minutes)
        text = TEXTS[i % len(TEXTS)]
        tweets.append(x_tweet(x_id(created, i), f"{text} ({i})", created, "101" if i % 2 else "102",
                              lang="ru" if "Спрайт" in text else "en"))
    complaint = tweets[1]  # "@Sprite your can arrived broken"
    for j, delay in enumerate((20, 45)):
        created = parse_time(complaint["created_at"]) + datetime.timedelta(minutes=delay)
        tweets.append(x_tweet(x_id(created, 3000 + j), f"@bob so sorry, please DM us ({j})", created, "900",
                              refs=[("replied_to", complaint["id"])], reply_to_user=complaint["author_id"],
                              conversation_id=complaint["id"]))
    # A retweet: -is:retweet keeps it out.
    created = now - datetime.timedelta(minutes=3)
    tweets.append(x_tweet(x_id(created, 4000), "RT @alice: I love Sprite", created, "102",
                          refs=[("retweeted", tweets[0]["id"])]))
    return tweets, users


def _html(text: str, base: str = "https://mastodon.example") -> str:
    """Mastodon-style HTML: hashtags and mentions as links, the text in a paragraph."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = re.sub(r"#(\w+)", lambda m: f'<a href="{base}/tags/{m.group(1).lower()}" class="mention hashtag" '
                                        f'rel="tag">#<span>{m.group(1)}</span></a>', text)
    text = re.sub(r"(?<![\w/])@(\w+)", lambda m: f'<span class="h-card"><a href="{base}/@{m.group(1)}" '
                                               f'class="u-url mention">@<span>{m.group(1)}</span></a></span>', text)
    return f"<p>{text}</p>"


def mastodon_dataset(now: datetime.datetime, n: int = 25) -> list:
    """`n` statuses tagged #Sprite (some also #CocaCola), ids as Mastodon snowflakes of their times."""
    statuses = []
    for i in range(n):
        created = now - datetime.timedelta(minutes=3 + i * 41)
        tags = ["Sprite"] + (["CocaCola"] if i % 5 == 0 else [])
        text = f"{TEXTS[i % len(TEXTS)]} #Sprite" + (" #CocaCola" if i % 5 == 0 else "") + f" ({i})"
        statuses.append(mastodon_status(mastodon_id(created, i), _html(text), created, tags=tags,
                                        acct=f"user{i % 3}", followers=10 * (i + 1),
                                        in_reply_to_id="1" if i == 4 else None))
    return statuses


def reddit_dataset(now: datetime.datetime, n: int = 23) -> list:
    """`n` posts (titles and bodies), one every 53 minutes."""
    things = []
    for i in range(n):
        created = now - datetime.timedelta(minutes=2 + i * 53)
        body = "Tried it yesterday. Thoughts?" if i % 2 else ""
        things.append(reddit_post(f"1ab{i:03d}", f"{TEXTS[i % len(TEXTS)]} ({i})", created, selftext=body,
                                  ups=i, comments=i % 4))
    return things


def bluesky_dataset(now: datetime.datetime, n: int = 23) -> list:
    """`n` posts, one every 29 minutes; one reply and one quote."""
    posts = []
    for i in range(n):
        created = now - datetime.timedelta(minutes=2 + i * 29)
        posts.append(bluesky_post(f"3kx{i:04d}", f"{TEXTS[i % len(TEXTS)]} ({i})", created,
                                  langs=("ru",) if "Спрайт" in TEXTS[i % len(TEXTS)] else ("en",), likes=i,
                                  reply_parent="at://did:plc:root/app.bsky.feed.post/r0" if i == 3 else None,
                                  quote="at://did:plc:q/app.bsky.feed.post/q0" if i == 7 else None))
    return posts


# ---- helpers for the tests -----------------------------------------------------------------------

class Fetched(typing.NamedTuple):
    mentions: list
    replies: list
    snapshots: list
    dead: list
    results: list


def run_tasks(connector, tasks) -> Fetched:
    """Runs tasks through a connector directly (no Beam) and sorts what comes out."""
    from connectors.base import DeadPage, TaskResult
    from schemas.records import AccountSnapshot, BrandReply, Mention

    out = Fetched([], [], [], [], [])
    for task in tasks:
        for event in connector.fetch(task):
            if isinstance(event, Mention):
                out.mentions.append(event)
            elif isinstance(event, BrandReply):
                out.replies.append(event)
            elif isinstance(event, AccountSnapshot):
                out.snapshots.append(event)
            elif isinstance(event, DeadPage):
                out.dead.append(event)
            elif isinstance(event, TaskResult):
                out.results.append(event)
    return out


def fast_policy(**overrides):
    """An HttpPolicy for tests: short timeouts, tiny backoffs, a few seconds' rate-limit wait at most.

    The read timeout (2 s) stays well above what a loopback answer takes on a loaded machine (with
    0.5 s, a page was once fetched twice while other jobs shared the two cores) and below the 3 s of
    the "slow" fault.
    """
    from connectors.http import HttpPolicy

    values = dict(timeout_s=2.0, connect_timeout_s=1.0, max_attempts=3, backoff_base_s=0.01, backoff_cap_s=0.05,
                  max_rate_limit_wait_s=3.0)
    values.update(overrides)
    return HttpPolicy(**values)
