"""``Backtest``: run a trading engine over recorded or downloaded trades, and score it.

Nothing here simulates the market. The trades go through the same
``TickPipeline`` the live stream uses (:func:`bot.data.store.replay`), its bus
reaches the same :class:`~bot.data.engine.StreamingTradingEngine` (features,
predictor, threshold, the refusal of GAP, PARTIAL and stale bars), and the
signals go to a :class:`~bot.data.engine.PaperExecutor`, which fills each order
at the next trade with fees and slippage, as in paper trading. The engine's
clock is the exchange time of the replay (the latest trade seen), so staleness
and signal times are those of the session replayed. Replay waits for an async
predictor after each bar close (:meth:`StreamingTradingEngine.idle`), so it
decides on every bar, as live where bars are minutes apart.

What the result reports is computed from the fills and the bars, not read
from the executor's running totals:

- ``equity``: ``initial_cash`` + the cash the fills moved + each position
  marked at its symbol's last close, at the replay's first trade, at the end of
  every bar of the timeframe that ended within the data, and at the last
  trade (marked at the last trade prices);
- ``realised_pnl`` (before fees), ``fees``, ``unrealised_pnl`` (open positions
  at the last trade prices) and ``total_pnl = final equity - initial_cash =
  realised - fees + unrealised``;
- ``max_drawdown``: the largest fall of the equity curve from a running peak,
  in quote currency and as a fraction of that peak;
- exposure: ``time_in_market``, the fraction of the span from the first to the
  last trade during which any position was open, and ``average_position``,
  each symbol's time-weighted mean absolute position over that span (base
  units).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bot.data.config import StreamManagerConfig
from bot.data.engine import (
    DEFAULT_LOOKBACK,
    DEFAULT_MIN_HISTORY,
    FeatureFunction,
    Fill,
    PaperExecutor,
    StreamingTradingEngine,
)
from bot.data.errors import ConfigError
from bot.data.events import EventBus, StreamEvent
from bot.data.extras import require
from bot.data.models import Bar, SignalDirection, Tick, ns_to_datetime
from bot.data.pipeline import TickPipeline
from bot.data.timeframes import ALLOWED_TIMEFRAMES

if TYPE_CHECKING:
    import polars as pl

    from bot.data.store import TradeStore
    from bot.data.store.store import TimeBound

DEFAULT_FEE_BPS = 10.0
"""Fee charged on each fill's notional unless set: 10 bps (0.1 %), Binance's spot base rate."""

TRADE_COLUMNS = ("symbol", "side", "quantity", "price", "fee", "realised_pnl", "signal_time")


class _ReplaySource:
    """What the engine needs of a stream manager, over a pipeline fed by replay.

    ``start`` and ``stop`` only run the bus's async handlers: there is no
    connection; the replay is the stream.
    """

    def __init__(self, config: StreamManagerConfig) -> None:
        self.config = config
        self.pipeline = TickPipeline(config)
        self.bus: EventBus = self.pipeline.bus
        self.is_running = False

    async def start(self) -> None:
        self.bus.start()
        self.is_running = True

    async def stop(self) -> None:
        await self.bus.stop()
        self.is_running = False


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest did and how it fared (see the module docstring for each figure)."""

    trades: list[Fill]
    equity: pd.Series
    initial_cash: float
    final_equity: float
    realised_pnl: float
    unrealised_pnl: float
    fees: float
    fee_bps: float
    total_pnl: float
    max_drawdown: float
    max_drawdown_pct: float
    time_in_market: float
    average_position: dict[str, float]
    positions: dict[str, float]
    ticks: int
    bars: int
    signals: int
    rejected_orders: dict[str, int]
    engine_metrics: dict[str, Any] = field(repr=False)

    def trades_frame(self) -> pd.DataFrame:
        """The fills as a DataFrame indexed by fill time (UTC), oldest first."""
        rows = [(f.symbol, f.side.value, f.quantity, f.price, f.fee, f.realised_pnl,
                 pd.Timestamp(f.signal_timestamp, tz="UTC")) for f in self.trades]
        index = pd.DatetimeIndex([pd.Timestamp(f.timestamp, tz="UTC") for f in self.trades],
                                 name="time")
        return pd.DataFrame(rows, columns=list(TRADE_COLUMNS), index=index)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-serialisable dict (no trade list, no curve)."""
        start, end = self.equity.index[0], self.equity.index[-1]
        return {
            "start": start.isoformat(), "end": end.isoformat(),
            "ticks": self.ticks, "bars": self.bars, "signals": self.signals,
            "trades": len(self.trades), "initial_cash": self.initial_cash,
            "final_equity": self.final_equity, "total_pnl": self.total_pnl,
            "realised_pnl": self.realised_pnl, "unrealised_pnl": self.unrealised_pnl,
            "fees": self.fees, "fee_bps": self.fee_bps, "max_drawdown": self.max_drawdown,
            "max_drawdown_pct": self.max_drawdown_pct, "time_in_market": self.time_in_market,
            "average_position": self.average_position, "positions": self.positions,
            "rejected_orders": self.rejected_orders,
        }

    def plot(self, path: str | Path) -> Path:
        """Save the equity curve, with the fills marked, as a PNG at ``path``; returns it.

        Needs matplotlib: ``pip install 'bot-stream[backtest]'``.
        """
        figure = _figure()
        axes = figure.subplots()
        axes.plot(self.equity.index, self.equity.to_numpy(), color="#1f77b4", lw=1.4,
                  label="equity")
        for side, marker, colour in ((SignalDirection.BUY, "^", "#2ca02c"),
                                     (SignalDirection.SELL, "v", "#d62728")):
            times = pd.DatetimeIndex([pd.Timestamp(f.timestamp, tz="UTC") for f in self.trades
                                      if f.side is side])
            if len(times):
                at = self.equity.reindex(self.equity.index.union(times)).ffill().loc[times]
                axes.scatter(times, at.to_numpy(), marker=marker,
                             color=colour, s=40 if len(self.trades) <= 50 else 12, zorder=3,
                             label=f"{side.value} fill")
        axes.set_title(f"Equity: total PnL {self.total_pnl:+.6g}, fees {self.fees:.6g}, "
                       f"max drawdown {self.max_drawdown:.6g} ({self.max_drawdown_pct:.2%}), "
                       f"{len(self.trades)} fills", fontsize=10)
        axes.set_xlabel("exchange time (UTC)")
        axes.set_ylabel("equity")
        axes.grid(alpha=0.3)
        axes.legend(loc="best")
        figure.autofmt_xdate()
        figure.tight_layout()
        target = Path(path)
        figure.savefig(target, format="png")
        return target


class Backtest:
    """An engine run over recorded or downloaded trades (see the module docstring).

    ``source``: a :class:`~bot.data.store.TradeStore` or its root directory,
    Tick records, or a tick DataFrame as the store returns it. ``symbols``:
    which of its symbols to trade (default: all). ``timeframe``: the bars the
    engine decides on. ``predictor``, ``features``, ``signal_threshold``,
    ``min_history``, ``lookback`` are the engine's (a bad one raises
    ConfigError here, before anything runs).

    ``executor``: a :class:`PaperExecutor` to fill the signals; by default one
    is built from ``fee_bps`` (default :data:`DEFAULT_FEE_BPS`),
    ``slippage_bps``, ``quantity`` (base units per order), ``initial_cash``
    and ``allow_short``. ``start``/``end`` bound the trades' exchange time
    (``start <= time < end``). ``config`` sets the stream's other settings (the
    timeframe is added to its ``supported_timeframes``).

    A backtest runs once: :meth:`run` (or ``await`` :meth:`run_async` inside
    an event loop) returns a :class:`BacktestResult`.
    """

    def __init__(self, source: TradeStore | str | Path | Iterable[Tick] | pd.DataFrame
                 | pl.DataFrame, symbols: Sequence[str] | None = None, timeframe: str = "1m",
                 predictor: object | None = None, executor: PaperExecutor | None = None, *,
                 fee_bps: float = DEFAULT_FEE_BPS, slippage_bps: float = 0.0,
                 quantity: float = 1.0, initial_cash: float = 10_000.0,
                 allow_short: bool = False, signal_threshold: float = 0.6,
                 features: FeatureFunction | Sequence[FeatureFunction] | None = None,
                 min_history: int = DEFAULT_MIN_HISTORY, lookback: int = DEFAULT_LOOKBACK,
                 start: TimeBound = None, end: TimeBound = None,
                 config: StreamManagerConfig | None = None) -> None:
        from bot.data.store import TradeStore  # here: the store's libraries load when used
        from bot.data.store.replay import select_series

        if timeframe not in ALLOWED_TIMEFRAMES:
            raise ConfigError("timeframe", timeframe,
                              f"must be one of {', '.join(ALLOWED_TIMEFRAMES)}")
        if isinstance(source, str | Path):
            source = TradeStore(source)
        self.source = source
        self.series = select_series(source, symbols) if isinstance(source, TradeStore) else None
        if self.series is not None and symbols is not None:  # as the store spells them
            symbols = [symbol for _, symbol in self.series]
        self.symbols = list(symbols) if symbols is not None else None
        self.timeframe = timeframe
        self.start, self.end = start, end
        base = config if config is not None else StreamManagerConfig()
        timeframes = list(dict.fromkeys([*base.supported_timeframes, timeframe]))
        self.config = replace(base, supported_timeframes=timeframes, default_timeframe=timeframe)
        if executor is None:
            executor = PaperExecutor(initial_cash=initial_cash, quantity=quantity,
                                     fee_bps=fee_bps, slippage_bps=slippage_bps,
                                     allow_short=allow_short)
        elif not isinstance(executor, PaperExecutor):
            raise ConfigError("executor", executor, "must be a PaperExecutor (it fills the "
                              "signals at the next trade) or None for one built from fee_bps, "
                              "slippage_bps, quantity, initial_cash and allow_short")
        self.executor = executor
        self._source = _ReplaySource(self.config)
        self._tape = _Tape(self._source.bus, timeframe)
        self.engine = StreamingTradingEngine(
            self._source, predictor=predictor, executor=executor,
            signal_threshold=signal_threshold, timeframe=timeframe, symbols=self.symbols,
            features=features, min_history=min_history, lookback=lookback,
            clock=self._tape.clock)
        self._ran = False

    @property
    def bus(self) -> EventBus:
        """The replay's event bus: subscribe to its PREDICTION, SIGNAL or BAR_COMPLETE events
        before :meth:`run` to see what the engine saw and decided."""
        return self._source.bus

    def run(self, *, progress: bool = False) -> BacktestResult:
        """Replay every trade through the engine as fast as possible; returns the result.

        Inside a running event loop (a notebook, async code) use ``await
        run_async()`` instead.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run_async(progress=progress))
        raise RuntimeError("Backtest.run() cannot run inside an event loop; "
                           "use 'await backtest.run_async()' there")

    async def run_async(self, *, progress: bool = False) -> BacktestResult:
        """:meth:`run` for code already inside an event loop."""
        from bot.data.store import TradeStore, replay

        if self._ran:
            raise RuntimeError("a Backtest runs once; build another to run again")
        self._ran = True
        source = self.source
        if self.symbols is not None and not isinstance(source, TradeStore):
            source = _only(source, set(self.symbols))
        await self.engine.start()
        try:
            replayed = await replay(source, self._source.pipeline, progress=progress,
                                    series=self.series, start=self.start, end=self.end,
                                    settle=self.engine.idle)
        finally:
            await self.engine.stop()
            self.executor.close()
        if not replayed.ticks:
            if self.start is not None or self.end is not None:
                raise ConfigError("start/end", (self.start, self.end),
                                  "no trade of the chosen symbols lies between them")
            raise ConfigError("source", type(self.source).__name__, "holds no trade to replay")
        return _score(self, self._tape, replayed.ticks)


