"""``python -m bot.data.sim``: run the exchange simulator until Ctrl-C.

Prints the URLs and the environment to point a client at it, e.g.::

    python -m bot.data.sim --symbols BTC/USDT ETH/USDT --stocks AAPL --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal

from bot.data.sim.server import ExchangeSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.data.sim",
                                     description="Local Binance + Alpaca market-data simulator.")
    parser.add_argument("--symbols", nargs="*", default=["BTC/USDT", "ETH/USDT"],
                        help="Binance pairs, e.g. BTC/USDT, and USDⓈ-M perpetuals, e.g. "
                             "BTC/USDT:USDT")
    parser.add_argument("--stocks", nargs="*", default=["AAPL"], help="Alpaca stocks")
    parser.add_argument("--alpaca-crypto", nargs="*", default=[],
                        help="Alpaca crypto pairs, e.g. BTC/USD")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0, help="market seconds per second")
    parser.add_argument("--history", type=float, default=3600.0,
                        help="seconds of trades that exist before start (for REST backfill)")
    parser.add_argument("--replay", nargs=2, action="append", default=[],
                        metavar=("SYMBOL", "FILE"), help="feed SYMBOL from a trade file")
    return parser.parse_args(argv)


def binance_examples(sim: ExchangeSimulator) -> list[str]:
    """Example stream and klines URLs of the first pair each Binance venue serves: spot's
    ``/stream`` and ``/api/v3``, a perpetual's USDⓈ-M ``/market/stream`` and ``/fapi/v1``."""
    lines = []
    if sim.instruments:
        raw = next(iter(sim.instruments))
        lines += [f"Binance streams  {sim.binance_ws_url}/stream?streams={raw.lower()}@trade",
                  f"Binance REST     {sim.binance_rest_url}/api/v3/klines?symbol={raw}"
                  "&interval=1m"]
    if sim.futures_instruments:
        raw = next(iter(sim.futures_instruments))
        lines += [f"USDⓈ-M streams   {sim.usdm_ws_url}/market/stream?streams={raw.lower()}@trade",
                  f"USDⓈ-M REST      {sim.binance_rest_url}/fapi/v1/klines?symbol={raw}"
                  "&interval=1m"]
    return lines


async def serve(args: argparse.Namespace) -> None:
    sim = ExchangeSimulator(args.symbols, args.stocks, alpaca_crypto_symbols=args.alpaca_crypto,
                            seed=args.seed, host=args.host, port=args.port, speed=args.speed,
                            history_seconds=args.history, replay=dict(args.replay))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim:
        for line in binance_examples(sim):
            print(line)
        print(f"Alpaca streams   {sim.alpaca_ws_url}/v2/iex  (crypto: /v1beta3/crypto/us)")
        print(f"Alpaca REST      {sim.alpaca_rest_url}/v2/stocks/AAPL/trades")
        print(f"Alpaca assets    {sim.alpaca_trading_url}/v2/assets")
        print("Environment:")
        for name, value in sim.env().items():
            print(f"  export {name}={value}")
        print("Ctrl-C to stop.", flush=True)
        await stop.wait()
    print(f"Stopped: {sim.counters}")
    print("Counters: " + json.dumps(dataclasses.asdict(sim.counters)), flush=True)


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
