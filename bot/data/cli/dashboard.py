"""``bot-stream dashboard``: serve the live web dashboard of a stream."""

from __future__ import annotations

import argparse
import asyncio
import webbrowser

from bot.data.cli.session import (
    add_stream_arguments,
    config_from_args,
    note,
    port,
    running_stream,
    wait_until_stopped,
)
from bot.data.config import StreamManagerConfig

DESCRIPTION = """\
Stream symbols and serve a local web page with live candlestick charts per
symbol and timeframe with VWAP, volume split into taker buy and sell, signal
markers, connection health and latency (and, with --engine, positions and
PnL). The same server answers /health, /metrics (Prometheus) and
/metrics.json. The chart library is bundled: the page needs no internet
access.
"""
EPILOG = """\
examples:
  bot-stream dashboard --sim                                  simulator, default pairs
  bot-stream dashboard --sim --sim-speed 60 --timeframes 1m 5m --engine
  bot-stream dashboard BTC/USDT ETH/USDT --port 8080 --open
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="serve a live web dashboard (candles, volume, signals, health)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stream_arguments(parser, status=False)
    web = parser.add_argument_group("web server")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on "
                                                         "(default 127.0.0.1)")
    web.add_argument("--port", type=port, default=8787, help="default 8787; 0 picks a free one")
    web.add_argument("--open", action="store_true", help="open the page in a browser")
    web.add_argument("--engine", action="store_true",
                     help="run the StreamingTradingEngine (momentum predictor) with a "
                          "paper account: its signals appear as markers, its positions and "
                          "PnL beside the charts")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    return asyncio.run(_serve(args, config))


async def _serve(args: argparse.Namespace, config: StreamManagerConfig) -> int:
    from bot.data.dashboard import DashboardServer

    async with running_stream(args, config) as manager:
        engine = account = None
        if args.engine:
            from bot.data.engine import StreamingTradingEngine
            from bot.data.engine.paper import PaperExecutor

            account = PaperExecutor(manager.bus)
            engine = StreamingTradingEngine(manager, executor=account)
            await engine.start()
        async with DashboardServer(manager, args.host, args.port, engine=engine,
                                   account=account) as server:
            print(f"dashboard: {server.url}/   (Ctrl-C stops)", flush=True)
            note(f"status: {server.url}/health  {server.url}/metrics")
            if args.open:
                webbrowser.open(f"{server.url}/")
            await wait_until_stopped(args.duration)
        if engine is not None:
            await engine.stop()
    return 0