class _Tape:
    """What the scoring needs of a replay: the bars of the timeframe, each symbol's last
    price, and the exchange times of the first and last trades. The latest trade's
    time is also the engine's clock."""

    def __init__(self, bus: EventBus, timeframe: str) -> None:
        self.timeframe = timeframe
        self.bars: list[Bar] = []
        self.last_prices: dict[str, float] = {}
        self.first_ns = self.last_ns = 0
        bus.on_bar_complete(self._on_bar)
        bus.on_tick(self._on_tick)

    def _on_bar(self, bar: Bar) -> None:
        if bar.timeframe == self.timeframe:
            self.bars.append(bar)

    def _on_tick(self, event: StreamEvent) -> None:
        tick: Tick = event.data
        self.last_prices[tick.symbol] = tick.price
        if not self.first_ns:
            self.first_ns = tick.timestamp
        self.last_ns = max(self.last_ns, tick.timestamp)

    def clock(self) -> int:
        return self.last_ns


def _only(source: Iterable[Tick] | pd.DataFrame | pl.DataFrame,
          symbols: set[str]) -> list[Tick] | pd.DataFrame | pl.DataFrame:
    """The trades of ``symbols`` in a source that is not a store."""
    if isinstance(source, pd.DataFrame):
        return source[source["symbol"].isin(symbols)]
    import polars as pl

    if isinstance(source, pl.DataFrame):
        return source.filter(pl.col("symbol").is_in(sorted(symbols)))
    return [t for t in source if t.symbol in symbols]


