"""``StatusServer``: a small HTTP server exposing a running stream's health and metrics.

Routes:

* ``GET /health``: :meth:`StreamManager.get_health` as JSON; status 200 while
  the stream is healthy or degraded, 503 when unhealthy, so a load balancer or
  an orchestrator's probe can act on the code alone;
* ``GET /metrics``: the Prometheus text exposition (:mod:`bot.data.prometheus`);
* ``GET /metrics.json``: :meth:`StreamManager.get_metrics` as JSON.

It runs on the manager's event loop, so every read sees the manager between
two ticks. The dashboard server extends it with its page and WebSocket.

It answers only requests addressed to itself (:class:`HostGuard`): the ``Host``
header must name the bound address, ``localhost``, ``127.0.0.1`` or ``[::1]``
with the server's port (any IP address with it when bound to all interfaces),
or one of the ``allowed_hosts`` the user names; a WebSocket upgrade must also
come without ``Origin`` or from such an origin. Anything else gets 403, so a
web page elsewhere can neither read the stream through DNS rebinding nor open
the dashboard's WebSocket from the user's browser (cross-site WebSocket
hijacking).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from bot.data.health import UNHEALTHY
from bot.data.prometheus import CONTENT_TYPE, exposition, registry_for

SHUTDOWN_TIMEOUT_S = 1.0


class StatusSource(Protocol):
    """What the status server reads (``StreamManager`` provides it)."""

    def get_health(self) -> dict[str, Any]: ...
    def get_metrics(self) -> dict[str, Any]: ...


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})


class HostGuard:
    """Which ``Host`` and ``Origin`` values a server bound to ``host``:``port`` accepts.

    ``allowed_hosts``: further names (a DNS name, a proxy's name) accepted on any port.
    """

    def __init__(self, host: str, port: int, allowed_hosts: Iterable[str] = ()) -> None:
        self.host = host.strip("[]").lower()
        self.port = port
        self.extra = frozenset(h.strip("[]").lower() for h in allowed_hosts)

    def accepts_host(self, value: str | None) -> bool:
        """True when a ``Host`` header (``name[:port]``) addresses this server."""
        if not value:
            return False
        split = urlsplit(f"//{value}")
        try:
            name, port = (split.hostname or ""), split.port
        except ValueError:  # a port that is not a number
            return False
        if name in self.extra:
            return True
        if port is not None and port != self.port:
            return False
        if name in LOOPBACK_NAMES or name == self.host:
            return True
        return self.host in WILDCARD_ADDRESSES and _is_ip(name)

    def accepts_origin(self, value: str | None) -> bool:
        """True when an ``Origin`` header is absent or names this server."""
        if value is None:
            return True
        split = urlsplit(value)
        return split.scheme in ("http", "https") and self.accepts_host(split.netloc)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class StatusServer:
    """Serves ``/health``, ``/metrics`` and ``/metrics.json`` for one manager.

    ``port=0`` picks a free port; :attr:`port` holds the real one after
    :meth:`start`. ``allowed_hosts``: host names besides the bound address and
    the loopback names that requests may be addressed to (see :class:`HostGuard`).
    Subclasses add routes by extending :meth:`routes`.
    """

    def __init__(self, manager: StatusSource, host: str = "127.0.0.1", port: int = 0, *,
                 allowed_hosts: Iterable[str] = ()) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.allowed_hosts = tuple(allowed_hosts)
        self.registry = registry_for(manager.get_metrics)
        self._runner: web.AppRunner | None = None
        self._guard = HostGuard(host, port, self.allowed_hosts)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/health", self.health), web.get("/metrics", self.metrics),
                web.get("/metrics.json", self.metrics_json)]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8787``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the port and serve; a port in use raises ``OSError`` naming it."""
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._check_addressed])
        app.add_routes(self.routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self.port}: "
                                     f"{exc.strerror}") from exc
        self._runner = runner
        self.port = runner.addresses[0][1]
        self._guard = HostGuard(self.host, self.port, self.allowed_hosts)

    async def stop(self) -> None:
        """Close every connection and release the port; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StatusServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @web.middleware
    async def _check_addressed(self, request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                               ) -> web.StreamResponse:
        """403 for a request not addressed to this server, or a foreign WebSocket origin."""
        if not self._guard.accepts_host(request.headers.get(hdrs.HOST)):
            return web.Response(status=403, text="403: Host not allowed\n")
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        if upgrade and not self._guard.accepts_origin(request.headers.get(hdrs.ORIGIN)):
            return web.Response(status=403, text="403: cross-origin WebSocket refused\n")
        return await handler(request)

    # -- handlers --------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        report = self.manager.get_health()
        return web.json_response(report, status=503 if report["status"] == UNHEALTHY else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=exposition(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def metrics_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.manager.get_metrics())
