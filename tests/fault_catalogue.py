"""A catalogue of real-world exchange faults, and the invariants a run must keep through them.

Each fault is something Binance does to a client (documented, or seen in its
data): trade records a gate must refuse (price 0, quantity 0, as in USDⓈ-M
data), frames lost, doubled or late, connections cut, outages during which
handshakes get HTTP 503 and more than a REST page of trades is missed, REST
429 / 418 with ``Retry-After``, 5xx, garbage and short answers, server pings,
silent sockets, the 24-hour disconnect and ``serverShutdown``, and one deeply
nested frame. :func:`draw` picks a sequence from a seed; :class:`Run` applies
it to a :class:`~bot.data.sim.ExchangeSimulator` while a ``StreamManager``
streams from it, and :meth:`Run.check` judges the run against the exchange's
own trade log:

* **ticks**: every market trade of the log from the first whole interval on
  reaches TICK exactly once, as the exchange executed it, or its id lies in
  ``missing_ids`` of a gap the manager reported for that symbol (a gap without
  ids covers the trades whose millisecond time lies in ``[start_ns, end_ns]``);
  no refused record ever reaches TICK; every symbol catches up with the log;
* **bars**: every completed bar equals :func:`tests.reference.reference_bars`
  over the log without refused records, in every field, unless it carries GAP
  (or PARTIAL, for a series' first bar); every interval completes exactly once;
* **REST**: requests per endpoint, counted by the simulator, stay within
  :meth:`Run.rest_bounds` (warm-up pages per symbol and timeframe, plus for
  each stream interruption ``ceil(missed / 1000) + 1`` trade pages, plus one
  retry per faulted answer), and all of them together within the library's
  :func:`~bot.data.venues.binance.history.binance_request_bound`;
* **memory**: tick buffers, bar histories, aggregator state and recovery
  buffers stay within their sizes, sampled every 100 ms;
* **tasks**: no task of the manager ends with an exception nobody retrieved,
  no connection is ``connected`` with a dead task, the loop reported nothing.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bot.data.config import StreamManagerConfig
from bot.data.events import StreamEvent
from bot.data.models import Bar, BarFlag, Side, Tick
from bot.data.sim import ExchangeSimulator
from bot.data.sim.trades import SimTrade
from bot.data.stream_manager import StreamManager
from bot.data.timeframes import TIMEFRAME_SECONDS
from bot.data.venues.binance.history import binance_request_bound
from tests.reference import reference_bars

NS = 1_000_000_000
MS = 1_000_000
PAGE = 1000  # rows per Binance REST page
TOTAL = "all requests"  # the key of the whole run's REST bound beside the endpoints'
FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "buy_volume", "sell_volume",
          "buy_quote_volume", "trade_count", "first_trade_id", "last_trade_id")
INTEGER_FIELDS = ("trade_count", "first_trade_id", "last_trade_id")
REL = 1e-9


@dataclass(frozen=True)
class Settings:
    """The market and the manager of a run, chosen so a run takes seconds."""

    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    speed: float = 80.0  # market seconds per wall second: a 1m bar lasts 0.75 s
    history_seconds: float = 900.0
    timeframes: tuple[str, ...] = ("1m", "5m")
    bar_history_size: int = 50
    tick_buffer_size: int = 2000
    silence_timeout: float = 2.0  # wall seconds
    probe_timeout: float = 0.5  # wall seconds: a silent socket is found by its probe first
    backfill_timeout: float = 10.0  # wall seconds
    outage_trades: int = 1100  # an outage lasts until each symbol missed this many trades

    def config(self) -> StreamManagerConfig:
        return StreamManagerConfig(
            supported_timeframes=list(self.timeframes), default_timeframe=self.timeframes[0],
            bar_history_size=self.bar_history_size, tick_buffer_size=self.tick_buffer_size,
            reconnect_delay=0.05, max_reconnect_delay=0.3, reconnect_attempts=500,
            connect_timeout=3.0, silence_timeout_seconds=self.silence_timeout,
            stable_connection_seconds=1.0, backfill_timeout_seconds=self.backfill_timeout,
            liveness_probe_timeout_seconds=self.probe_timeout,
            # Market time: 0.6 s of wall time at the default speed. A trade delivered later
            # than the grace is late (counted, not ticked); 0.3 s was exceeded under a
            # fully loaded machine.
            bar_close_grace_ms=int(0.6 * self.speed * 1000), health_check_interval=0.5)


@dataclass
class Injected:
    """One fault as applied: what, where, and what the REST bound must allow for it."""

    name: str
    detail: str
    symbol: str | None = None
    interruptions: int = 0  # stream interruptions of ``symbol`` it causes (gap fills)
    market_ns: int = 0  # market time when it was injected
    wall_s: float = 0.0  # wall seconds into the run when it was injected
    rest: Counter[str] = field(default_factory=Counter)  # REST requests until the next fault

    def describe(self) -> str:
        rest = ", ".join(f"{n} {p.rsplit('/', 1)[-1]}" for p, n in sorted(self.rest.items()))
        return (f"{self.name} ({self.detail}) at {self.wall_s:.1f} s (market {self.market_ns}), "
                f"then REST: {rest or 'none'}")


FaultFn = Callable[["Run", random.Random], Coroutine[Any, Any, Injected]]


# -- the catalogue --------------------------------------------------------------------
async def refused_trades(run: Run, rng: random.Random) -> Injected:
    symbol, count = rng.choice(run.settings.symbols), rng.randint(1, 3)
    run.sim.refuse_trades(symbol, count)
    return Injected("refused trades", f"{count} x price 0 qty 0 on {symbol}", symbol)


async def duplicated_frames(run: Run, rng: random.Random) -> Injected:
    symbol, count = rng.choice(run.settings.symbols), rng.randint(1, 5)
    run.sim.duplicate_trade_frames(symbol, count)
    return Injected("duplicated frames", f"{count} on {symbol}", symbol)


async def reordered_frames(run: Run, rng: random.Random) -> Injected:
    symbol, count, behind = rng.choice(run.settings.symbols), rng.randint(1, 3), rng.randint(1, 4)
    run.sim.delay_trade_frames(symbol, count, behind)
    return Injected("reordered frames", f"{count} on {symbol}, each {behind} frames late",
                    symbol, interruptions=count)


async def id_jump(run: Run, rng: random.Random) -> Injected:
    symbol, count = rng.choice(run.settings.symbols), rng.randint(1, 50)
    run.sim.lose_trade_frames(symbol, count)
    return Injected("trade-id jump", f"{count} frames of {symbol} lost (REST has them)", symbol,
                    interruptions=1)


async def connection_drop(run: Run, rng: random.Random) -> Injected:
    run.sim.drop_all()
    return Injected("connection drop", "every socket cut, no close frame")


async def long_outage(run: Run, rng: random.Random) -> Injected:
    """Handshakes refused with 503 until every symbol missed more than a REST page of trades."""
    before = {s: run.last_trade_id(s) for s in run.settings.symbols}
    run.sim.refuse_connections(60.0)
    run.sim.drop_all()
    for _ in range(400):
        await asyncio.sleep(0.05)
        missed = {s: run.last_trade_id(s) - before[s] for s in run.settings.symbols}
        if min(missed.values()) >= run.settings.outage_trades:
            break
    run.sim.refuse_connections(0.0)
    return Injected("long outage", "503 to every handshake while "
                    + ", ".join(f"{s} traded {n}" for s, n in missed.items()))


async def refused_reconnects(run: Run, rng: random.Random) -> Injected:
    seconds = round(rng.uniform(1.0, 2.5), 2)
    run.sim.refuse_connections(seconds)
    run.sim.drop_all()
    await asyncio.sleep(seconds)
    return Injected("reconnects refused", f"HTTP 503 to every handshake for {seconds} s")


def _rest_fault(name: str, arm: Callable[[Run, random.Random], str]) -> FaultFn:
    """A REST fault, armed, then a few lost frames so a gap fill meets it."""

    async def inject(run: Run, rng: random.Random) -> Injected:
        detail = arm(run, rng)
        symbol = rng.choice(run.settings.symbols)
        run.sim.lose_trade_frames(symbol, 5)
        await run.wait_rest_faults_spent(5.0)
        return Injected(name, f"{detail}, met by a fill of {symbol}", symbol, interruptions=1)

    inject.__name__ = name.replace(" ", "_")
    return inject


def _arm_429(run: Run, rng: random.Random) -> str:
    count = rng.randint(1, 2)
    run.sim.fail_rest(count, 429, retry_after=1)
    return f"{count} x 429 Retry-After 1"


def _arm_418(run: Run, rng: random.Random) -> str:
    run.sim.fail_rest(1, 418, retry_after=1)
    return "418 Retry-After 1"


def _arm_5xx(run: Run, rng: random.Random) -> str:
    status = rng.choice((500, 502, 503, 504))
    run.sim.fail_rest(1, status)
    return f"HTTP {status}"


def _arm_garbage(run: Run, rng: random.Random) -> str:
    run.sim.garble_rest(1)
    return "200 with half a body"


def _arm_short(run: Run, rng: random.Random) -> str:
    count = rng.randint(1, 2)
    run.sim.short_rest_pages(count)
    return f"{count} x 200 with half the rows"


async def server_pings(run: Run, rng: random.Random) -> Injected:
    seconds = round(rng.uniform(1.0, 2.0), 2)
    run.sim.set_ping_interval(0.5)  # 2 pongs a second: within Binance's 5 messages a second
    await asyncio.sleep(seconds)
    run.sim.set_ping_interval(20.0)
    return Injected("server pings", f"a ping every 0.5 s for {seconds} s")


async def silent_socket(run: Run, rng: random.Random) -> Injected:
    seconds = round(rng.uniform(1.5, 1.5 * run.settings.silence_timeout), 2)
    run.sim.go_silent(True)
    await asyncio.sleep(seconds)
    run.sim.go_silent(False)
    return Injected("silent socket", f"open, nothing sent for {seconds} s")


async def day_rollover(run: Run, rng: random.Random) -> Injected:
    """The 24-hour mark, brought forward: every connection open 10 market seconds is closed."""
    run.sim.set_connection_lifetime(10.0)
    await asyncio.sleep(0.3)
    run.sim.set_connection_lifetime(86_400.0)
    return Injected("24-hour rollover", "connection lifetime reached, closed with 1000")


async def server_shutdown(run: Run, rng: random.Random) -> Injected:
    await run.sim.server_shutdown(0.2)
    return Injected("serverShutdown", "serverShutdown event, connections closed 0.2 s later")


async def drop_after_rollover(run: Run, rng: random.Random) -> Injected:
    """``serverShutdown``, and the replacement connection is cut as soon as the old one closes."""
    await run.sim.server_shutdown(0.2)
    run.sim.drop_all()
    return Injected("drop after rollover", "serverShutdown, old closed 0.2 s later, every "
                    "socket cut right after")


async def nested_frame(run: Run, rng: random.Random) -> Injected:
    run.sim.send_nested_frame(100_000)
    return Injected("nested frame", "one JSON frame nested 100,000 objects deep")


CATALOGUE: dict[str, FaultFn] = {
    "refused trades": refused_trades,
    "duplicated frames": duplicated_frames,
    "reordered frames": reordered_frames,
    "trade-id jump": id_jump,
    "connection drop": connection_drop,
    "long outage": long_outage,
    "reconnects refused": refused_reconnects,
    "REST 429": _rest_fault("REST 429", _arm_429),
    "REST 418": _rest_fault("REST 418", _arm_418),
    "REST 5xx": _rest_fault("REST 5xx", _arm_5xx),
    "REST garbage": _rest_fault("REST garbage", _arm_garbage),
    "REST short page": _rest_fault("REST short page", _arm_short),
    "server pings": server_pings,
    "silent socket": silent_socket,
    "24-hour rollover": day_rollover,
    "serverShutdown": server_shutdown,
    "drop after rollover": drop_after_rollover,
    "nested frame": nested_frame,
}


def draw(seed: int, count: int, kinds: Sequence[str] = ()) -> list[str]:
    """``count`` fault names drawn by ``seed`` from ``kinds`` (default: the whole catalogue).

    Refused trades come in every run that may draw them: each run checks the gate.
    """
    unknown = [k for k in kinds if k not in CATALOGUE]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; the catalogue has {list(CATALOGUE)}")
    pool = list(kinds or CATALOGUE)
    rng = random.Random(seed)
    if "refused trades" not in pool:
        return [rng.choice(pool) for _ in range(count)]
    names = [rng.choice(pool) for _ in range(count - 1)]
    names.insert(rng.randrange(count), "refused trades")
    return names


# -- one run ----------------------------------------------------------------------------
@dataclass
class Verdict:
    """Checks passed and failures, by invariant."""

    passed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, invariant: str, ok: bool, failure: str) -> bool:
        """Count one check of ``invariant``; keep ``failure`` when it did not hold."""
        if ok:
            self.passed[invariant] += 1
        else:
            self.failures.append(f"[{invariant}] {failure}")
        return ok


@dataclass
class Run:
    """A simulator, a manager streaming from it, what the manager emitted, and the faults."""

    settings: Settings
    sim: ExchangeSimulator
    manager: StreamManager
    ticks: dict[tuple[str, int], Tick] = field(default_factory=dict)
    tick_counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    bars: list[Bar] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    peaks: Counter[str] = field(default_factory=Counter)
    loop_errors: list[str] = field(default_factory=list)
    dead_connections: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    start_ns: int = 0  # market time once start() returned
    end_ids: dict[str, int] = field(default_factory=dict)
    initial_connections: int = 0
    settle_s: float = 0.0  # wall seconds from healing the exchange to everything caught up
    unmeasured: set[str] = field(default_factory=set)  # buffers the sampler could not find

    def listen(self) -> None:
        """Record every TICK, completed bar and reported gap."""
        self.manager.on_tick(self._on_tick)
        self.manager.on_bar_complete(self.bars.append)
        self.manager.on_health(self._on_health)

    def _on_tick(self, event: StreamEvent) -> None:
        tick: Tick = event.data
        key = (tick.symbol, tick.trade_id)
        self.tick_counts[key] += 1
        self.ticks.setdefault(key, tick)

    def _on_health(self, event: StreamEvent) -> None:
        for gap in event.data.get("gaps") or ():
            if gap not in self.gaps:
                self.gaps.append(gap)

    def last_trade_id(self, symbol: str) -> int:
        trades = self.sim.trades("binance", symbol)
        return trades[-1].trade_id if trades else -1

    async def wait_rest_faults_spent(self, timeout: float) -> None:
        for _ in range(int(timeout / 0.05)):
            if self.sim.faults.rest is None:
                return
            await asyncio.sleep(0.05)

    # -- watching -------------------------------------------------------------------
    def track_tasks(self) -> Callable[[], None]:
        """Record every task created from now on and every error the loop reports."""
        loop = asyncio.get_running_loop()
        old_factory, old_handler = loop.get_task_factory(), loop.get_exception_handler()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            self.tasks.append(task)
            return task

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            self.loop_errors.append(f"{context.get('message')}: {context.get('exception')!r}")

        loop.set_task_factory(factory)
        loop.set_exception_handler(handler)

        def restore() -> None:
            loop.set_task_factory(old_factory)
            loop.set_exception_handler(old_handler)

        return restore

    async def sample(self) -> None:
        """Every 100 ms: the sizes of the manager's buffers, and connections alive."""
        while True:
            self._sample_once()
            await asyncio.sleep(0.1)

    def _sample_once(self) -> None:
        pipeline = self.manager.pipeline
        for deque_ in pipeline.ticks.values():
            self._peak("tick buffer", len(deque_))
        for history in pipeline.bars.values():
            self._peak("bar history", len(history))
        # Private state, read where it is today; what cannot be found is reported unmeasured.
        for state in self._private(pipeline.aggregator, "_symbols", "aggregator"):
            for name in ("open_bars", "marks", "closed_ids"):
                if hasattr(state, name):
                    self._peak(f"aggregator {name.replace('_', ' ')}", len(getattr(state, name)))
                else:
                    self.unmeasured.add(f"aggregator {name}")
        for cursor in self._private(self.manager._recovery, "_cursors", "recovery"):
            if hasattr(cursor, "buffer"):
                self._peak("recovery buffer", len(cursor.buffer))
            else:
                self.unmeasured.add("recovery buffer")
        for conn in self.manager._connections:
            task = getattr(conn, "_task", None)
            if (conn.state.value == "connected" and task is not None and task.done()
                    and conn.name not in self.dead_connections):
                self.dead_connections.append(conn.name)

    def _private(self, owner: object, name: str, what: str) -> list[Any]:
        found = getattr(owner, name, None)
        if not isinstance(found, dict):
            self.unmeasured.add(what)
            return []
        return list(found.values())

    def _peak(self, name: str, value: int) -> None:
        if value > self.peaks[name]:
            self.peaks[name] = value

    # -- the run ----------------------------------------------------------------------
    async def apply(self, names: list[str], rng: random.Random) -> None:
        began = time.monotonic()
        for name in names:
            before, market_ns = Counter(self.sim.counters.rest_by_endpoint), self.sim.now_ns()
            wall_s = time.monotonic() - began
            fault = await CATALOGUE[name](self, rng)
            fault.market_ns, fault.wall_s = market_ns, wall_s
            self.injected.append(fault)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            fault.rest = Counter(self.sim.counters.rest_by_endpoint) - before

    def fault_before(self, time_ns: int) -> str:
        """The last fault injected before market time ``time_ns`` (to route a failure).

        A second of wall time is allowed for frames in flight when the fault came.
        """
        slack = int(self.settings.speed * NS)
        earlier = [f for f in self.injected if f.market_ns <= time_ns + slack]
        return f"after '{earlier[-1].name}' ({earlier[-1].detail})" if earlier else \
            "before the first fault"

    async def settle(self, timeout: float = 15.0) -> None:
        """Heal the exchange; wait until every symbol's TICKs reach the log and bars close."""
        self.sim.clear_faults()
        self.sim.set_ping_interval(20.0)
        self.sim.set_connection_lifetime(86_400.0)
        await asyncio.sleep(0.5)
        self.end_ids = {s: self._last_market_id(s) for s in self.settings.symbols}
        ends = {s: self._trade(s, i).time_ns for s, i in self.end_ids.items()}
        base = TIMEFRAME_SECONDS[self.settings.timeframes[0]] * NS

        def settled() -> bool:
            seen = self._max_seen()
            closed = {(b.symbol, b.open_time) for b in self.bars
                      if b.timeframe == self.settings.timeframes[0]}
            return (all(seen.get(s, -1) >= i for s, i in self.end_ids.items())
                    and not self.manager.get_health()["backfilling"]
                    and all((s, ends[s] - ends[s] % base) in closed for s in ends))

        began = time.monotonic()
        while time.monotonic() - began < timeout and not settled():
            await asyncio.sleep(0.05)
        self.settle_s = time.monotonic() - began

    def _max_seen(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for symbol, trade_id in self.tick_counts:
            out[symbol] = max(out.get(symbol, -1), trade_id)
        return out

    def _last_market_id(self, symbol: str) -> int:
        return next(t.trade_id for t in reversed(self.sim.trades("binance", symbol))
                    if t.is_market)

    def _trade(self, symbol: str, trade_id: int) -> SimTrade:
        log = self.sim.trades("binance", symbol)
        return log[trade_id - log[0].trade_id]

    # -- the invariants ---------------------------------------------------------------
    def check(self, verdict: Verdict, before_stop: dict[str, Any]) -> None:
        for symbol in self.settings.symbols:
            log = self.sim.trades("binance", symbol)
            self._check_ticks(verdict, symbol, log)
            self._check_bars(verdict, symbol, log)
        self._check_rest(verdict)
        self._check_memory(verdict)
        self._check_tasks(verdict, before_stop)

    def _first_expected_ns(self) -> int:
        base = TIMEFRAME_SECONDS[self.settings.timeframes[0]] * NS
        return self.start_ns - self.start_ns % base

    def _excused(self, symbol: str, trade: SimTrade) -> bool:
        """True when ``trade`` lies in a gap the manager reported for ``symbol``."""
        ms = trade.time_ns // MS * MS
        for gap in self.gaps:
            if gap["symbol"] != symbol:
                continue
            ids = gap.get("missing_ids")
            if ids is not None and ids[0] <= trade.trade_id <= ids[1]:
                return True
            if ids is None and gap["start_ns"] <= ms <= gap["end_ns"]:
                return True
        return False

    def _check_ticks(self, verdict: Verdict, symbol: str, log: list[SimTrade]) -> None:
        by_id = {t.trade_id: t for t in log}
        end_id = self.end_ids.get(symbol, -1)
        seen = self._max_seen().get(symbol, -1)
        health = self.manager.get_health() if seen < end_id else {}
        verdict.check("caught up", seen >= end_id, (
            f"{symbol}: last TICK id {seen}, {end_id - seen} trades behind the log's {end_id}; "
            f"health {health.get('status')}, backfilling {health.get('backfilling')}"))
        for (sym, trade_id), count in self.tick_counts.items():
            if sym != symbol:
                continue
            trade = by_id.get(trade_id)
            verdict.check("tick exactly once", count == 1,
                          f"{symbol} trade {trade_id} reached TICK {count} times")
            if trade is None:
                verdict.check("tick is the exchange's trade", False,
                              f"{symbol} TICK {trade_id} is not in the log")
                continue
            if not verdict.check("refused never ticks", trade.is_market, (
                    f"{symbol} trade {trade_id} (price {trade.price}, qty {trade.qty}) "
                    "reached TICK")):
                continue
            tick = self.ticks[(sym, trade_id)]
            want = (float(trade.price), float(trade.qty), trade.time_ns // MS * MS,
                    Side.SELL if trade.buyer_is_maker else Side.BUY)
            got = (tick.price, tick.volume, tick.timestamp, tick.side)
            verdict.check("tick is the exchange's trade", got == want,
                          f"{symbol} TICK {trade_id} is {got}, the exchange's {want}")
        first_ns = self._first_expected_ns()
        missing: list[int] = []
        for trade in log:
            if trade.time_ns < first_ns or trade.trade_id > end_id or not trade.is_market:
                continue
            if (symbol, trade.trade_id) in self.tick_counts:
                verdict.passed["every trade ticks or is in a gap"] += 1
            elif self._excused(symbol, trade):
                verdict.passed["every trade ticks or is in a gap"] += 1
                verdict.passed["missing trades inside reported gaps"] += 1
            else:
                missing.append(trade.trade_id)
        if missing:
            first = by_id[missing[0]]
            verdict.check("every trade ticks or is in a gap", False, (
                f"{symbol}: {len(missing)} trades never reached TICK and lie in no reported "
                f"gap: ids {_spans(missing)}; the first {self.fault_before(first.time_ns)}"))

    def _check_bars(self, verdict: Verdict, symbol: str, log: list[SimTrade]) -> None:
        market = [_as_tick(symbol, t) for t in log if t.is_market]
        for timeframe in self.settings.timeframes:
            got = sorted((b for b in self.bars if b.symbol == symbol and b.timeframe == timeframe),
                         key=lambda b: b.open_time)
            truth = pd.DataFrame(reference_bars(market, timeframe).xs(symbol))
            keys = Counter(b.open_time for b in got)
            twice = sorted(k for k, n in keys.items() if n > 1)
            verdict.check("bar completes once", not twice,
                          f"{symbol} {timeframe}: bars completed twice: {twice}")
            for i, bar in enumerate(got):
                self._check_bar(verdict, bar, truth, first=i == 0)
            self._check_every_interval(verdict, symbol, timeframe, keys)

    def _check_bar(self, verdict: Verdict, bar: Bar, truth: pd.DataFrame, first: bool) -> None:
        name = f"{bar.symbol} {bar.timeframe} {bar.open_time}"
        if bar.flags & BarFlag.GAP or (first and bar.flags & BarFlag.PARTIAL):
            verdict.passed["bars flagged"] += 1
            return
        if bar.flags & BarFlag.EMPTY:
            verdict.check("bar equals reference", bar.open_time not in truth.index,
                          f"{name}: EMPTY, but the exchange traded in it")
            return
        if not verdict.check("bar equals reference", bar.open_time in truth.index,
                             f"{name}: has {bar.trade_count} trades, the exchange none"):
            return
        row = truth.loc[bar.open_time]
        wrong = [f"{f}={getattr(bar, f)!r} (reference {row[f]!r})" for f in FIELDS
                 if not _close(getattr(bar, f), row[f], f in INTEGER_FIELDS)]
        verdict.check("bar equals reference", not wrong,
                      f"{name} flags {bar.flags!r}: " + ", ".join(wrong)
                      + f"; {self.fault_before(bar.close_time)}")

    def _check_every_interval(self, verdict: Verdict, symbol: str, timeframe: str,
                              keys: Counter[int]) -> None:
        length = TIMEFRAME_SECONDS[timeframe] * NS
        base = TIMEFRAME_SECONDS[self.settings.timeframes[0]] * NS
        end_id = self.end_ids.get(symbol)
        if end_id is None:
            return
        end_ns = self._trade(symbol, end_id).time_ns
        last_close = end_ns - end_ns % base  # the last base interval known to have closed
        first = self._first_expected_ns()
        opens = range(first - first % length, last_close - length + 1, length)
        absent = [o for o in opens if o not in keys and o + length <= last_close]
        verdict.passed["every interval completes"] += len(opens) - len(absent)
        verdict.check("every interval completes", not absent,
                      f"{symbol} {timeframe}: no bar completed for opens {absent}")

    def _reconnections(self) -> int:
        """Connections the exchange accepted after the first ones: each may need a fill."""
        return self.sim.counters.connections_accepted - self.initial_connections

    def _fills(self, symbol: str) -> int:
        """Gap fills ``symbol`` may need: warm-up, one per reconnection, one per frame loss."""
        losses = sum(i.interruptions for i in self.injected if i.symbol == symbol)
        return 1 + self._reconnections() + losses

    def rest_bounds(self) -> tuple[dict[str, int], list[str]]:
        """The most requests per endpoint this run may make, and how each bound is made."""
        s = self.settings
        symbols, timeframes = len(s.symbols), len(s.timeframes)
        pages = math.ceil(s.bar_history_size / PAGE)
        faulted = self.sim.counters.rest_rejected
        reconnections = self._reconnections()
        # The warm-up fill starts at the open of the interval start() began in, at most
        # one interval before the one it returned in.
        since = self._first_expected_ns() - TIMEFRAME_SECONDS[s.timeframes[0]] * NS
        trade_pages = 0
        fills: list[int] = []  # trades per fill, for binance_request_bound
        for symbol in s.symbols:
            traded = sum(1 for t in self.sim.trades("binance", symbol) if t.time_ns >= since)
            trade_pages += math.ceil(traded / PAGE) + 2 * self._fills(symbol)
            # However the trades split over the fills, the sum of n // 1000 is at most
            # traded // 1000: one fill of them all plus empty ones bounds every split.
            fills += [traded] + [0] * (self._fills(symbol) - 1)
        bounds = {
            "/api/v3/klines": symbols * (timeframes * pages + 1) + faulted,
            "/api/v3/time": symbols * (timeframes + 1) + faulted,
            "/api/v3/aggTrades": symbols * timeframes + faulted,
            "/api/v3/historicalTrades": trade_pages + 2 * faulted,
            # The symbol check: one listing per venue per process, while it is fresh.
            "/api/v3/exchangeInfo": 1 + faulted,
            # The library's own formula over the whole run (a faulted answer costs its
            # retry, and a short or garbage page one more page), plus the symbol check.
            TOTAL: binance_request_bound(symbols=symbols, timeframes=s.timeframes,
                                         bar_history_size=s.bar_history_size, fills=fills,
                                         retries=2 * faulted) + 1,
        }
        formula = [
            f"klines <= symbols*(timeframes*ceil(history/1000)+1) + faulted = {symbols}*"
            f"({timeframes}*{pages}+1) + {faulted} = {bounds['/api/v3/klines']}",
            f"time <= symbols*(timeframes+1) + faulted = {symbols}*({timeframes}+1) + {faulted}"
            f" = {bounds['/api/v3/time']}",
            f"aggTrades <= symbols*timeframes + faulted = {symbols}*{timeframes} + {faulted} = "
            f"{bounds['/api/v3/aggTrades']}",
            "historicalTrades <= sum over symbols of [ceil(traded since the warm-up "
            "interval/1000) + 2*(1 warm-up + reconnections + frame losses)] + 2*faulted = "
            f"{trade_pages} + 2*{faulted} = {bounds['/api/v3/historicalTrades']} "
            f"(reconnections {reconnections})",
            f"exchangeInfo <= 1 + faulted = {bounds['/api/v3/exchangeInfo']}",
            f"all requests <= binance_request_bound(symbols={symbols}, timeframes="
            f"{list(s.timeframes)}, bar_history_size={s.bar_history_size}, fills: the trades "
            f"since the warm-up interval and {len(fills) - symbols} more fills, "
            f"retries=2*faulted) + 1 listing = {bounds[TOTAL]}",
        ]
        return bounds, formula

    def _check_rest(self, verdict: Verdict) -> None:
        bounds, _ = self.rest_bounds()
        counts = Counter(self.sim.counters.rest_by_endpoint)
        counts[TOTAL] = sum(counts.values())
        for path in sorted(set(bounds) | set(counts)):
            bound, count = bounds.get(path, 0), counts.get(path, 0)
            verdict.check("REST within the formula", count <= bound,
                          f"{path}: {count} requests, the bound is {bound}")

    def _check_memory(self, verdict: Verdict) -> None:
        s = self.settings
        base = TIMEFRAME_SECONDS[s.timeframes[0]] * NS
        # Live ticks a fill may hold: everything traded within one fill's time-out and the
        # longest outage, in wall seconds, at the fastest rate the log shows.
        window_ns = int((s.backfill_timeout + 8.0) * s.speed * NS)
        busiest = max(_most_in_window(self.sim.trades("binance", sym), window_ns)
                      for sym in s.symbols)
        bounds = {
            "tick buffer": s.tick_buffer_size,
            "bar history": s.bar_history_size,
            "aggregator open bars": 2 + window_ns // base,
            # A fill marks at most two spans (BACKFILLED, GAP).
            "aggregator marks": 2 * max(self._fills(sym) + self.sim.counters.rest_rejected
                                        for sym in s.symbols),
            "aggregator closed ids": max(_most_in_window(self.sim.trades("binance", sym), base)
                                         for sym in s.symbols),
            "recovery buffer": busiest,
        }
        verdict.check("memory bounded", not self.unmeasured,
                      f"could not measure {sorted(self.unmeasured)} (renamed?)")
        for name, bound in bounds.items():
            peak = self.peaks.get(name, 0)
            verdict.check("memory bounded", peak <= bound,
                          f"{name}: peak {peak}, bound {bound}")

    def _check_tasks(self, verdict: Verdict, before_stop: dict[str, Any]) -> None:
        verdict.check("no dead connection", not self.dead_connections, (
            f"connections 'connected' with their task ended: {self.dead_connections}"))
        for name, state in before_stop.get("connections", {}).items():
            verdict.check("no dead connection", state == "alive",
                          f"connection {name} before stop: {state}")
        for task in self.tasks:
            if not _is_managers(task) or not task.done() or task.cancelled():
                continue
            # An exception nobody retrieved is one nobody handled: the task died silently.
            unretrieved = (id(task) in before_stop.get("unretrieved", ())
                           or bool(getattr(task, "_log_traceback", False)))
            exc = task.exception()  # retrieved now: this check reports it instead of the loop
            verdict.check("no task died", not unretrieved,
                          f"task {task.get_name()} ended with {exc!r}, never retrieved")
        verdict.check("loop reported nothing", not self.loop_errors,
                      f"the loop reported: {self.loop_errors[:5]}")

    def snapshot_tasks(self) -> dict[str, Any]:
        """Before stop: the ended tasks nobody retrieved; each connection's task alive or not.

        Read before anything here retrieves an exception (which would hide it).
        """
        unretrieved = {id(t) for t in self.tasks
                       if t.done() and not t.cancelled() and getattr(t, "_log_traceback", False)}
        conns = {}
        for conn in self.manager._connections:
            task = getattr(conn, "_task", None)
            dead = task is not None and task.done()
            conns[conn.name] = (f"task ended ({task.exception()!r}) in state {conn.state.value}"
                                if dead and task is not None and not task.cancelled()
                                else "alive")
            if dead and task is not None and not task.cancelled() and task.exception() is None:
                conns[conn.name] = f"task returned in state {conn.state.value}"
        return {"connections": conns, "unretrieved": unretrieved}


def _is_managers(task: asyncio.Task[Any]) -> bool:
    """True for a task running the manager's code (not the simulator's, aiohttp's or the test's)."""
    code = getattr(task.get_coro(), "cr_code", None)
    path = getattr(code, "co_filename", "")
    return "/bot/data/" in path and "/bot/data/sim/" not in path


def _as_tick(symbol: str, t: SimTrade) -> Tick:
    """The trade as Binance reports it (millisecond time, taker side from ``m``)."""
    return Tick("binance", symbol, float(t.price), float(t.qty),
                Side.SELL if t.buyer_is_maker else Side.BUY, t.trade_id,
                t.time_ns // MS * MS, t.time_ns)


def _close(got: float, want: Any, exact: bool) -> bool:
    if exact:
        return int(got) == int(want)
    return math.isclose(got, float(want), rel_tol=REL, abs_tol=1e-12)


def _most_in_window(trades: list[SimTrade], window_ns: int) -> int:
    """The most trades within any ``window_ns`` of market time."""
    most, lo = 0, 0
    for hi, trade in enumerate(trades):
        while trade.time_ns - trades[lo].time_ns > window_ns:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _spans(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (at most ten spans shown)."""
    spans: list[tuple[int, int]] = []
    for i in ids:
        if spans and spans[-1][1] + 1 == i:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans[:10])
    return text + (f" and {len(spans) - 10} more spans" if len(spans) > 10 else "")


async def run_catalogue(settings: Settings, seed: int, names: list[str],
                        set_env: Callable[[ExchangeSimulator], None]) -> tuple[Run, Verdict]:
    """Stream through the faults ``names`` (in order) and judge the run."""
    rng = random.Random(seed)
    async with ExchangeSimulator(list(settings.symbols), seed=seed, speed=settings.speed,
                                 history_seconds=settings.history_seconds) as sim:
        set_env(sim)
        manager = StreamManager(settings.config(), clock=sim.now_ns)
        manager.add_crypto_symbols(settings.symbols)
        run = Run(settings, sim, manager)
        run.listen()
        restore = run.track_tasks()
        sampler: asyncio.Task[None] | None = None
        try:
            await manager.start()
            run.start_ns = sim.now_ns()
            run.initial_connections = sim.counters.connections_accepted
            sampler = asyncio.create_task(run.sample())
            await asyncio.sleep(1.0)
            await run.apply(names, rng)
            await run.settle()
            before_stop = run.snapshot_tasks()
        finally:
            if sampler is not None:
                sampler.cancel()
            await manager.stop()
            await asyncio.sleep(0)
            restore()
        verdict = Verdict()
        run.check(verdict, before_stop)
        return run, verdict

