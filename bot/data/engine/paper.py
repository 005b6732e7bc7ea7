"""``PaperExecutor``: simulated execution against the live trade stream.

A signal becomes a market order of ``quantity`` base units, filled at the price
of the next trade of its symbol that reaches the bus after the signal, moved
against us by ``slippage_bps`` and charged ``fee_bps`` of the fill's notional.
There is at most one order in flight per symbol, and an order that would take
the absolute position beyond ``max_position`` (or below zero without
``allow_short``) is refused; refusals are counted by reason.

Accounting is average-cost. For a fill of ``q`` units at ``p`` with fee ``f``:
cash changes by ``-q*p - f`` (buy) or ``+q*p - f`` (sell); a fill that reduces a
position realises ``(p - average_price) * closed_quantity`` (sign-adjusted for
shorts), before fees. Marked at the last trade price, ``equity = cash +
Σ position * mark`` and ``equity - initial_cash = realised + unrealised - fees``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from bot.data.errors import ConfigError
from bot.data.events import EventBus, EventType, StreamEvent
from bot.data.models import Signal, SignalDirection, Tick


class Fill(msgspec.Struct, frozen=True):
    """One executed paper order, as kept in the trade log."""

    symbol: str
    side: SignalDirection
    quantity: float
    price: float
    fee: float
    realised_pnl: float
    timestamp: int  # exchange time of the trade that filled it
    signal_timestamp: int


class Position(msgspec.Struct):
    """Signed quantity (negative when short) and its average entry price."""

    quantity: float = 0.0
    average_price: float = 0.0


class PaperExecutor:
    """Paper trading on the bus's TICK events; call :meth:`close` to stop listening."""

    def __init__(self, bus: EventBus | None = None, *, initial_cash: float = 10_000.0,
                 quantity: float = 1.0,
                 max_position: float | None = None, fee_bps: float = 10.0,
                 slippage_bps: float = 0.0, allow_short: bool = False) -> None:
        for name, value in (("quantity", quantity), ("initial_cash", initial_cash)):
            if not value > 0:
                raise ConfigError(name, value, "must be > 0")
        for name, value in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)):
            if not value >= 0:
                raise ConfigError(name, value, "must be >= 0 basis points")
        self.max_position = quantity if max_position is None else max_position
        if not self.max_position >= quantity:
            raise ConfigError("max_position", max_position, f"must be >= quantity ({quantity})")
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.quantity = quantity
        self.fee_rate = fee_bps / 10_000
        self.slippage_rate = slippage_bps / 10_000
        self.allow_short = allow_short
        self.positions: dict[str, Position] = {}
        self.trades: list[Fill] = []
        self.fees_paid = 0.0
        self.realised_pnl = 0.0
        self.rejected: Counter[str] = Counter()
        self._marks: dict[str, float] = {}
        self._in_flight: dict[str, Signal] = {}
        self._unsubscribe: Callable[[], None] | None = None
        if bus is not None:
            self.attach(bus)

    def attach(self, bus: EventBus) -> None:
        """Listen to the trades of ``bus`` for fills and marks; the engine calls this at
        start when the executor was built before the stream manager (as in the seed)."""
        if self._unsubscribe is None:
            self._unsubscribe = bus.on(EventType.TICK, self._on_tick)

    def close(self) -> None:
        """Stop listening to trades; orders still in flight stay unfilled."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- orders --------------------------------------------------------------------
    def execute(self, signal: Signal) -> None:
        """Queue a market order for the next trade of ``signal.symbol``, or refuse it."""
        symbol = signal.symbol
        if symbol in self._in_flight:
            self.rejected["order_in_flight"] += 1
            return
        held = self.positions.get(symbol, Position()).quantity
        target = held + self._signed(signal.direction, self.quantity)
        if abs(target) > self.max_position + 1e-12:
            self.rejected["position_limit"] += 1
            return
        if target < -1e-12 and not self.allow_short:
            self.rejected["short_not_allowed"] += 1
            return
        self._in_flight[symbol] = signal

    def _on_tick(self, event: StreamEvent) -> None:
        tick: Tick = event.data
        self._marks[tick.symbol] = tick.price
        if self._in_flight:
            signal = self._in_flight.pop(tick.symbol, None)
            if signal is not None:
                self._fill(signal, tick)

    def _fill(self, signal: Signal, tick: Tick) -> None:
        side = signal.direction
        buy = side is SignalDirection.BUY
        price = tick.price * (1 + self.slippage_rate if buy else 1 - self.slippage_rate)
        notional = self.quantity * price
        fee = notional * self.fee_rate
        self.cash += -notional - fee if buy else notional - fee
        self.fees_paid += fee
        realised = self._update_position(signal.symbol, self._signed(side, self.quantity), price)
        self.realised_pnl += realised
        self.trades.append(Fill(signal.symbol, side, self.quantity, price, fee, realised,
                                tick.timestamp, signal.timestamp))

    def _update_position(self, symbol: str, signed_qty: float, price: float) -> float:
        """Apply a fill to the position; return the PnL it realised (before fees)."""
        pos = self.positions.setdefault(symbol, Position())
        held = pos.quantity
        new = held + signed_qty
        realised = 0.0
        if held == 0 or (held > 0) == (signed_qty > 0):  # opening or adding
            pos.average_price = (held * pos.average_price + signed_qty * price) / new
        else:  # reducing, closing or flipping
            closed = min(abs(held), abs(signed_qty))
            realised = (price - pos.average_price) * closed * (1 if held > 0 else -1)
            if abs(signed_qty) > abs(held):
                pos.average_price = price
            elif abs(new) < 1e-12:
                pos.average_price = 0.0
        pos.quantity = 0.0 if abs(new) < 1e-12 else new
        return realised

    @staticmethod
    def _signed(direction: SignalDirection, quantity: float) -> float:
        return quantity if direction is SignalDirection.BUY else -quantity

    # -- valuation -----------------------------------------------------------------
    def mark(self, symbol: str) -> float | None:
        """Last trade price seen for ``symbol``."""
        return self._marks.get(symbol)

    def unrealised_pnl(self, symbol: str | None = None) -> float:
        """Open positions marked at the last trade price (all symbols when None)."""
        total = 0.0
        for name, pos in self.positions.items():
            if (symbol is not None and name != symbol) or not pos.quantity:
                continue
            total += (self._marks.get(name, pos.average_price) - pos.average_price) * pos.quantity
        return total

    @property
    def equity(self) -> float:
        """Cash plus open positions at their marks."""
        return self.cash + sum(pos.quantity * self._marks.get(name, pos.average_price)
                               for name, pos in self.positions.items())

    def in_flight(self, symbol: str) -> bool:
        return symbol in self._in_flight

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable view of the account."""
        return {
            "cash": self.cash,
            "equity": self.equity,
            "realised_pnl": self.realised_pnl,
            "unrealised_pnl": self.unrealised_pnl(),
            "fees_paid": self.fees_paid,
            "positions": {name: {"quantity": pos.quantity, "average_price": pos.average_price}
                          for name, pos in self.positions.items() if pos.quantity},
            "orders_in_flight": sorted(self._in_flight),
            "trades": len(self.trades),
            "rejected": dict(self.rejected),
        }
