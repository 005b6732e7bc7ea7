"""How prices and bars are written on a terminal, shared by the subcommands."""

from __future__ import annotations

from rich.console import Console

from bot.data.models import Bar

PIPE_WIDTH = 200  # tables written to a pipe or file are not squeezed to 80 columns


PRICE_DIGITS = 12  # a traded price is its exact decimal; only binary noise is dropped
VWAP_DIGITS = 8  # an average: enough digits to read, not the noise of a division


def price(value: float | None, digits: int = PRICE_DIGITS) -> str:
    """A price as the exchange printed it (up to ``digits`` significant digits); ``—`` for none.

    ``0.13089000000000015`` reads ``0.13089`` and ``1234567.89`` stays whole.
    """
    return "—" if value is None else f"{value:.{digits}g}"


def bar_line(bar: Bar) -> str:
    """One completed bar on one line: symbol, timeframe, open time (UTC), OHLCV, VWAP, sides."""
    flags = f" [{bar.flags.name}]" if bar.flags else ""
    return (f"{bar.symbol:<10} {bar.timeframe:>3} {bar.open_datetime:%Y-%m-%d %H:%M:%S}  "
            f"O {price(bar.open)}  H {price(bar.high)}  L {price(bar.low)}  "
            f"C {price(bar.close)}  V {bar.volume:.6g}  VWAP {price(bar.vwap, VWAP_DIGITS)}  "
            f"buy {bar.buy_volume:.6g}  sell {bar.sell_volume:.6g}  n {bar.trade_count}{flags}")


def console() -> Console:
    """A rich console on stdout: the terminal's width, or :data:`PIPE_WIDTH` off a terminal."""
    out = Console()
    return out if out.is_terminal else Console(width=PIPE_WIDTH)
