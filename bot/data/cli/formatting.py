"""How prices and bars are written on a terminal, shared by the subcommands."""

from __future__ import annotations

from rich.console import Console

from bot.data.models import Bar

PIPE_WIDTH = 200  # tables written to a pipe or file are not squeezed to 80 columns


def price(value: float | None) -> str:
    """A price with up to 8 significant digits, as the exchanges print them; ``—`` for none."""
    return "—" if value is None else f"{value:.8g}"


def bar_line(bar: Bar) -> str:
    """One completed bar on one line: symbol, timeframe, open time (UTC), OHLCV, VWAP, sides."""
    flags = f" [{bar.flags.name}]" if bar.flags else ""
    return (f"{bar.symbol:<10} {bar.timeframe:>3} {bar.open_datetime:%Y-%m-%d %H:%M:%S}  "
            f"O {price(bar.open)}  H {price(bar.high)}  L {price(bar.low)}  "
            f"C {price(bar.close)}  V {bar.volume:.6g}  VWAP {price(bar.vwap)}  "
            f"buy {bar.buy_volume:.6g}  sell {bar.sell_volume:.6g}  n {bar.trade_count}{flags}")


def console() -> Console:
    """A rich console on stdout: the terminal's width, or :data:`PIPE_WIDTH` off a terminal."""
    out = Console()
    return out if out.is_terminal else Console(width=PIPE_WIDTH)
