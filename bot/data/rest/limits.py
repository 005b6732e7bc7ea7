"""Polite REST: rate limits, retries and typed errors shared by the venues' REST clients.

What the exchanges publish and this module does about it:

- HTTP 429 (rate limit hit) and 418 (Binance's ban after ignoring 429s) come
  with ``Retry-After`` in seconds: a ban. The limiter remembers until when
  (:attr:`RateLimiter.banned_until`) and sends nothing before then, whoever
  asks and whatever was cancelled meanwhile. A short ban (up to
  ``max_ban_wait`` seconds) is waited out and the request sent again; while
  one request waits, every other request of the same limiter waits too, so a
  burst does not turn a 429 into a 418. A longer one raises
  :class:`RestBanned` at once, naming until when, for every request until it
  expires: a caller with a deadline (a gap fill, the warm-up) reports its span
  as a gap instead of hanging on it.
- Each client has a :class:`RequestBudget`: a hard ceiling of requests and
  weight per rolling minute, well under the venue's own limit. A request that
  would pass it waits for room, and when the room is more than
  ``BUDGET_QUEUE_SECONDS`` away (a runaway: more than a minute of requests
  queued) it raises :class:`RestBudgetExhausted` instead of adding to the queue.
- Binance reports the request weight spent in the current minute in
  ``X-MBX-USED-WEIGHT-1M``. When the weight seen, plus the weight of requests
  in flight, plus the next request's weight would pass the limit, the limiter
  waits for the next minute instead of asking.
  Alpaca sends no such header: only its 429s pace its client.
- 5xx answers and connection failures are retried with exponential backoff
  (1 s, 2 s, 4 s ... capped at 30 s) up to ``max_retries`` times; then the
  last answer becomes a :class:`RestError` (status 0 when none came).
- Any other 4xx is the caller's mistake: no retry; the client raises
  :class:`RestError` with the venue's own code and message.
- A success whose body is not JSON at all (cut short on its way, a proxy's page)
  is asked once more; a second one reaches the caller, whose decoding raises
  :class:`~bot.data.errors.MalformedFrame`.

Every wait goes through the injected ``sleep`` and is recorded in
:attr:`RateLimiter.waits`, so tests and metrics see exactly what happened;
:meth:`RateLimiter.usage` gives requests and weight by endpoint and the ban.
:class:`HttpClient` is the small aiohttp base both venue clients share.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

from bot.data.errors import ConfigError, MalformedFrame, StreamError

logger = logging.getLogger(__name__)
T = TypeVar("T")

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
RATE_LIMIT_STATUSES = frozenset({418, 429})
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
# Waiting for the next minute goes this much past it, for clock skew with the exchange.
MINUTE_MARGIN_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 30.0
# A ban announced for longer than this is not waited out: requests fail until it ends.
MAX_BAN_WAIT_SECONDS = 10.0
# A request that would wait longer than this for room in the budget fails instead.
BUDGET_QUEUE_SECONDS = 60.0
BUDGET_WINDOW_SECONDS = 60.0


class RestError(StreamError):
    """A REST request the venue refused, with the venue's own code and message.

    ``status`` is the HTTP status (0 when no answer came: connection failures
    and timeouts after every retry); ``code`` the venue's error code when it
    sent one (Binance always does, Alpaca sometimes), else None; ``text`` its
    message. Never carries credentials.
    """

    def __init__(self, venue: str, status: int, code: int | None, text: str) -> None:
        self.venue = venue
        self.status = status
        self.code = code
        self.text = text
        shown = f" {code}" if code is not None else ""
        super().__init__(f"{venue} REST HTTP {status}, error{shown}: {text}")


class RestBanned(RestError):
    """The venue bans our requests until ``until_ns`` (ns since the epoch); none was sent.

    Raised for every request during a ban longer than the limiter waits out,
    so a caller with a deadline can report its span at once.
    """

    def __init__(self, venue: str, status: int, until_ns: int) -> None:
        self.until_ns = until_ns
        when = datetime.fromtimestamp(until_ns / 1e9, UTC).isoformat(timespec="seconds")
        super().__init__(venue, status, None,
                         f"the venue bans requests until {when} (HTTP {status} with "
                         "Retry-After); nothing is sent before then")


class RestBudgetExhausted(RestError):
    """The client's request budget has no room before ``retry_at_ns``; nothing was sent."""

    def __init__(self, venue: str, budget: RequestBudget, retry_at_ns: int) -> None:
        self.retry_at_ns = retry_at_ns
        super().__init__(venue, 0, None,
                         f"request budget of {budget.requests_per_minute} requests and "
                         f"{budget.weight_per_minute} weight per minute spent; no room for "
                         f"{(retry_at_ns - time.time_ns()) / 1e9:.0f} s")


