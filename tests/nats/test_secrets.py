"""Canary credentials never reach NATS or what the NATS parts of the package show.

Alpaca keys: an ingest worker streaming a stock with canary keys (its log at
DEBUG, where the auth frame is logged, the exchange dropping it once so it
authenticates again) sends nothing that holds them: every message on the
server (subjects, reply subjects, headers, payloads: ticks, bars, watermarks,
health reports, the JetStream API requests that create the streams), the
streams' configurations, its output, its log and its status server's answers.

NATS credentials: a user and password or a token in a NATS URL (and the HTTP
Basic header a ``ws://`` URL's credentials become) appear in no log line, health
or metrics report, status answer, CLI output or error of a worker, a remote
manager or a failed connection, nats-py's own texts included.

Every text is searched for each secret and every 8-character piece of it.
Each test uses secrets of its own: the registry of secrets lives as long as the
process, so one test's registration cannot hide another's leak.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from aiohttp import web
from nats.aio.msg import Msg

from bot.data.models import Side, Tick
from bot.data.nats.client import connect
from bot.data.nats.publisher import Publisher
from bot.data.nats.server import NatsServer
from bot.data.nats.streams import default_streams, ensure_streams
from bot.data.redaction import MASK, redact, register_url_credentials
from bot.data.sim import ExchangeSimulator
from tests.nats.support import ROOT, SYMBOL, remote, start_worker, wait_for
from tests.test_secrets_never_printed import _leaks, debug_log

__all__ = ["debug_log"]  # the fixture, imported for the tests below

ALPACA_KEY = "PKNATSCANARY7Q2ZX1"
ALPACA_SECRET = "SkNatsCanarySecret4Hq2Lm9Vx"


async def _spy(url: str, subject: str) -> tuple[nats.NATS, list[str]]:
    """A plain nats-py client recording every message on ``subject``: subject, reply
    subject, headers and payload, as text."""
    seen: list[str] = []

    async def record(msg: Msg) -> None:
        seen.append(f"{msg.subject} {msg.reply} {msg.headers} "
                    f"{msg.data.decode('utf-8', 'replace')}")

    client = await nats.connect(url)
    await client.subscribe(subject, cb=record)
    return client, seen


async def _http_answers(base: str) -> dict[str, str]:
    answers = {}
    async with aiohttp.ClientSession() as http:
        for path in ("/health", "/metrics", "/metrics.json"):
            async with http.get(f"{base}{path}") as resp:
                answers[path] = await resp.text()
    return answers


async def test_an_ingest_worker_sends_no_alpaca_credential_to_nats(
        nats_server: NatsServer, tmp_path: Path) -> None:
    spy, seen = await _spy(nats_server.url, ">")  # everything on the server, JetStream API too
    log = tmp_path / "worker.log"
    async with ExchangeSimulator(["BTC/USDT"], ["AAPL"], history_seconds=120,
                                 alpaca_keys={ALPACA_KEY: ALPACA_SECRET}) as sim:
        worker = await start_worker(nats_server.url, sim, "w-canary", ["BTC/USDT"],
                                    "--stocks", "AAPL", "--log-level", "DEBUG",
                                    "--status-port", "0", stderr=log)
        try:
            status_url = (await worker.readline()).removeprefix("status ")

            def stock_ticks() -> int:
                return sum(s.startswith("md.tick.alpaca.AAPL ") for s in seen)

            await wait_for(lambda: stock_ticks() > 0 and any(
                s.startswith("md.health.w-canary ") for s in seen), 30, "AAPL ticks and health")
            sim.drop_all()  # the worker authenticates again, REST recovers the gap
            before = stock_ticks()
            await wait_for(lambda: stock_ticks() > before + 5, 30, "AAPL ticks after the drop")
            answers = await _http_answers(status_url)
            js = spy.jetstream()
            configs = {name: json.dumps((await js.stream_info(name)).config.as_dict())
                       for name in ("MD_TICKS", "MD_BARS", "MD_SIGNALS")}
        finally:
            await worker.stop()
            await spy.close()
    worker_log = log.read_text()
    assert '"action":"auth"' in worker_log, "the auth frame was sent and logged at DEBUG"
    found = {"messages": _leaks("\n".join(seen), ALPACA_KEY, ALPACA_SECRET),
             "stdout": _leaks("\n".join(worker.lines), ALPACA_KEY, ALPACA_SECRET),
             "log": _leaks(worker_log, ALPACA_KEY, ALPACA_SECRET)}
    found.update({f"http {path}": _leaks(body, ALPACA_KEY, ALPACA_SECRET)
                  for path, body in answers.items()})
    found.update({f"config {name}": _leaks(config, ALPACA_KEY, ALPACA_SECRET)
                  for name, config in configs.items()})
    assert {name: pieces for name, pieces in found.items() if pieces} == {}


class Secured:
    """A nats-server that wants credentials, the URL that carries them, and a URL with
    wrong ones; every value is a canary of its own test (the registry of secrets
    outlives a test, so a value shared by two tests could hide one's leak)."""

    def __init__(self, tmp_path: Path, kind: str, tag: str) -> None:
        self.kind = kind
        secrets: tuple[str, ...]
        if kind == "password":
            user, password = f"md{tag}user", f"NatsPassCanary{tag}"
            options: tuple[str, ...] = ("--user", user, "--pass", password)
            credentials, secrets = f"{user}:{password}", (user, password)
        else:
            token = f"NatsTokenCanary{tag}"
            options, credentials, secrets = ("--auth", token), token, (token,)
        wrong_user, wrong_password = f"wrong{tag}", f"WrongPassCanary{tag}"
        self.server = NatsServer(tmp_path / "jetstream", options=options)
        self.url = self.server.url.replace("nats://", f"nats://{credentials}@")
        self.wrong_url = self.server.url.replace("nats://",
                                                 f"nats://{wrong_user}:{wrong_password}@")
        self.credentials = credentials
        self.masked_url = self.server.url.replace(
            "nats://", f"nats://{':'.join(MASK for _ in credentials.split(':'))}@")
        # A ws:// URL's credentials go out as an HTTP Basic header: base64 of user:password.
        pair = credentials if ":" in credentials else f"{credentials}:"
        self.secrets = (*secrets, wrong_user, wrong_password,
                        base64.b64encode(pair.encode()).decode())

    def leaks(self, text: str | bytes) -> list[str]:
        return _leaks(text, *self.secrets)


@pytest.fixture(params=["password", "token"])
def secured(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Secured]:
    """A server wanting ``nats://user:password@host:port`` or ``nats://token@host:port``."""
    tag = hashlib.blake2b(request.node.nodeid.encode(), digest_size=4).hexdigest()
    secured = Secured(tmp_path, request.param, tag)
    with secured.server:
        yield secured


async def _cli_output(*argv: str) -> str:
    """stdout and stderr of ``bot-stream ingest ARGV`` (``python -m bot.data``), at DEBUG."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.data", "ingest", *argv, "--log-level", "DEBUG",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return f"exit {process.returncode}\n{out.decode('utf-8', 'replace')}"


async def test_a_workers_nats_credentials_appear_in_no_output(
        secured: Secured, sim: ExchangeSimulator, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    spy, health = await _spy(secured.url, "md.health.>")
    worker = await start_worker(secured.url, sim, "w-creds", [SYMBOL], "--log-level", "DEBUG",
                                "--status-port", "0", stderr=log)
    try:
        status_url = (await worker.readline()).removeprefix("status ")
        await wait_for(lambda: bool(health), 20, "a health report")
        await asyncio.to_thread(secured.server.restart, crash=True)  # disconnect, reconnect
        reported = len(health)
        await wait_for(lambda: len(health) > reported + 1, 30, "health after the restart")
        answers = await _http_answers(status_url)
    finally:
        await worker.stop()
        await worker.remaining_lines()
        await spy.close()
    failures = {
        "wrong credentials": await _cli_output("--symbols", SYMBOL, "--nats", secured.wrong_url,
                                               "--connect-timeout", "1"),
        "not a NATS URL": await _cli_output(
            "--symbols", SYMBOL, "--nats", secured.url.replace("nats://", "http://"))}
    worker_log = log.read_text()
    assert worker.lines[0].endswith(f"-> {secured.masked_url}")
    assert "reconnected to NATS at nats://[redacted]" in worker_log
    assert "exit 1" in failures["wrong credentials"] and (
        "Authorization Violation" in failures["wrong credentials"])
    assert "exit 2" in failures["not a NATS URL"] and (
        "is not a NATS URL" in failures["not a NATS URL"])
    found = {"stdout": secured.leaks("\n".join(worker.lines)), "log": secured.leaks(worker_log),
             "health messages": secured.leaks("\n".join(health))}
    found.update({f"http {path}": secured.leaks(body) for path, body in answers.items()})
    found.update({f"cli, {case}": secured.leaks(text) for case, text in failures.items()})
    assert {name: pieces for name, pieces in found.items() if pieces} == {}


@contextlib.asynccontextmanager
async def _http_404() -> AsyncIterator[int]:
    """A local HTTP server answering 404 to everything (a ws:// handshake fails); its port."""
    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.SockSite(runner, socket.create_server(("127.0.0.1", 0)))
    await site.start()
    try:
        yield site._sock.getsockname()[1]
    finally:
        await runner.cleanup()


async def _refused(servers: str, name: str) -> str:
    """The error of a connection that fails, as text (``name``: its own, so that its log
    lines are not throttled as repeats of another test's)."""
    with pytest.raises(ConnectionError) as raised:
        await connect(servers, name, start_timeout=1.0)
    return str(raised.value)


async def test_a_remote_managers_nats_credentials_appear_in_no_log_report_or_error(
        secured: Secured, debug_log: io.StringIO) -> None:
    publishing = await connect(secured.url, "canary-publisher")
    await ensure_streams(publishing.jetstream(), default_streams())
    publisher = Publisher(publishing, batch_ms=0)
    await publisher.start()
    t0 = time.time_ns()
    for i in range(100):
        publisher.publish(Tick("binance", SYMBOL, 100.0, 1.0, Side.BUY, i, t0 + i, t0 + i))
    manager = remote(secured.url, "creds")
    ticks: list[int] = []
    manager.on_tick(lambda e: ticks.append(e.data.trade_id))
    reports: list[Any] = []
    errors: dict[str, str] = {}
    try:
        await manager.start()
        await wait_for(lambda: len(ticks) == 100, 20, "ticks before the restart")
        await asyncio.to_thread(secured.server.restart, crash=True)
        await wait_for(lambda: manager.get_health()["source"]["connected"], 20, "reconnected")
        reports += [manager.get_health(), manager.get_metrics(), manager.source.state()]
        errors["wrong credentials"] = await _refused(secured.wrong_url,
                                                    f"refused-{secured.kind}")
        async with _http_404() as ws_port:
            errors["ws handshake refused"] = await _refused(
                f"ws://{secured.credentials}@127.0.0.1:{ws_port}", f"ws-{secured.kind}")
        failing = remote(secured.wrong_url, f"refused-{secured.kind}")
        with pytest.raises(ConnectionError) as raised:
            await failing.start(1.0)
        errors["remote manager start"] = str(raised.value)
        reports.append(failing.get_health())
    finally:
        await manager.stop()
        await publisher.stop()
        await publishing.close()
    log = debug_log.getvalue()
    assert "Authorization Violation" in errors["wrong credentials"]
    assert "'Authorization': 'Basic " in log, "aiohttp's error shows the handshake's headers"
    assert f"at {secured.masked_url}" in log, "the reconnection was logged"
    found = {"log": secured.leaks(log), "reports": secured.leaks(json.dumps(reports))}
    found.update({case: secured.leaks(text) for case, text in errors.items()})
    assert {name: pieces for name, pieces in found.items() if pieces} == {}


def test_url_credentials_are_masked_as_written_percent_decoded_and_as_basic_auth() -> None:
    register_url_credentials("ws://basicuser7:Pa%40ssCanary%2F31@host:443")
    basic = base64.b64encode(b"basicuser7:Pa@ssCanary/31").decode()  # aiohttp's header value
    text = f"Pa%40ssCanary%2F31 Pa@ssCanary/31 basicuser7 'Authorization': 'Basic {basic}'"
    assert redact(text) == f"{MASK} {MASK} {MASK} 'Authorization': 'Basic {MASK}'"
