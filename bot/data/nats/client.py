"""Connecting to NATS the way every part of this package needs it: reconnect forever.

A market-data process must outlive a NATS server restart or a cluster node
going away, so the client reconnects without limit (cycling through the given
servers) and buffers what is published while it is away. Connection changes
are logged and passed to the caller's callbacks, which is how the remote
source holds its bars while the stream may be incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats
from nats.aio.client import Client

from bot.data.redaction import redact, register_url_credentials
from bot.data.throttle import LogThrottle

logger = logging.getLogger(__name__)
_throttle = LogThrottle(logger)

Callback = Callable[[], Awaitable[None]]


def server_list(servers: str | Sequence[str]) -> list[str]:
    """``"nats://a:4222,nats://b:4222"`` or a list -> a list; ValueError when empty or not nats.

    A user name or password in a URL is registered as a secret: no log line,
    error or report shows it.
    """
    items = [s.strip() for s in (servers.split(",") if isinstance(servers, str) else servers)]
    items = [s for s in items if s]
    if not items:
        raise ValueError("servers: give at least one NATS URL, e.g. 'nats://127.0.0.1:4222'")
    for url in items:
        register_url_credentials(url)
        if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(f"servers: {redact(url)!r} is not a NATS URL; allowed schemes: "
                             "nats://, tls://, ws://, wss://")
    return items


async def connect(servers: str | Sequence[str], name: str, *,
                  on_disconnected: Callback | None = None,
                  on_reconnected: Callback | None = None,
                  start_timeout: float = 30.0, reconnect_wait: float = 0.5) -> Client:
    """Connect to one of ``servers``; later losses are retried forever.

    The first connection is retried for ``start_timeout`` seconds (a server
    starting beside us gets that long), then fails with a ConnectionError
    naming the URLs and the last error (refused, or an authorization violation),
    so a misconfigured address or credential is reported rather than awaited.
    """
    urls = server_list(servers)
    last_error: Exception | None = None

    async def disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):  # not our own close
            logger.warning("%s: disconnected from NATS", name)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected() -> None:
        logger.info("%s: reconnected to NATS at %s", name, connected_url(nc))
        if on_reconnected is not None:
            await on_reconnected()

    async def error(exc: Exception) -> None:
        nonlocal last_error
        last_error = exc
        _throttle.log(f"{name}:{type(exc).__name__}", logging.WARNING, "%s: NATS error: %r",
                      name, exc)

    try:
        nc: Client = await asyncio.wait_for(nats.connect(
            urls, name=name, connect_timeout=min(start_timeout, 5.0), allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=reconnect_wait,
            disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error),
            start_timeout)
    except TimeoutError:
        where = redact(", ".join(urls))
        why = "" if last_error is None else f" (last error: {redact(repr(last_error))})"
        raise ConnectionError(f"{name}: could not connect to NATS at {where} within "
                              f"{start_timeout:g}s{why}") from None
    return nc


def connected_url(nc: Client) -> str | None:
    """``nats://host:port`` of the server ``nc`` is connected to, None when disconnected.

    Credentials in the URL are masked: the result goes to logs and health.
    """
    url = nc.connected_url
    return redact(url.geturl()) if url is not None and nc.is_connected else None
