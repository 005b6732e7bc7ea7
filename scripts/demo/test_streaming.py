"""Demo: the seed's Quick Start flow, printed readably.

    python scripts/demo/test_streaming.py --sim              # built-in exchange simulator
    python scripts/demo/test_streaming.py                    # live Binance (needs the network)
    python scripts/demo/test_streaming.py --stocks TSLA      # + Alpaca (ALPACA_API_KEY/SECRET_KEY)

Ctrl-C stops it cleanly. A symbol the venue (or the simulator) does not list, or a
setting that cannot work, is one line on stderr and exit status 2; a stream that cannot
start, one line and 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.data import create_default_trading_stream
from bot.data.cli.formatting import bar_line
from bot.data.errors import ConfigError, StreamError
from bot.data.events import StreamEvent
from bot.data.models import Bar


def _print_tick(event: StreamEvent, every: int, count: list[int]) -> None:
    count[0] += 1
    if count[0] % every == 0:
        t = event.data
        print(f"Tick #{count[0]:>6}: {t.symbol:<9} @ {t.price:<14.8g} qty {t.volume:<12.8g} "
              f"{t.side.value}")


def _print_bar(bar: Bar) -> None:
    print(f"Bar:  {bar_line(bar)}")


async def run(args: argparse.Namespace) -> None:
    sim_ctx: Any = contextlib.nullcontext()
    if args.sim:
        from bot.data.sim import ExchangeSimulator
        from bot.data.sim.market import CATALOGUE_PAIRS, CATALOGUE_PERPETUALS, CATALOGUE_STOCKS

        # The simulator lists its catalogue, as an exchange does: a symbol it does not
        # list is refused by the stream's symbol check, never invented.
        catalogue = (*CATALOGUE_PAIRS, *CATALOGUE_PERPETUALS, *CATALOGUE_STOCKS)
        asked = [s.upper() for s in (*args.symbols, *args.stocks)]
        sim_ctx = ExchangeSimulator(symbols=[s for s in asked if "/" in s and s in catalogue],
                                    stock_symbols=[s for s in asked if s in CATALOGUE_STOCKS],
                                    listed=catalogue, seed=args.seed, speed=args.speed)
    async with sim_ctx as sim:
        if sim is not None:
            os.environ.update(sim.env())
            print(f"simulator: binance {sim.binance_ws_url}  alpaca {sim.alpaca_ws_url}")
        manager = create_default_trading_stream(crypto_symbols=args.symbols,
                                                stock_symbols=args.stocks)
        count = [0]
        manager.on_tick(lambda e: _print_tick(e, args.every, count))
        manager.on_bar_complete(_print_bar)
        manager.on_reconnect(lambda e: print(f"Reconnect: {e.data}"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await manager.start()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
        finally:
            health = manager.get_health()
            metrics = manager.get_metrics()
            await manager.stop()
        print("\nHealth:", "; ".join([health["status"], *health["reasons"]]))
        print("Metrics:", json.dumps({k: metrics[k] for k in ("counters", "latency")}, indent=2))
        for symbol in args.symbols[:2]:
            print(f"\nLast bars of {symbol}:")
            print(manager.get_bar_dataframe(symbol, "1m", limit=5).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description="Stream trades and bars; print them.")
    parser.add_argument("--sim", action="store_true",
                        help="run against the built-in exchange simulator (no network, no keys)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    parser.add_argument("--symbols", nargs="+", default=["BTC/USDT", "XRP/USDT"],
                        help="crypto symbols (Binance)")
    parser.add_argument("--stocks", nargs="*", default=[],
                        help="stock symbols (Alpaca; needs ALPACA_API_KEY and ALPACA_SECRET_KEY)")
    parser.add_argument("--every", type=int, default=50, help="print every Nth tick")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed")
    parser.add_argument("--speed", type=float, default=30.0,
                        help="simulator market time per real second (30: a 1m bar every 2 s)")
    args = parser.parse_args()
    prog = Path(__file__).name
    try:
        asyncio.run(run(args))
    except ConfigError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except StreamError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
