"""Polite REST: rate limits, retries and typed errors shared by the venues' REST clients.

What the exchanges publish and this module does about it:

- HTTP 429 (rate limit hit) and 418 (Binance's ban after ignoring 429s) come
  with ``Retry-After`` in seconds: the request waits exactly that long, then
  is sent again. While one request waits, every other request of the same
  limiter waits too, so a burst does not turn a 429 into a 418.
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

Every wait goes through the injected ``sleep`` and is recorded in
:attr:`RateLimiter.waits`, so tests and metrics see exactly what happened.
:class:`HttpClient` is the small aiohttp base both venue clients share.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

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
    epoch) tells where the current minute ends.
    """

    def __init__(self, *, weight_limit: int = 6000,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 max_retries: int = 5, clock: Callable[[], float] = time.time) -> None:
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

    async def run(self, send: Callable[[], Awaitable[Reply]], *, weight: int = 1,
                  venue: str = "") -> Reply:
        """Send a request through the limits; the first answer that is not retried.

        That is a success, a 4xx other than 429/418, or the last answer once
        ``max_retries`` retries are spent. A connection failure or timeout on
        the last attempt raises :class:`RestError` with status 0 (no answer).
        """
        attempt = 0
        while True:
            await self._before(weight)
            self._in_flight += weight
            try:
                reply = await send()
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                if attempt >= self.max_retries:
                    raise RestError(venue, 0, None,
                                    f"no answer: {type(exc).__name__}: {exc}") from exc
                delay = self._backoff(attempt)
                logger.warning("%s REST request failed (%s: %s); retry in %.1f s", venue,
                               type(exc).__name__, exc, delay)
                await self._wait(delay)
                attempt += 1
                continue
            finally:
                self._in_flight -= weight
            self._observe(reply)
            if reply.ok or attempt >= self.max_retries:
                return reply
            if reply.status in RATE_LIMIT_STATUSES:
                told = _retry_after(reply)
                delay = told if told is not None else self._backoff(attempt)
                logger.warning("%s REST answered HTTP %d; every request waits %.1f s", venue,
                               reply.status, delay)
                await self._pause(delay)
            elif reply.status >= 500:
                delay = self._backoff(attempt)
                logger.warning("%s REST answered HTTP %d; retry in %.1f s", venue,
                               reply.status, delay)
                await self._wait(delay)
            else:
                return reply
            attempt += 1

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` and hold every other request of this limiter meanwhile."""
        self._pauses += 1
        self._resumed.clear()
        try:
            await self._wait(seconds)
        finally:
            self._pauses -= 1
            if not self._pauses:
                self._resumed.set()

    async def _before(self, weight: int) -> None:
        """Wait out a running Retry-After, then the minute if the weight would pass the limit."""
        await self._resumed.wait()
        now = self._clock()
        if self._weight_minute is not None and self._weight_minute != _minute(now):
            self.used_weight, self._weight_minute = 0, None  # the exchange's minute rolled over
        if self.used_weight + self._in_flight + weight > self.weight_limit:
            delay = 60.0 - now % 60.0 + MINUTE_MARGIN_SECONDS
            logger.info("REST weight %d/%d used this minute; waiting %.1f s for the next",
                        self.used_weight + self._in_flight, self.weight_limit, delay)
            await self._wait(delay)
            self.used_weight, self._weight_minute = 0, None

    def _observe(self, reply: Reply) -> None:
        text = reply.headers.get(WEIGHT_HEADER)
        if text is not None and text.isdigit():
            self.used_weight = int(text)
            self._weight_minute = _minute(self._clock())

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_BASE_SECONDS * 2 ** attempt, BACKOFF_CAP_SECONDS)

    async def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self._sleep(seconds)


def _minute(seconds: float) -> int:
    return math.floor(seconds / 60.0)


def _retry_after(reply: Reply) -> float | None:
    """``Retry-After`` in seconds (the form Binance and Alpaca send), None if absent or odd."""
    text = reply.headers.get("Retry-After", "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class HttpClient:
    """An aiohttp session (given or owned) and GET requests through a :class:`RateLimiter`.

    Subclasses name their venue; error answers become :class:`RestError`.
    The session is created on first use when none is given, and closed by
    :meth:`close` only if this client created it.
    """

    venue = ""

    def __init__(self, base_url: str, connect_timeout: float, *,
                 session: aiohttp.ClientSession | None, limiter: RateLimiter | None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter if limiter is not None else RateLimiter()
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

    async def _get(self, path: str, params: Mapping[str, str], *, weight: int = 1) -> bytes:
        """The body of a successful GET; a :class:`RestError` for anything else."""
        url = self.base_url + path

        async def send() -> Reply:
            async with self._http().get(url, params=params, headers=self._headers) as response:
                body = await response.read()
                return Reply(response.status, response.headers, body)

        reply = await self.limiter.run(send, weight=weight, venue=self.venue)
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


def decode(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """Decode a venue's JSON answer; a :class:`MalformedFrame` naming ``what`` if it is not one."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"unexpected {what} answer: {exc}", body) from None


def _short_text(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text[:limit] + ("..." if len(text) > limit else "")
