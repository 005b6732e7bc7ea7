"""The terminal view of ``bot-stream live``: what is shown, and how it looks.

:class:`~bot.data.tick_rates.TickStats` (a bus consumer) keeps each symbol's
last trade and trade rate. :func:`snapshot` reads everything else through the
manager's public API into a :class:`ViewModel`, and :func:`render` turns that
into a rich renderable, so the layout is a pure function of plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text

from bot.data.cli.columns import Column, Phrases, PriorityTable
from bot.data.cli.formatting import VWAP_DIGITS, price
from bot.data.models import Bar, Tick
from bot.data.tick_rates import TickStats

if TYPE_CHECKING:
    from bot.data.stream_manager import StreamManager

IMBALANCE_CELLS = 10
STATE_STYLES = {"connected": "green", "failed": "bold red", "stopped": "red"}
HEALTH_STYLES = {"healthy": "bold green", "degraded": "bold yellow", "unhealthy": "bold red"}


@dataclass
class SymbolView:
    symbol: str
    last: Tick | None
    building: Bar | None
    completed: list[Bar]
    ticks_per_s: float


@dataclass
class ViewModel:
    timeframe: str
    uptime_s: float
    health: str
    ticks_per_s: float
    bars: int
    symbols: list[SymbolView]
    connections: dict[str, dict[str, Any]]
    latency: dict[str, dict[str, Any]]
    reasons: list[str] = field(default_factory=list)


def snapshot(manager: StreamManager, stats: TickStats, timeframe: str,
             completed: int = 3) -> ViewModel:
    """Everything the view shows, read now from the manager and ``stats``."""
    metrics = manager.get_metrics()
    health = manager.get_health()
    rates = stats.sample()
    return ViewModel(
        timeframe=timeframe, uptime_s=metrics["uptime_s"], health=health["status"],
        ticks_per_s=sum(rates.values()),
        # The bars of the timeframe shown, warm-up's included: what the tables draw from.
        bars=sum(len(manager.pipeline.bars.get((s, timeframe), ())) for s in manager.symbols),
        symbols=[SymbolView(s, stats.last.get(s), manager.get_current_bar(s, timeframe),
                            manager.get_bars(s, timeframe, completed), rates.get(s, 0.0))
                 for s in manager.symbols],
        connections=metrics["connections"], latency=metrics["latency"],
        reasons=health["reasons"])


def imbalance(bar: Bar | None) -> float | None:
    """Taker (buy - sell) / (buy + sell) volume of ``bar`` in [-1, 1]; None without volume."""
    if bar is None:
        return None
    sided = bar.buy_volume + bar.sell_volume
    return None if sided <= 0 else (bar.buy_volume - bar.sell_volume) / sided


def imbalance_text(value: float | None) -> Text:
    """``+40% ▮▮▮▮▮▮▮▯▯▯``: taker buy volume as filled (green) cells, sell as hollow (red)."""
    if value is None:
        return Text("—", style="dim")
    filled = round((value + 1) / 2 * IMBALANCE_CELLS)
    style = "green" if value > 0 else "red" if value < 0 else "white"
    text = Text(f"{value * 100:+4.0f}% ", style=style)
    text.append("▮" * filled, style="green")
    text.append("▯" * (IMBALANCE_CELLS - filled), style="red")
    return text


def render(view: ViewModel) -> RenderableType:
    """The whole screen: header, symbols, last bars, connections and latency.

    The tables keep their columns by priority (see :mod:`bot.data.cli.columns`),
    so a narrow terminal shows fewer columns, each cell whole.
    """
    return Group(_header(view), _symbols(view), _completed(view), _connections(view),
                 _latency(view))


def _header(view: ViewModel) -> Group:
    minutes, seconds = divmod(int(view.uptime_s), 60)
    phrases = Phrases([
        Text(" bot-stream live ", style="bold white on blue"),
        Text(f"timeframe {view.timeframe}"),
        Text(f"up {minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}"),
        Text(view.health, style=HEALTH_STYLES.get(view.health, "bold")),
        Text(f"{view.ticks_per_s:,.1f} ticks/s"), Text(f"{view.bars:,} bars {view.timeframe}")])
    return Group(phrases, *(Text(f"  {reason}", style="yellow") for reason in view.reasons))


SYMBOL_COLUMNS = (
    Column("Symbol", 0, "left"), Column("Last", 1), Column("Δ bar", 2), Column("Open", 5),
    Column("High", 3), Column("Low", 4), Column("Volume", 6), Column("VWAP", 7),
    Column("Buy/Sell", 8, "left"), Column("Trades", 10), Column("Ticks/s", 9))
COMPLETED_COLUMNS = (
    Column("Symbol", 0, "left"), Column("Open time (UTC)", 1), Column("Open", 6),
    Column("High", 4), Column("Low", 5), Column("Close", 2), Column("Volume", 7),
    Column("VWAP", 8), Column("Buy %", 9), Column("Trades", 10), Column("Flags", 3, "left"))
CONNECTION_COLUMNS = (Column("Connection", 0, "left"), Column("State", 1, "left"),
                      Column("Frames", 3), Column("Reconnects", 2))
LATENCY_COLUMNS = (Column("Latency (ms)", 0, "left"), Column("p50", 1), Column("p90", 4),
                   Column("p99", 2), Column("max", 3))
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms")


def _vwap(bar: Bar | None) -> str:
    return price(None if bar is None or not bar.volume else bar.vwap, VWAP_DIGITS)


def _symbols(view: ViewModel) -> PriorityTable:
    rows: list[list[Text | str]] = []
    for row in view.symbols:
        bar, last = row.building, row.last
        last_price = last.price if last is not None else bar.close if bar is not None else None
        change = Text("—", style="dim")
        if bar is not None and last_price is not None and bar.open:
            pct = (last_price - bar.open) / bar.open * 100
            change = Text(f"{pct:+.3f}%", style="green" if pct >= 0 else "red")
        rows.append([Text(row.symbol, style="bold"), price(last_price), change,
                     price(bar.open if bar else None), price(bar.high if bar else None),
                     price(bar.low if bar else None), f"{bar.volume:.6g}" if bar else "—",
                     _vwap(bar), imbalance_text(imbalance(bar)),
                     str(bar.trade_count) if bar else "—", f"{row.ticks_per_s:.1f}"])
    return PriorityTable(f"Building {view.timeframe} bars", SYMBOL_COLUMNS, rows)


def _completed(view: ViewModel) -> PriorityTable:
    rows: list[list[Text | str]] = []
    for row in view.symbols:
        for bar in reversed(row.completed):
            buy = f"{bar.buy_volume / bar.volume * 100:.0f}%" if bar.volume else "—"
            rows.append([row.symbol, f"{bar.open_datetime:%Y-%m-%d %H:%M:%S}", price(bar.open),
                         price(bar.high), price(bar.low),
                         Text(price(bar.close), style="green" if bar.close >= bar.open
                              else "red"),
                         f"{bar.volume:.6g}", _vwap(bar), buy, str(bar.trade_count),
                         Text((bar.flags.name or "") if bar.flags else "", style="yellow")])
    return PriorityTable(f"Last completed {view.timeframe} bars", COMPLETED_COLUMNS, rows,
                         empty="waiting for the first bar to complete…")


def _connections(view: ViewModel) -> PriorityTable:
    rows: list[list[Text | str]] = [
        [name, Text(conn["state"], style=STATE_STYLES.get(conn["state"], "yellow")),
         f"{conn['frames']:,}", str(conn["reconnects"])]
        for name, conn in view.connections.items()]
    return PriorityTable("Connections", CONNECTION_COLUMNS, rows)


def _latency(view: ViewModel) -> PriorityTable:
    rows: list[list[Text | str]] = [
        [path.replace("_to_", " → ").replace("_", " "),
         *("—" if summary.get(k) is None else f"{summary[k]:.2f}" for k in LATENCY_KEYS)]
        for path, summary in view.latency.items()]
    return PriorityTable("Latency", LATENCY_COLUMNS, rows)
