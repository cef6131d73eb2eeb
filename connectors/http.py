"""Shared HTTP plumbing for the platform connectors: one session, timeouts, retries, backoff, rate limits.

`HttpClient.request` sends one request and returns a 2xx `requests.Response`, or
raises:

- `RateLimited` when the platform answered 429 and the reset lies further away than
  `HttpPolicy.max_rate_limit_wait_s` (a shorter wait is simply slept through);
- `FetchError` for a 4xx other than 429, or a 5xx / timeout / dropped connection that
  persisted through `max_attempts` tries with exponential backoff (capped, jittered).

Secrets (bearer tokens, passwords) given to the client are replaced by `***` in
every message and body excerpt it produces, so that neither logs, dead letters nor
exceptions can carry them; requests are never logged with their headers.

Rate-limit headers differ per platform and `rate_limit_wait` reads them all:
`x-rate-limit-reset` (X, epoch seconds), `X-RateLimit-Reset` (Mastodon: an ISO
timestamp; Reddit: seconds from now), `ratelimit-reset` (Bluesky, epoch seconds) and
the standard `Retry-After`.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import threading
import time
import typing
import urllib.parse
from dataclasses import dataclass

import requests

LOG = logging.getLogger(__name__)
_UTC = datetime.timezone.utc
REDACTED = "***"
BODY_EXCERPT_CHARS = 2000
# A server that keeps answering 429 with a reset in the past must not loop forever.
MAX_RATE_LIMIT_RETRIES = 10


@dataclass(frozen=True)
class HttpPolicy:
    """How patient the connectors are with a platform.

    Attributes:
        timeout_s: Read timeout per request (a slower answer counts as a failed try).
        connect_timeout_s: Connect timeout per request.
        max_attempts: Tries per request for 5xx, timeouts and dropped connections.
        backoff_base_s: First backoff; doubles per try.
        backoff_cap_s: Longest backoff between two tries.
        max_rate_limit_wait_s: Longest wait for a rate-limit reset; a longer one stops the query.
        min_interval_s: Least time between two requests of one client (X full-archive: 1 s).
        user_agent: The User-Agent header (Reddit requires a descriptive one).
    """

    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    max_rate_limit_wait_s: float = 900.0
    min_interval_s: float = 0.0
    user_agent: str = "social-listening/0.1 (+https://github.com/; Apache Beam brand monitoring)"


class FetchError(Exception):
    """A request that failed for good. The message and `body` are already redacted.

    Attributes:
        status: The HTTP status, or None for a timeout / connection failure.
        body: An excerpt of the response body ('' when there was none).
    """

    def __init__(self, message: str, status: typing.Optional[int] = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class RateLimited(FetchError):
    """The platform's rate limit resets later than the configured maximum wait.

    Attributes:
        reset_at: When the limit resets (UTC), when the platform said.
    """

    def __init__(self, message: str, reset_at: typing.Optional[datetime.datetime] = None):
        super().__init__(message, status=429)
        self.reset_at = reset_at


def redact(text: typing.Any, secrets: typing.Iterable[str]) -> str:
    """Returns `text` as a string with every secret replaced by '***'."""
    text = "" if text is None else str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _number(value: str) -> typing.Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def rate_limit_reset(headers: typing.Mapping[str, str], now: float) -> typing.Optional[float]:
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


def backoff_seconds(attempt: int, base: float, cap: float, rng: typing.Optional[random.Random] = None) -> float:
    """Exponential backoff with jitter: base * 2**(attempt-1), capped, times 0.5..1."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + 0.5 * (rng or random).random())


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

    def redact(self, text: typing.Any) -> str:
        """Returns `text` with every known secret replaced by '***'."""
        return redact(text, self._secrets)

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

    def request(self, method: str, url: str, *, params: typing.Optional[dict] = None,
                headers: typing.Optional[dict] = None, json: typing.Any = None) -> requests.Response:
        """Sends one request, retrying what is worth retrying.

        Args:
            method: 'GET' or 'POST'.
            url: The full URL.
            params: Query parameters.
            headers: Extra headers (e.g. Authorization).
            json: A JSON body.

        Returns:
            The 2xx response.

        Raises:
            RateLimited: the rate limit resets later than the policy allows to wait.
            FetchError: any other failure that retries did not cure.
        """
        policy = self.policy
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        attempt = 0
        limited = 0
        while True:
            self._pace()
            try:
                response = self._session.request(
                    method, url, params=params, headers=headers, json=json,
                    timeout=(policy.connect_timeout_s, policy.timeout_s))
            except (requests.Timeout, requests.ConnectionError) as exc:
                attempt += 1
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if attempt >= policy.max_attempts:
                    raise FetchError(f"{where}: {kind} {attempt} times (timeout {policy.timeout_s:g} s)") from None
                delay = backoff_seconds(attempt, policy.backoff_base_s, policy.backoff_cap_s)
                LOG.warning("%s: %s; retry %d/%d in %.1f s", where, kind, attempt, policy.max_attempts - 1, delay)
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
                reset_at = datetime.datetime.fromtimestamp(reset, _UTC) if reset is not None else None
                if wait > policy.max_rate_limit_wait_s or limited > MAX_RATE_LIMIT_RETRIES:
                    until = reset_at.isoformat(timespec="seconds") if reset_at else "an unknown time"
                    raise RateLimited(
                        f"{where}: rate limited until {until} ({wait:.0f} s away; the maximum wait is "
                        f"{policy.max_rate_limit_wait_s:g} s)", reset_at)
                LOG.warning("%s: rate limited; waiting %.1f s for the reset", where, wait)
                self._sleep(wait)
                continue
            if status >= 500 or status == 408:
                attempt += 1
                if attempt >= policy.max_attempts:
                    raise FetchError(f"{where}: HTTP {status} {response.reason} {attempt} times",
                                     status, self._excerpt(response))
                delay = backoff_seconds(attempt, policy.backoff_base_s, policy.backoff_cap_s)
                LOG.warning("%s: HTTP %d; retry %d/%d in %.1f s", where, status, attempt,
                            policy.max_attempts - 1, delay)
                self._sleep(delay)
                continue
            if status >= 400:
                raise FetchError(f"{where}: HTTP {status} {response.reason}: {self._excerpt(response)[:300]}",
                                 status, self._excerpt(response))
            return response

    def _excerpt(self, response: requests.Response) -> str:
        try:
            text = response.text
        except Exception:  # a body that cannot be decoded is still worth a dead letter
            text = repr(response.content[:BODY_EXCERPT_CHARS])
        return self.redact(text[:BODY_EXCERPT_CHARS])