@dataclass(frozen=True)
class RequestBudget:
    """A hard ceiling of requests and request weight per rolling minute for one client."""

    requests_per_minute: int
    weight_per_minute: int


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class RateLimiter:
    """Honours 429/418 Retry-After, tracks X-MBX-USED-WEIGHT-1M, retries 5xx with backoff.

    It never hammers: every retry waits, and no request is sent that would
    pass the minute's weight.

    ``weight_limit`` is the venue's request weight per minute (Binance's
    default 6000); ``sleep`` performs every wait; ``max_retries`` bounds the
    retries of one request, whatever their cause; ``clock`` (seconds since the
    epoch) tells where the current minute ends and when a ban is over.
    ``budget``: this client's own ceiling per rolling minute (None: none);
    ``max_ban_wait``: the longest ban (seconds) a request waits out rather
    than failing with :class:`RestBanned`.
    """

    def __init__(self, *, weight_limit: int = 6000,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 max_retries: int = 5, clock: Callable[[], float] = time.time,
                 budget: RequestBudget | None = None,
                 max_ban_wait: float = MAX_BAN_WAIT_SECONDS) -> None:
        if isinstance(weight_limit, bool) or not isinstance(weight_limit, int) or weight_limit < 1:
            raise ConfigError("weight_limit", weight_limit, "must be an integer >= 1")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError("max_retries", max_retries, "must be an integer >= 0")
        self.weight_limit = weight_limit
        self.max_retries = max_retries
        self.waits: list[float] = []
        self.used_weight = 0
        self._sleep = sleep
        self._clock = clock
        self._weight_minute: int | None = None  # the minute used_weight was reported in
        self._in_flight = 0  # weight of requests sent and not yet answered
        self._pauses = 0  # Retry-After waits running; no request is sent meanwhile
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.budget = budget
        self.max_ban_wait = max_ban_wait
        self.banned_until = 0.0  # seconds since the epoch; nothing is sent before then
        self._ban_status = 0
        self._window: deque[tuple[float, int]] = deque()  # (send time, weight) in the budget
        self._window_weight = 0
        self.last_failure: str | None = None  # the last request's connection failure, if any
        self.requests: Counter[str] = Counter()  # by endpoint, every request sent
        self.weight: Counter[str] = Counter()
        self._holding: Counter[str] = Counter()  # rate-limit waits running, by reason

    def held_by(self) -> str | None:
        """Why requests wait for a rate limit right now (a 429/418 ``Retry-After``, the
        budget, the venue's weight per minute), or None when none does."""
        reasons = sorted(reason for reason, n in self._holding.items() if n > 0)
        return "; ".join(reasons) if reasons else None

    @classmethod
    def following(cls, clock_ns: Callable[[], int], budget: RequestBudget | None) -> RateLimiter:
        """A limiter timed by ``clock_ns`` (a manager's clock: the machine's, or a
        simulator's running faster), so its minutes, bans and waits are the venue's."""

        def seconds() -> float:
            return clock_ns() / 1e9

        async def sleep(duration: float) -> None:
            end = seconds() + duration
            while (left := end - seconds()) > 0:
                await asyncio.sleep(min(left, 1.0))

        return cls(budget=budget, clock=seconds, sleep=sleep)

    def usage(self) -> dict[str, object]:
        """Requests and weight sent by endpoint, the ban (ns, None when none) and the budget."""
        banned = self.banned_until > self._clock()
        return {"requests": dict(self.requests), "weight": dict(self.weight),
                "banned_until_ns": int(self.banned_until * 1e9) if banned else None,
                "budget": None if self.budget is None else {
                    "requests_per_minute": self.budget.requests_per_minute,
                    "weight_per_minute": self.budget.weight_per_minute}}

    async def run(self, send: Callable[[], Awaitable[Reply]], *, weight: int = 1,
                  venue: str = "", endpoint: str = "", host: str = "") -> Reply:
        """Send a request through the limits; the first answer that is not retried.

        That is a success, a 4xx other than 429/418, or the last answer once
        ``max_retries`` retries are spent. A connection failure or timeout on
        the last attempt raises :class:`RestError` with status 0 (no answer);
        a ban longer than ``max_ban_wait`` raises :class:`RestBanned`, a spent
        budget :class:`RestBudgetExhausted`, both before anything is sent.
        ``host`` (``"api.binance.com:443"``) names the server in connection failures.
        """
        attempt = 0
        while True:
            await self._before(weight, venue)
            self.requests[endpoint] += 1
            self.weight[endpoint] += weight
            self._in_flight += weight
            try:
                reply = await send()
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                failure = self.last_failure = unreachable(exc, host)
                if attempt >= self.max_retries:
                    raise RestError(venue, 0, None, failure) from exc
                delay = self._backoff(attempt)
                logger.warning("%s REST: %s; retrying with backoff (attempt %d of %d) in %.1f s",
                               venue, failure, attempt + 2, self.max_retries + 1, delay)
                await self._wait(delay)
                attempt += 1
                continue
            finally:
                self._in_flight -= weight
            self.last_failure = None
            self._observe(reply)
            told = _retry_after(reply) if reply.status in RATE_LIMIT_STATUSES else None
            if told is not None:
                self._ban(told, reply.status)
                if told > self.max_ban_wait:
                    logger.warning("%s REST answered HTTP %d with Retry-After %.0f s: no "
                                   "request is sent until then", venue, reply.status, told)
                    raise RestBanned(venue, reply.status, int(self.banned_until * 1e9))
            if reply.ok or attempt >= self.max_retries:
                return reply
            if reply.status in RATE_LIMIT_STATUSES:
                delay = told if told is not None else self._backoff(attempt)
                logger.warning("%s REST answered HTTP %d; every request waits %.1f s", venue,
                               reply.status, delay)
                await self._pause(delay, f"HTTP {reply.status}: every request waits "
                                         f"{delay:.0f} s")
            elif reply.status >= 500:
                delay = self._backoff(attempt)
                logger.warning("%s REST answered HTTP %d; retry in %.1f s", venue,
                               reply.status, delay)
                await self._wait(delay)
            else:
                return reply
            attempt += 1

    def _ban(self, seconds: float, status: int) -> None:
        """Remember that the venue refuses requests for ``seconds`` from now."""
        until = self._clock() + seconds
        if until > self.banned_until:
            self.banned_until = until
            self._ban_status = status

    async def _pause(self, seconds: float, reason: str) -> None:
        """Wait ``seconds`` and hold every other request of this limiter meanwhile.

        A pause that ran to its end has served the ban; a cancelled one (a fill
        that timed out) leaves it in :attr:`banned_until` for the next request.
        """
        self._pauses += 1
        self._resumed.clear()
        try:
            await self._wait(seconds, reason)
            self.banned_until = 0.0
        finally:
            self._pauses -= 1
            if not self._pauses:
                self._resumed.set()

    async def _before(self, weight: int, venue: str) -> None:
        """Wait out (or refuse during) a ban, take room in the budget, then the minute if the
        weight would pass the limit."""
        await self._resumed.wait()
        remaining = self.banned_until - self._clock()
        if remaining > 0:
            if remaining > self.max_ban_wait:
                raise RestBanned(venue, self._ban_status, int(self.banned_until * 1e9))
            await self._pause(remaining, f"HTTP {self._ban_status}: every request waits "
                                         f"{remaining:.0f} s")
        if self.budget is not None:
            booking = self._reserve(self.budget, weight, venue)
            delay = booking[0] - self._clock()
            if delay > 0:
                logger.info("%s REST budget: waiting %.1f s for room", venue, delay)
                try:
                    await self._wait(delay, f"its request budget ({self.budget.requests_per_minute}"
                                            f" requests, {self.budget.weight_per_minute} weight "
                                            "a minute)")
                except asyncio.CancelledError:
                    self._window.remove(booking)  # never sent: the room is free again
                    self._window_weight -= booking[1]
                    raise
        now = self._clock()
        if self._weight_minute is not None and self._weight_minute != _minute(now):
            self.used_weight, self._weight_minute = 0, None  # the exchange's minute rolled over
        if self.used_weight + self._in_flight + weight > self.weight_limit:
            delay = 60.0 - now % 60.0 + MINUTE_MARGIN_SECONDS
            logger.info("REST weight %d/%d used this minute; waiting %.1f s for the next",
                        self.used_weight + self._in_flight, self.weight_limit, delay)
            await self._wait(delay, f"the venue's weight limit ({self.weight_limit} a minute)")
            self.used_weight, self._weight_minute = 0, None

    def _reserve(self, budget: RequestBudget, weight: int, venue: str) -> tuple[float, int]:
        """Book a send time within ``budget``; the booking (send time, weight).

        The window holds the send times booked over the last rolling minute (and
        any booked ahead); the new request goes at the first time at which the
        minute before it holds room for one more request of ``weight``.
        """
        now = self._clock()
        window = self._window
        while window and window[0][0] <= now - BUDGET_WINDOW_SECONDS:
            self._window_weight -= window.popleft()[1]
        at = max(now, window[-1][0]) if window else now
        if at - now > BUDGET_QUEUE_SECONDS:
            raise RestBudgetExhausted(venue, budget, int(at * 1e9))
        count, total = len(window), self._window_weight
        for booked, booked_weight in window:
            if count < budget.requests_per_minute and total + weight <= budget.weight_per_minute:
                break
            at = max(at, booked + BUDGET_WINDOW_SECONDS)
            count -= 1
            total -= booked_weight
        if at - now > BUDGET_QUEUE_SECONDS:
            raise RestBudgetExhausted(venue, budget, int(at * 1e9))
        booking = (at, weight)
        window.append(booking)
        self._window_weight += weight
        return booking

    def _observe(self, reply: Reply) -> None:
        text = reply.headers.get(WEIGHT_HEADER)
        if text is not None and text.isdigit():
            self.used_weight = int(text)
            self._weight_minute = _minute(self._clock())

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_BASE_SECONDS * 2 ** attempt, BACKOFF_CAP_SECONDS)

    async def _wait(self, seconds: float, rate_limit: str | None = None) -> None:
        """Wait ``seconds``; ``rate_limit`` names the limit waited for (see :meth:`held_by`)."""
        self.waits.append(seconds)
        if rate_limit is None:
            await self._sleep(seconds)
            return
        self._holding[rate_limit] += 1
        try:
            await self._sleep(seconds)
        finally:
            self._holding[rate_limit] -= 1
            if not self._holding[rate_limit]:
                del self._holding[rate_limit]


