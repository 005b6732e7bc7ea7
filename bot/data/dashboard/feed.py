"""What the dashboard page is told, as JSON-ready messages.

The page receives, over its WebSocket:

* ``hello``: symbols, timeframes and the default timeframe;
* ``history``: per symbol and timeframe, the completed bars kept by the
  manager, the bar being built and the signals seen so far;
* ``update``: bars completed, bars being built that changed, and signals,
  since the previous update (one message per push interval, so a busy market
  costs the page a bounded number of messages);
* ``status``: the manager's health report and metrics, each symbol's trades
  per minute (counted from the trade stream, not the bounded tick buffer) and,
  when an engine runs, its metrics and its paper account: cash, equity,
  realised and unrealised PnL, fees and each open position with its mark.

:class:`DashboardFeed` is a bus consumer: its handlers only append to lists or
count; the server drains it once per push interval.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bot.data.events import EventType
from bot.data.models import Bar, Signal
from bot.data.tick_rates import TickStats
from bot.data.timeframes import NS_PER_SECOND

if TYPE_CHECKING:
    from bot.data.stream_manager import StreamManager

MAX_SIGNALS = 1000
TRADE_RATE_WINDOW_S = 60.0


class Engine(Protocol):
    """What the dashboard reads of a trading engine."""

    def get_metrics(self) -> dict[str, Any]: ...


class Account(Protocol):
    """What the dashboard reads of an executor's account (e.g. a ``PaperExecutor``)."""

    def snapshot(self) -> dict[str, Any]: ...
    def mark(self, symbol: str) -> float | None: ...
    def unrealised_pnl(self, symbol: str | None = None) -> float: ...


def candle(bar: Bar) -> dict[str, Any]:
    """A bar as the page draws it; ``time`` is the open time in UTC seconds."""
    return {"symbol": bar.symbol, "timeframe": bar.timeframe,
            "time": bar.open_time // NS_PER_SECOND, "open": bar.open, "high": bar.high,
            "low": bar.low, "close": bar.close, "volume": bar.volume,
            "buy_volume": bar.buy_volume, "sell_volume": bar.sell_volume,
            "trade_count": bar.trade_count, "flags": int(bar.flags),
            "vwap": bar.vwap if bar.volume else None}


def marker(signal: Signal) -> dict[str, Any]:
    """A signal as a chart marker on the bar it was derived from, with what its tooltip says."""
    prediction = signal.prediction
    return {"symbol": signal.symbol, "timeframe": signal.bar.timeframe,
            "time": signal.bar.open_time // NS_PER_SECOND,
            "direction": signal.direction.value, "confidence": signal.confidence,
            "probability_up": prediction.probability_up, "model": prediction.model,
            "price": signal.bar.close, "timestamp": signal.timestamp}


def account_status(account: Account) -> dict[str, Any]:
    """The account's snapshot, each open position with its mark and unrealised PnL."""
    out = account.snapshot()
    out["positions"] = {symbol: {**position, "mark": account.mark(symbol),
                                 "unrealised_pnl": account.unrealised_pnl(symbol)}
                        for symbol, position in out["positions"].items()}
    return out


class DashboardFeed:
    """Collects completed bars and signals from the bus, and diffs the bars being built."""

    def __init__(self, manager: StreamManager, history: int | None = None, *,
                 engine: Engine | None = None, account: Account | None = None) -> None:
        self.manager = manager
        self.engine = engine
        self.account = account
        self.history_limit = history or manager.config.bar_history_size
        self.trades = TickStats(TRADE_RATE_WINDOW_S)
        self._completed: list[Bar] = []
        self._new_signals: list[dict[str, Any]] = []
        self._signals: deque[dict[str, Any]] = deque(maxlen=MAX_SIGNALS)
        self._sent_current: dict[tuple[str, str], Bar] = {}

    def attach(self) -> Callable[[], None]:
        """Subscribe to BAR_COMPLETE, SIGNAL and TICK; returns a function that unsubscribes."""
        offs = [self.manager.on_bar_complete(self._on_bar),
                self.manager.on_signal(self._on_signal),
                self.manager.on(EventType.TICK, self.trades.on_tick)]
        self.trades.sample()

        def detach() -> None:
            for off in offs:
                off()
        return detach

    def _on_bar(self, bar: Bar) -> None:
        self._completed.append(bar)  # the list is swapped out by update(): look it up each time

    def _on_signal(self, signal: Signal) -> None:
        item = marker(signal)
        self._signals.append(item)
        self._new_signals.append(item)

    def _series(self) -> list[tuple[str, str]]:
        return [(s, tf) for s in self.manager.symbols
                for tf in self.manager.config.supported_timeframes]

    # -- messages --------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        config = self.manager.config
        return {"type": "hello", "symbols": self.manager.symbols,
                "timeframes": config.supported_timeframes,
                "default_timeframe": config.default_timeframe}

    def history(self) -> list[dict[str, Any]]:
        """One ``history`` message per symbol and timeframe, as of now."""
        out = []
        for symbol, tf in self._series():
            current = self.manager.get_current_bar(symbol, tf)
            out.append({"type": "history", "symbol": symbol, "timeframe": tf,
                        "bars": [candle(b) for b in self.manager.get_bars(symbol, tf,
                                                                          self.history_limit)],
                        "current": None if current is None else candle(current),
                        "signals": [m for m in self._signals
                                    if m["symbol"] == symbol and m["timeframe"] == tf]})
        return out

    def update(self) -> dict[str, Any] | None:
        """What changed since the last call, or None when nothing did."""
        completed, self._completed = self._completed, []
        signals, self._new_signals = self._new_signals, []
        current = []
        for key in self._series():
            bar = self.manager.get_current_bar(*key)
            if bar is not None and self._sent_current.get(key) != bar:
                self._sent_current[key] = bar
                current.append(candle(bar))
        if not (completed or signals or current):
            return None
        return {"type": "update", "bars": [candle(b) for b in completed], "current": current,
                "signals": signals}

    def status(self) -> dict[str, Any]:
        """Health, metrics, trades per minute per symbol and, if any, the engine and account."""
        rates = self.trades.sample()
        return {"type": "status", "health": self.manager.get_health(),
                "metrics": self.manager.get_metrics(),
                "trades_per_minute": {s: round(rates.get(s, 0.0) * 60, 1)
                                      for s in self.manager.symbols},
                "engine": None if self.engine is None else self.engine.get_metrics(),
                "account": None if self.account is None else account_status(self.account)}