def _score(backtest: Backtest, tape: _Tape, ticks: int) -> BacktestResult:
    """The result's figures, from the fills and the bars (see the module docstring)."""
    executor = backtest.executor
    fills = sorted(executor.trades, key=lambda f: f.timestamp)
    initial = executor.initial_cash
    first, last = tape.first_ns, tape.last_ns
    curve = _equity_curve(initial, fills, tape.bars, tape.last_prices, first, last)
    final = float(curve.iloc[-1])
    realised = math.fsum(f.realised_pnl for f in fills)
    fees = math.fsum(f.fee for f in fills)
    positions = _positions_after(fills)
    drawdown, drawdown_pct = _max_drawdown(curve)
    in_market, average = _exposure(fills, first, last)
    metrics = backtest.engine.get_metrics()
    return BacktestResult(
        trades=fills, equity=curve, initial_cash=initial, final_equity=final,
        realised_pnl=realised, unrealised_pnl=final - initial - realised + fees, fees=fees,
        fee_bps=executor.fee_rate * 10_000, total_pnl=final - initial,
        max_drawdown=drawdown, max_drawdown_pct=drawdown_pct, time_in_market=in_market,
        average_position=average, positions={s: q for s, q in positions.items() if q},
        ticks=ticks, bars=len(tape.bars), signals=int(metrics["signals"]),
        rejected_orders=dict(executor.rejected), engine_metrics=metrics)