def unreachable(exc: BaseException, host: str = "") -> str:
    """A connection failure in one line: ``"cannot reach api.binance.com:443: connection
    refused"``; ``host`` is used when the exception does not name one."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        host = f"{exc.host}:{exc.port}"
        cause: BaseException = exc.os_error
    else:
        cause = exc
    where = f"cannot reach {host}" if host else "cannot reach the server"
    return f"{where}: {_failure_reason(cause)}"


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "no answer in time"
    if isinstance(exc, ssl.SSLError | aiohttp.ClientSSLError):
        return f"TLS failed ({exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def host_of(url: str) -> str:
    """``"https://api.binance.com/api/v3"`` -> ``"api.binance.com:443"``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{parts.hostname}:{port}"


def _minute(seconds: float) -> int:
    return math.floor(seconds / 60.0)


MAX_RETRY_AFTER_S = 3 * 86_400.0
"""Binance's longest IP ban (bans scale "from 2 minutes to 3 days"); a longer Retry-After is
taken as this, so a ban stays a date the clock, the metrics and the error text can hold."""


def _retry_after(reply: Reply) -> float | None:
    """``Retry-After`` in seconds (the form Binance and Alpaca send), at most
    :data:`MAX_RETRY_AFTER_S`; None if absent or odd."""
    text = reply.headers.get("Retry-After", "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return min(value, MAX_RETRY_AFTER_S) if math.isfinite(value) and value >= 0 else None


class HttpClient:
    """An aiohttp session (given or owned) and GET requests through a :class:`RateLimiter`.

    Subclasses name their venue and budget; error answers become :class:`RestError`.
    The session is created on first use when none is given, and closed by
    :meth:`close` only if this client created it.
    """

    venue = ""
    budget: RequestBudget | None = None  # the ceiling of a limiter this client makes itself

    def __init__(self, base_url: str, connect_timeout: float, *,
                 session: aiohttp.ClientSession | None, limiter: RateLimiter | None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._host = host_of(self.base_url) if self.base_url else ""
        self.limiter = limiter if limiter is not None else RateLimiter(budget=self.budget)
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._connect_timeout = connect_timeout
        self._headers = dict(headers or {})

    async def close(self) -> None:
        """Close the session if this client opened it; the client takes no more requests."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                total=REQUEST_TIMEOUT_SECONDS, sock_connect=self._connect_timeout))
        return self._session

    async def _get(self, path: str, params: Mapping[str, str], *, weight: int = 1,
                   base_url: str | None = None) -> bytes:
        """The body of a successful GET; a :class:`RestError` for anything else.

        ``base_url`` sends it to another host of the same venue (Alpaca's trading API
        beside its data API), in the same budget, with the same headers.
        """
        url = (base_url.rstrip("/") if base_url else self.base_url) + path
        host = host_of(base_url) if base_url else self._host

        async def send() -> Reply:
            async with self._http().get(url, params=params, headers=self._headers) as response:
                body = await response.read()
                return Reply(response.status, response.headers, body)

        endpoint = path.rsplit("/", 1)[-1]
        reply = await self.limiter.run(send, weight=weight, venue=self.venue,
                                       endpoint=endpoint, host=host)
        if reply.ok and not _is_json(reply.body):
            # A success whose body is no JSON (cut short on its way, a proxy's page): asked
            # once more, in the budget like any request; a second such body is the caller's
            # MalformedFrame.
            logger.warning("%s REST answered %s with a body that is no JSON; asking once more",
                           self.venue, path)
            reply = await self.limiter.run(send, weight=weight, venue=self.venue,
                                           endpoint=endpoint, host=host)
        if not reply.ok:
            raise self._error(reply)
        return reply.body

    def _error(self, reply: Reply) -> RestError:
        """The venue's error answer as a :class:`RestError`.

        Binance answers ``{"code": -1121, "msg": "Invalid symbol."}``, Alpaca
        ``{"message": "..."}`` or ``{"code": ..., "message": "..."}``; anything
        else is shown as the start of the body.
        """
        try:
            body = _decode_error(reply.body)
        except msgspec.DecodeError:
            return RestError(self.venue, reply.status, None, _short_text(reply.body))
        text = body.msg or body.message or _short_text(reply.body)
        return RestError(self.venue, reply.status, body.code, text)


class _ErrorBody(msgspec.Struct):
    code: int | None = None
    msg: str | None = None
    message: str | None = None


_decode_error = msgspec.json.Decoder(_ErrorBody).decode


_ANY_JSON = msgspec.json.Decoder(msgspec.Raw)


def _is_json(body: bytes) -> bool:
    """True when ``body`` is one well-formed JSON document (checked, not decoded)."""
    try:
        _ANY_JSON.decode(body)
    except msgspec.DecodeError:
        return False
    return True


def decode(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """Decode a venue's JSON answer; a :class:`MalformedFrame` naming ``what`` if it is not one."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"unexpected {what} answer: {exc}", body) from None


def _short_text(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text[:limit] + ("..." if len(text) > limit else "")
