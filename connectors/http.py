"""Shared HTTP plumbing for the platform connectors: one session, timeouts, retries, backoff, rate limits.

`HttpClient.request` sends one request and returns a 2xx `requests.Response` whose
body has been read, or raises:

- `RateLimited` when the platform answered 429 and the reset lies further away than
  `HttpPolicy.max_rate_limit_wait_s` (a shorter wait is simply slept through);
- `FetchError` for a 4xx other than 429, a body larger than `max_body_bytes`, a request
  that cannot be sent at all, or a 5xx / timeout / reset / broken body that persisted
  through `max_attempts` tries with exponential backoff (capped, jittered).

Each try has one deadline, `HttpPolicy.timeout_s`, for everything: connecting, the
headers and every read of the body. A watchdog shuts the try's socket down when the
deadline passes (a server that trickles its headers is stopped too), and the body is
read in pieces, each socket read bounded by what is left of the deadline; gzip /
deflate bodies are inflated here in bounded steps. Neither a server trickling bytes
forever nor a small compressed body that inflates to gigabytes can hold or exhaust a
worker.

Secrets (bearer tokens, passwords) given to the client are replaced by `***` by one
function, `redact`, which every string a connector lets out goes through (messages,
reasons, excerpts, state, logs) before it is cut to length; requests are never
logged with their headers. `check_secret` validates a secret at start.

Rate-limit headers differ per platform and `rate_limit_wait` reads them all:
`x-rate-limit-reset` (X, epoch seconds), `X-RateLimit-Reset` (Mastodon: an ISO
timestamp; Reddit: seconds from now), `ratelimit-reset` (Bluesky, epoch seconds) and
the standard `Retry-After`.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import logging
import random
import socket
import threading
import time
import typing
import urllib.parse
import zlib
from dataclasses import dataclass

import requests
import urllib3
import urllib3.connection

LOG = logging.getLogger(__name__)
_UTC = datetime.timezone.utc
REDACTED = "***"
BODY_EXCERPT_CHARS = 2000
READ_CHUNK_BYTES = 64 * 1024
# The encodings inflated here in bounded steps; others are not asked for (Accept-Encoding) and refused.
_ENCODINGS = ("gzip", "x-gzip", "deflate")
# A server that keeps answering 429 with a reset in the past must not loop forever.
MAX_RATE_LIMIT_RETRIES = 10


@dataclass(frozen=True)
class HttpPolicy:
    """How patient the connectors are with a platform.

    Attributes:
        timeout_s: Deadline of one try: connecting, the headers and the whole body (a slower answer
            counts as a failed try).
        connect_timeout_s: Connect timeout per try (within the deadline).
        max_attempts: Tries per request for 5xx, timeouts and dropped connections.
        backoff_base_s: First backoff; doubles per try.
        backoff_cap_s: Longest backoff between two tries.
        max_rate_limit_wait_s: Longest wait for a rate-limit reset; a longer one stops the query.
        min_interval_s: Least time between two requests of one client (X full-archive: 1 s).
        user_agent: The User-Agent header (Reddit requires a descriptive one).
        max_body_bytes: Largest body accepted, after decompression (a larger one fails the request).
    """

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_rate_limit_wait_s: float = 900.0
    min_interval_s: float = 0.0
    user_agent: str = "social-listening/0.1 (+https://github.com/; Apache Beam brand monitoring)"
    max_body_bytes: int = 64 * 1024 * 1024


class FetchError(Exception):
    """A request that failed for good. The message and `body` are already redacted.

    Attributes:
        status: The HTTP status, or None for a timeout / connection failure.
        body: An excerpt of the response body ('' when there was none).
    """

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class RateLimited(FetchError):
    """The platform's rate limit resets later than the configured maximum wait.

    Attributes:
        reset_at: When the limit resets (UTC), when the platform said.
    """

    def __init__(self, message: str, reset_at: datetime.datetime | None = None):
        super().__init__(message, status=429)
        self.reset_at = reset_at


def _as_text(value: typing.Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # an object whose __str__ fails still gets a name
        return f"<{type(value).__name__}>"


def secret_forms(secret: str) -> list[str]:
    """The ways a secret can appear in text: as is, URL-encoded, JSON-escaped."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
             json.dumps(secret)[1:-1]}
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact(text: typing.Any, secrets: typing.Iterable[str], limit: int | None = None) -> str:
    """The one function every string that leaves a connector goes through.

    Args:
        text: Anything (an exception, bytes, a message); None is ''.
        secrets: Strings that must not appear (each also URL-encoded and JSON-escaped).
        limit: Cut the result to this many characters, after the secrets are gone.

    Returns:
        The text with every secret replaced by '***', made valid Unicode (a lone
        surrogate becomes its escape `\\udXXX`, which every coder and file can carry),
        then cut to `limit`.
    """
    text = _as_text(text)
    for secret in secrets:
        if secret:
            for form in secret_forms(secret):
                text = text.replace(form, REDACTED)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def check_secret(value: str, name: str) -> str:
    """A secret read from a file or the environment, stripped and checked before any request.

    Args:
        value: The raw value.
        name: Where it came from, for the message (a flag or an environment variable).

    Returns:
        The stripped secret ('' when there is none).

    Raises:
        ValueError: for a line break, space, control or non-ASCII character inside; the
            message names `name` and the position, never the secret.
    """
    value = value.strip()
    for position, char in enumerate(value, 1):
        if "!" <= char <= "~":
            continue
        what = ("a line break" if char in "\r\n" else "whitespace" if char.isspace()
                else "a control character" if ord(char) < 32 or 127 <= ord(char) < 160 else "a non-ASCII character")
        raise ValueError(f"{name}: the secret holds {what} at character {position} of {len(value)}; it must be "
                         "the token alone, on one line")
    return value


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rate_limit_reset(headers: typing.Mapping[str, str], now: float) -> float | None:
    """When (epoch seconds) a 429's rate limit resets, from whichever header the platform sent.

    Args:
        headers: The response headers (case-insensitive mapping, as requests gives them).
        now: The current time, epoch seconds.

    Returns:
        The reset time in epoch seconds, or None when no header says.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    retry_after = lowered.get("retry-after")
    if retry_after:
        seconds = _number(retry_after)
        if seconds is not None:
            return now + seconds
        try:
            return email.utils.parsedate_to_datetime(retry_after).timestamp()
        except (TypeError, ValueError):
            pass
    for name in ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"):
        value = lowered.get(name)
        if not value:
            continue
        number = _number(value)
        if number is not None:
            # Epoch seconds (X, Bluesky) are ~1.7e9; a small number is seconds from now (Reddit).
            return number if number > 1e9 else now + number
        try:  # Mastodon: an ISO 8601 timestamp
            ts = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        return (ts if ts.tzinfo else ts.replace(tzinfo=_UTC)).timestamp()
    return None


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base * 2**(attempt-1), capped, times 0.5..1."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + 0.5 * (rng or random).random())


# The try in progress on this thread: its connection registers itself there, for the watchdog.
_TRY = threading.local()


class _Watched:
    """A connection that tells the try in progress on its thread which socket it uses."""

    def request(self, *args, **kwargs):
        watch = getattr(_TRY, "watch", None)
        if watch is not None:
            watch.connection = self
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Watchdog:
    """Shuts a try's socket down at its deadline, which wakes any read blocked on it."""

    def __init__(self, seconds: float):
        self.connection: typing.Any = None
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        _TRY.watch = self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def finish(self) -> bool:
        """Ends the watch (idempotent); True when the deadline had fired."""
        with self._lock:
            self._done = True
        self._timer.cancel()
        _TRY.watch = None
        return self.fired