def _signed(fill: Fill) -> float:
    return fill.quantity if fill.side is SignalDirection.BUY else -fill.quantity


def _cash_delta(fill: Fill) -> float:
    return -_signed(fill) * fill.price - fill.fee


def _equity_curve(initial: float, fills: list[Fill], bars: list[Bar],
                  last_prices: dict[str, float], first: int, last: int) -> pd.Series:
    """Equity at the first trade, at each bar end within the data, and at the last trade."""
    points: dict[int, float] = {first: initial}
    cash = initial
    held: dict[str, float] = {}
    marks: dict[str, float] = {}
    pending = iter(fills)
    fill = next(pending, None)
    for bar in sorted((b for b in bars if b.close_time < last), key=lambda b: b.close_time):
        end = bar.close_time + 1
        while fill is not None and fill.timestamp < end:
            cash += _cash_delta(fill)
            held[fill.symbol] = held.get(fill.symbol, 0.0) + _signed(fill)
            marks[fill.symbol] = fill.price  # the latest price known until a bar closes
            fill = next(pending, None)
        marks[bar.symbol] = bar.close
        points[end] = cash + sum(q * marks[s] for s, q in held.items())
    while fill is not None:
        cash += _cash_delta(fill)
        held[fill.symbol] = held.get(fill.symbol, 0.0) + _signed(fill)
        fill = next(pending, None)
    points[max(last, first)] = cash + sum(q * last_prices[s] for s, q in held.items())
    index = pd.DatetimeIndex([ns_to_datetime(t) for t in points], name="time")
    return pd.Series(list(points.values()), index=index, name="equity")


def _positions_after(fills: list[Fill]) -> dict[str, float]:
    held: dict[str, float] = {}
    for fill in fills:
        held[fill.symbol] = held.get(fill.symbol, 0.0) + _signed(fill)
    return {s: (0.0 if abs(q) < 1e-12 else q) for s, q in held.items()}


def _max_drawdown(curve: pd.Series) -> tuple[float, float]:
    """Largest fall from a running peak: absolute, and as a fraction of that peak."""
    values = curve.to_numpy(dtype=float)
    peaks = pd.Series(values).cummax().to_numpy()
    falls = peaks - values
    at = int(falls.argmax())
    return float(falls[at]), float(falls[at] / peaks[at]) if peaks[at] > 0 else 0.0


def _exposure(fills: list[Fill], first: int, last: int) -> tuple[float, dict[str, float]]:
    """Fraction of ``[first, last]`` with any position open, and each symbol's
    time-weighted mean absolute position over it."""
    span = last - first
    symbols = sorted({f.symbol for f in fills})
    if span <= 0:
        return 0.0, dict.fromkeys(symbols, 0.0)
    held: dict[str, float] = {}
    weighted = dict.fromkeys(symbols, 0.0)
    in_market = 0
    since = first
    for fill in [*fills, None]:
        at = last if fill is None else min(max(fill.timestamp, first), last)
        if any(abs(q) > 1e-12 for q in held.values()):
            in_market += at - since
        for symbol, quantity in held.items():
            weighted[symbol] += abs(quantity) * (at - since)
        since = at
        if fill is not None:
            held[fill.symbol] = held.get(fill.symbol, 0.0) + _signed(fill)
    return in_market / span, {s: w / span for s, w in weighted.items()}


def _figure() -> Any:
    """A matplotlib Figure drawn off-screen (no pyplot, no global backend change), or an
    ImportError naming the extra that installs matplotlib."""
    require("backtest", "Saving the equity curve")
    from matplotlib.figure import Figure

    return Figure(figsize=(10, 4.5), dpi=100)
