"""``bot-stream backtest``: run the trading engine over a recorded store and score it.

The trades go through the same pipeline and engine as live
(:class:`bot.data.Backtest`), the signals to a paper executor that fills at the
next trade; the command prints the figures, optionally every fill, and saves
the equity curve as a PNG on request.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from bot.data.cli.formatting import console, price
from bot.data.cli.replay import parse_time
from bot.data.cli.session import non_negative, note, positive
from bot.data.errors import ConfigError
from bot.data.timeframes import ALLOWED_TIMEFRAMES

if TYPE_CHECKING:
    import polars as pl

    from bot.data.backtest import BacktestResult

DESCRIPTION = """\
Run the trading engine over the trades of a store written by `bot-stream record`
(or a Recorder), or of a trades file downloaded from Binance's public data
(.zip or .csv, trades or aggTrades; name its one symbol): the same pipeline and
engine as live, the signals filled by a paper executor at the next trade with
fees and slippage. Prints trades, PnL (realised, unrealised, total), fees, max
drawdown and exposure; --plot saves the equity curve as a PNG (needs the
`backtest` extra: matplotlib).
"""
EPILOG = """\
examples:
  bot-stream backtest data/                                   default momentum model, 1m bars
  bot-stream backtest data/ BTC/USDT --timeframe 5m --threshold 0.55 --fee-bps 7.5
  bot-stream backtest data/ --predictor mybot.models:predict --plot equity.png --trades
  bot-stream backtest data/ --json > result.json
  bot-stream backtest BTCUSDT-trades-2025-01-01.zip BTC/USDT  a downloaded day of trades
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backtest", help="run the trading engine over a recorded store; print PnL and risk",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store", type=Path, metavar="DIR|FILE",
                        help="store root directory, or a Binance trades file")
    parser.add_argument("symbols", nargs="*", metavar="SYMBOL",
                        help="symbols to trade (default: every recorded one)")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--timeframe", default="1m", choices=ALLOWED_TIMEFRAMES,
                        metavar="TF", help="bars the engine decides on (default: 1m)")
    engine.add_argument("--predictor", metavar="MODULE:NAME",
                        help="a predictor to import, e.g. mybot.models:predict (a function of "
                             "the features dict, or a fitted scikit-learn model); default: the "
                             "built-in momentum model")
    engine.add_argument("--threshold", type=float, default=0.6, metavar="P",
                        help="probability of an up move for BUY; 1-P or below is SELL "
                             "(default: 0.6)")
    engine.add_argument("--min-history", type=int, default=None, metavar="N",
                        help="bars before a series is traded (default: the engine's, 30)")
    paper = parser.add_argument_group("paper executor")
    paper.add_argument("--fee-bps", type=non_negative, default=None, metavar="BPS",
                       help="fee on each fill's notional, basis points (default: 10)")
    paper.add_argument("--slippage-bps", type=non_negative, default=0.0, metavar="BPS",
                       help="fill price moved against the order (default: 0)")
    paper.add_argument("--quantity", type=positive, default=1.0, metavar="Q",
                       help="base units per order (default: 1)")
    paper.add_argument("--cash", type=positive, default=10_000.0, metavar="X",
                       help="initial cash, quote currency (default: 10000)")
    paper.add_argument("--allow-short", action="store_true", help="let SELL open a short")
    select = parser.add_argument_group("selection and output")
    select.add_argument("--start", metavar="TIME", help="first exchange time, ISO 8601 "
                                                        "(naive times are UTC)")
    select.add_argument("--end", metavar="TIME", help="end exchange time (exclusive)")
    select.add_argument("--plot", type=Path, metavar="PNG", help="save the equity curve here")
    select.add_argument("--trades", action="store_true", help="print every fill")
    select.add_argument("--json", action="store_true",
                        help="print the figures as one JSON object instead of tables")
    select.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bot.data.backtest import DEFAULT_FEE_BPS, Backtest
    from bot.data.engine import DEFAULT_MIN_HISTORY

    min_history = DEFAULT_MIN_HISTORY if args.min_history is None else args.min_history
    backtest = Backtest(
        _source(args.store, args.symbols), args.symbols or None, args.timeframe,
        _import(args.predictor),
        fee_bps=DEFAULT_FEE_BPS if args.fee_bps is None else args.fee_bps,
        slippage_bps=args.slippage_bps, quantity=args.quantity, initial_cash=args.cash,
        allow_short=args.allow_short, signal_threshold=args.threshold,
        min_history=min_history,
        start=parse_time(args.start, "--start"), end=parse_time(args.end, "--end"))
    result = backtest.run(progress=not args.no_progress)
    if args.json:
        print(json.dumps(result.summary()))
    else:
        _print(result, args.trades, min_history)
    if args.plot is not None:
        try:
            note(f"equity curve saved to {result.plot(args.plot)}")
        except ImportError as exc:
            raise ConfigError("--plot", str(args.plot), str(exc)) from None
    return 0


