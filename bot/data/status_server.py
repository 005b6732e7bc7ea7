"""``StatusServer``: a small HTTP server exposing a running stream's health and metrics.

Routes:

* ``GET /health``: :meth:`StreamManager.get_health` as JSON; status 200 while
  the stream is healthy or degraded, 503 when unhealthy, so a load balancer or
  an orchestrator's probe can act on the code alone;
* ``GET /metrics``: the Prometheus text exposition (:mod:`bot.data.prometheus`);
* ``GET /metrics.json``: :meth:`StreamManager.get_metrics` as JSON.

It runs on the manager's event loop, so every read sees the manager between
two ticks. The dashboard server extends it with its page and WebSocket.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

from aiohttp import web

from bot.data.health import UNHEALTHY
from bot.data.prometheus import CONTENT_TYPE, exposition, registry_for

SHUTDOWN_TIMEOUT_S = 1.0


class StatusSource(Protocol):
    """What the status server reads (``StreamManager`` provides it)."""

    def get_health(self) -> dict[str, Any]: ...
    def get_metrics(self) -> dict[str, Any]: ...


class StatusServer:
    """Serves ``/health``, ``/metrics`` and ``/metrics.json`` for one manager.

    ``port=0`` picks a free port; :attr:`port` holds the real one after
    :meth:`start`. Subclasses add routes by extending :meth:`routes`.
    """

    def __init__(self, manager: StatusSource, host: str = "127.0.0.1", port: int = 0) -> None:
        self.manager = manager
        self.host = host
        self.port = port
        self.registry = registry_for(manager.get_metrics)
        self._runner: web.AppRunner | None = None

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
        app = web.Application()
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