class HttpClient:
    """A `requests.Session` with timeouts, retries, backoff, rate-limit waits and redaction.

    Args:
        policy: Timeouts, retries and waits.
        secrets: Strings that must never appear in messages (tokens, passwords).
        sleep: Sleeps (tests pass a recorder).
        clock: Returns epoch seconds.
    """

    def __init__(self, policy: HttpPolicy, secrets: typing.Iterable[str] = (),
                 sleep: typing.Callable[[float], None] = time.sleep,
                 clock: typing.Callable[[], float] = time.time):
        self.policy = policy
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._clock = clock
        self._session = requests.Session()
        self._session.headers["User-Agent"] = policy.user_agent
        self._session.headers["Accept-Encoding"] = ", ".join(e for e in _ENCODINGS if e != "x-gzip")
        for adapter in self._session.adapters.values():
            manager = getattr(adapter, "poolmanager", None)
            if manager is not None:  # through a proxy, only the per-read bounds apply
                manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self._last_request = 0.0
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        """The underlying session (keep-alive connections are reused)."""
        return self._session

    def add_secret(self, secret: str) -> None:
        """Adds a secret learnt later (e.g. a session token) to the redaction list."""
        if secret:
            self._secrets += (secret,)

    def redact(self, text: typing.Any, limit: int | None = None) -> str:
        """`redact` with every secret this client knows: the text safe to let out, cut to `limit`."""
        return redact(text, self._secrets, limit)

    def close(self) -> None:
        """Closes the session's connections."""
        self._session.close()

    def _pace(self) -> None:
        if self.policy.min_interval_s <= 0:
            return
        with self._lock:
            wait = self._last_request + self.policy.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
            self._last_request = self._clock()

    def request(self, method: str, url: str, *, params: dict | None = None,
                headers: dict | None = None, json: typing.Any = None) -> requests.Response:
        """Sends one request, retrying what is worth retrying.

        Args:
            method: 'GET' or 'POST'.
            url: The full URL.
            params: Query parameters.
            headers: Extra headers (e.g. Authorization).
            json: A JSON body.

        Returns:
            The 2xx response, its body read (`content`, `text` and `json()` work).

        Raises:
            RateLimited: the rate limit resets later than the policy allows to wait.
            FetchError: any other failure that retries did not cure; its message is redacted.
        """
        policy = self.policy
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        attempt = 0
        limited = 0
        while True:
            self._pace()
            try:
                response = self._try(method, url, params, headers, json, where)
            except _Retry as exc:
                attempt += 1
                if attempt >= policy.max_attempts:
                    raise FetchError(self.redact(f"{where}: {exc} ({attempt} tries, deadline "
                                                 f"{policy.timeout_s:g} s each)")) from None
                delay = backoff_seconds(attempt, policy.backoff_base_s, policy.backoff_cap_s)
                LOG.warning("%s", self.redact(f"{where}: {exc}; retry {attempt}/{policy.max_attempts - 1} "
                                              f"in {delay:.1f} s"))
                self._sleep(delay)
                continue

            status = response.status_code
            if status == 429:
                limited += 1
                now = self._clock()
                reset = rate_limit_reset(response.headers, now)
                wait = (reset - now + 0.25) if reset is not None else backoff_seconds(
                    limited, policy.backoff_base_s, policy.backoff_cap_s)
                wait = max(wait, 0.0)
                try:
                    reset_at = datetime.datetime.fromtimestamp(reset, _UTC) if reset is not None else None
                except (OverflowError, OSError, ValueError):  # a reset header far outside the calendar
                    reset_at = None
                if wait > policy.max_rate_limit_wait_s or limited > MAX_RATE_LIMIT_RETRIES:
                    until = reset_at.isoformat(timespec="seconds") if reset_at else "an unknown time"
                    raise RateLimited(self.redact(
                        f"{where}: rate limited until {until} ({wait:.0f} s away; the maximum wait is "
                        f"{policy.max_rate_limit_wait_s:g} s)"), reset_at)
                LOG.warning("%s: rate limited; waiting %.1f s for the reset", where, wait)
                self._sleep(wait)
                continue
            if status >= 500 or status == 408:
                attempt += 1
                if attempt >= policy.max_attempts:
                    raise FetchError(self.redact(f"{where}: HTTP {status} {response.reason} {attempt} times"),
                                     status, self._excerpt(response))
                delay = backoff_seconds(attempt, policy.backoff_base_s, policy.backoff_cap_s)
                LOG.warning("%s: HTTP %d; retry %d/%d in %.1f s", where, status, attempt,
                            policy.max_attempts - 1, delay)
                self._sleep(delay)
                continue
            if status >= 400:
                excerpt = self._excerpt(response)
                raise FetchError(self.redact(f"{where}: HTTP {status} {response.reason}: {excerpt}", limit=400),
                                 status, excerpt)
            return response

    def _try(self, method: str, url: str, params, headers, json, where: str) -> requests.Response:
        """One try under one deadline: send, read the headers, read (and inflate) the whole body."""
        policy = self.policy
        deadline = time.monotonic() + policy.timeout_s
        late = _late(policy)
        with _Watchdog(policy.timeout_s) as watch:
            try:
                response = self._session.request(
                    method, url, params=params, headers=headers, json=json, stream=True,
                    timeout=(min(policy.connect_timeout_s, policy.timeout_s), policy.timeout_s))
            except requests.Timeout:
                raise _Retry(late) from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                raise _Retry(late if watch.fired else f"connection failed ({type(exc).__name__})") from None
            except Exception as exc:  # a request that cannot even be sent (bad header, URL): no retry helps
                raise FetchError(self.redact(f"{where}: request not sent: {type(exc).__name__}: {exc}",
                                             limit=BODY_EXCERPT_CHARS)) from None
            try:
                body = self._read_body(response, deadline, watch)
            except _TooLarge as exc:
                response.close()
                raise FetchError(self.redact(f"{where}: HTTP {response.status_code}: {exc}"),
                                 response.status_code) from None
            except BaseException:
                response.close()  # a half-read connection cannot be reused
                raise
            fired = watch.finish()
        # The body is complete: hand it to requests as if it had read it itself.
        response._content = body
        response._content_consumed = True
        if fired:
            response.close()  # its socket was shut down just as the body ended
        else:
            response.raw.release_conn()
        return response

    def _read_body(self, response: requests.Response, deadline: float, watch: _Watchdog) -> bytes:
        raw = response.raw
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        if encoding not in ("", "identity") + _ENCODINGS:
            raise _TooLarge(f"the body's Content-Encoding {encoding!r} was not asked for")
        # MAX_WBITS | 32: a gzip or a zlib header, detected from the stream.
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in _ENCODINGS else None
        limit = self.policy.max_body_bytes
        parts: list[bytes] = []
        size = 0

        def keep(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > limit:
                raise _TooLarge(f"the body is larger than {limit} bytes"
                                f"{' once inflated' if inflater is not None else ''}")
            parts.append(data)

        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Retry(_late(self.policy))
                if sock is not None:
                    sock.settimeout(left)  # no single read may outlast the try's deadline
                chunk = raw.read1(READ_CHUNK_BYTES, decode_content=False)
                if not chunk:
                    break
                if inflater is None:
                    keep(chunk)
                    continue
                while chunk:
                    keep(inflater.decompress(chunk, limit + 1 - size))
                    chunk = inflater.unconsumed_tail
                    if inflater.eof and inflater.unused_data:  # a gzip stream of several members
                        chunk = inflater.unused_data
                        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
            if inflater is not None:
                keep(inflater.flush())
                if not inflater.eof:
                    raise _Retry("the compressed body ended early")
        except (_Retry, _TooLarge):
            raise
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise _Retry(_late(self.policy)) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, zlib.error) as exc:
            if watch.fired:
                raise _Retry(_late(self.policy)) from None
            raise _Retry(f"the connection broke while reading the body ({type(exc).__name__})") from None
        return b"".join(parts)

    def _excerpt(self, response: requests.Response) -> str:
        try:
            text = response.text
        except Exception:  # a body that cannot be decoded is still worth a dead letter
            text = repr(response.content[:BODY_EXCERPT_CHARS * 4])
        # Redacted whole, then cut: a secret straddling the cut must not keep a part of itself.
        return self.redact(text, limit=BODY_EXCERPT_CHARS)


def _late(policy: HttpPolicy) -> str:
    return f"did not answer in full within the {policy.timeout_s:g} s deadline"


class _Retry(Exception):
    """One try failed in a way that another try may not (timeout, reset, broken body)."""


class _TooLarge(Exception):
    """The body cannot be accepted (too large, an encoding not asked for); retrying would not change it."""