def _source(path: Path, symbols: list[str]) -> Path | pl.DataFrame:
    """A store directory as it is; a downloaded trades file read as the one symbol named."""
    if not path.is_file():
        return path
    from bot.data.store import read_binance_trades

    if len(symbols) != 1:
        raise ConfigError("symbols", symbols, f"name the one symbol of {path.name}, "
                                              "e.g. BTC/USDT (the file does not say it)")
    try:
        return read_binance_trades(path, symbols[0])
    except ValueError as exc:
        raise ConfigError("file", str(path), str(exc)) from None


def _import(spec: str | None) -> object | None:
    """The object named ``module:attribute``; a ConfigError says what could not be found."""
    if spec is None:
        return None
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError("--predictor", spec, "must be MODULE:NAME, e.g. mybot.models:predict")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("--predictor", spec, f"cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError("--predictor", spec,
                          f"module {module_name!r} has no attribute {attribute!r}") from None


def skipped_text(skipped: dict[str, int], min_history: int) -> str:
    """Why bars got no prediction, e.g. ``insufficient history 15 (min_history 30)``; ``—``
    when none was skipped. What explains a backtest without signals."""
    def why(reason: str) -> str:
        return (f" (min_history {min_history})" if reason == "insufficient_history" else "")

    return ", ".join(f"{reason.replace('_', ' ')} {count:,}{why(reason)}"
                     for reason, count in skipped.items() if count) or "—"


def _print(result: BacktestResult, trades: bool, min_history: int) -> None:
    out = console()
    summary = result.summary()
    table = Table(title="Backtest", title_justify="left", show_header=False)
    table.add_column("figure", style="bold cyan")
    table.add_column("value", justify="right")
    rows = [
        ("span (UTC)", f"{summary['start'][:19]} .. {summary['end'][:19]}"),
        ("ticks / bars / signals", f"{result.ticks:,} / {result.bars:,} / {result.signals:,}"),
        ("bars not predicted on", skipped_text(result.engine_metrics["skipped"], min_history)),
        ("fills", f"{len(result.trades):,}"),
        ("initial cash", f"{result.initial_cash:,.8g}"),
        ("final equity", f"{result.final_equity:,.8g}"),
        ("total PnL", f"{result.total_pnl:+,.8g}"),
        ("realised PnL (before fees)", f"{result.realised_pnl:+,.8g}"),
        ("unrealised PnL", f"{result.unrealised_pnl:+,.8g}"),
        ("fees", f"{result.fees:,.8g} ({result.fee_bps:g} bps)"),
        ("max drawdown", f"{result.max_drawdown:,.8g} ({result.max_drawdown_pct:.2%})"),
        ("time in market", f"{result.time_in_market:.1%}"),
        ("average position", ", ".join(f"{s} {q:.6g}"
                                       for s, q in result.average_position.items()) or "—"),
        ("open positions", ", ".join(f"{s} {q:+.6g}"
                                     for s, q in result.positions.items()) or "—"),
        ("orders refused", ", ".join(f"{k} {v}"
                                     for k, v in result.rejected_orders.items()) or "—"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    if trades and result.trades:
        fills = Table(title="Fills", title_justify="left", header_style="bold cyan")
        for name in ("Time (UTC)", "Symbol", "Side", "Quantity", "Price", "Fee", "Realised"):
            fills.add_column(name, justify="left" if name in ("Symbol", "Side") else "right")
        for time, row in result.trades_frame().iterrows():
            fills.add_row(f"{time:%Y-%m-%d %H:%M:%S}", row["symbol"], row["side"],
                          f"{row['quantity']:.6g}", price(row["price"]), f"{row['fee']:.6g}",
                          f"{row['realised_pnl']:+.6g}")
        out.print(fills)
