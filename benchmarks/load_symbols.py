"""Many symbols on default settings: does the stream settle, and what does it cost the exchange?

The exchange simulator runs in its own process (``python -m bot.data.sim``) with
``--symbols`` pairs and ``--history`` seconds of trades; a ``StreamManager`` with
the default ``StreamManagerConfig`` streams all of them for ``--duration``
seconds. Printed at the end:

* 1008 closes (the simulator closes a connection that sends more than 5
  messages a second, as Binance does), reconnects, stale resubscriptions;
* how long after its end each 1m bar completed, against ``bar_close_grace_ms``
  (speed 1 only: market time is wall time);
* the REST requests the simulator answered, by endpoint, beside the bound the
  warm-up and the gap fills allow (see :func:`rest_bound`).

    python benchmarks/load_symbols.py [--symbols 200] [--duration 180]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from bot.data import StreamManager, StreamManagerConfig
from bot.data.models import Bar
from bot.data.timeframes import NS_PER_SECOND
from bot.data.venues.binance.rest import MAX_LIMIT


def rest_bound(symbols: int, config: StreamManagerConfig, fills: int, trades_filled: int,
               ) -> tuple[int, str]:
    """The most REST requests warm-up and gap fills may cost, and how it is made up.

    Per symbol, warm-up asks for ``ceil(bar_history_size / 1000)`` kline pages
    per timeframe and one page of base bars to seed the longer bars being
    built, each with one ``/api/v3/time`` (the exchange's clock decides which
    kline is closed); one first-trade-id lookup per longer timeframe and one
    for the trade fill's start. Every fill (warm-up fills included) costs its
    trade pages: ``ceil(trades / 1000)`` in all, plus one short last page per fill.
    """
    timeframes = len(config.supported_timeframes)
    kline_requests = timeframes * math.ceil(config.bar_history_size / MAX_LIMIT) + 1
    per_symbol = 2 * kline_requests + (timeframes - 1) + 1
    trade_pages = math.ceil(trades_filled / MAX_LIMIT) + fills
    total = symbols * per_symbol + trade_pages
    return total, (f"{symbols} symbols x {per_symbol} (klines {kline_requests}, time "
                   f"{kline_requests}, first ids {timeframes - 1}, fill start 1) + trade pages "
                   f"{trade_pages} (ceil({trades_filled}/{MAX_LIMIT}) + {fills} fills)")


def start_simulator(port: int, symbols: list[str], speed: float,
                    history: float) -> subprocess.Popen[str]:
    sim = subprocess.Popen(
        [sys.executable, "-m", "bot.data.sim", "--port", str(port), "--speed", str(speed),
         "--history", str(history), "--stocks", "--symbols", *symbols],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sim.stdout is not None
    for line in sim.stdout:
        if line.startswith("Ctrl-C"):
            return sim
    raise SystemExit("the simulator did not start")


def stop_simulator(sim: subprocess.Popen[str]) -> dict[str, Any]:
    sim.send_signal(2)
    out, _ = sim.communicate(timeout=60)
    for line in out.splitlines():
        if line.startswith("Counters: "):
            counters: dict[str, Any] = json.loads(line.removeprefix("Counters: "))
            return counters
    raise SystemExit("the simulator printed no counters")


async def run(args: argparse.Namespace) -> None:
    symbols = [f"S{i}/USDT" for i in range(args.symbols)]
    sim = start_simulator(args.port, symbols, args.speed, args.history)
    try:
        os.environ.update(BINANCE_WS_URL=f"ws://127.0.0.1:{args.port}",
                          BINANCE_REST_URL=f"http://127.0.0.1:{args.port}")
        config = StreamManagerConfig()
        manager = StreamManager(config)
        manager.add_crypto_symbols(symbols)
        delays_ns: list[int] = []

        def on_bar(bar: Bar) -> None:
            if bar.timeframe == "1m":
                delays_ns.append(time.time_ns() - (bar.close_time + 1))

        manager.on_bar_complete(on_bar)
        started = time.monotonic()
        await manager.start()
        start_s = time.monotonic() - started
        await asyncio.sleep(args.duration)
        metrics = manager.get_metrics()
        health = manager.get_health()
        await manager.stop()
    finally:
        counters = stop_simulator(sim)
    c = metrics["counters"]
    print(f"{args.symbols} symbols, default settings, {args.duration:.0f} s at speed "
          f"{args.speed:g}; start() returned after {start_s:.1f} s")
    print(f"1008 closes: {counters['rate_limit_closes']}; connections accepted: "
          f"{counters['connections_accepted']}; reconnects: {c['reconnects']}; "
          f"stale resubscriptions: {c.get('resubscriptions')}; control messages received by the "
          f"exchange: {counters['messages_received']}")
    print(f"health at the end: {health['status']} {str(health['reasons'])[:200]}")
    if args.speed == 1 and delays_ns:
        delays_ns.sort()
        grace_ns = config.bar_close_grace_ms * 1_000_000
        late = sum(d > grace_ns for d in delays_ns)
        print(f"1m bars completed: {len(delays_ns)}; after the bar's end p50 "
              f"{delays_ns[len(delays_ns) // 2] / NS_PER_SECOND:.3f} s, max "
              f"{delays_ns[-1] / NS_PER_SECOND:.3f} s; over bar_close_grace_ms "
              f"({config.bar_close_grace_ms} ms): {late}, by at most "
              f"{max(delays_ns[-1] - grace_ns, 0) / 1e6:.0f} ms")
    rest = counters["rest_by_endpoint"]
    total = sum(rest.values())
    bound, terms = rest_bound(args.symbols, config, c["gaps_found"] + args.symbols,
                              c["trades_backfilled"])
    causes = Counter(g["cause"] for g in health["gaps"])
    if causes:
        print(f"recent unfilled gaps by cause: {dict(causes.most_common(3))}")
    print(f"REST requests by endpoint: {json.dumps(rest, sort_keys=True)}; total {total}")
    print(f"REST bound: {bound} = {terms}; gaps found {c['gaps_found']}, unfilled "
          f"{c['gaps_unfilled']}; {'within' if total <= bound else 'OVER'} the bound")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator market speed")
    parser.add_argument("--history", type=float, default=900.0,
                        help="seconds of trades the simulator has before it starts")
    parser.add_argument("--port", type=int, default=18795)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
