"""A RemoteStreamManager in a process of its own, for the kill tests.

``python -m tests.nats.consumer_proc URL DURABLE SYMBOL`` prints the trade id
of every TICK it emits, one per line, flushed, until it is killed.
"""

from __future__ import annotations

import asyncio
import sys

from bot.data.events import StreamEvent
from tests.nats.support import remote


def _print_trade_id(event: StreamEvent) -> None:
    print(event.data.trade_id, flush=True)


async def main(url: str, durable: str, symbol: str) -> None:
    manager = remote(url, durable, [symbol])
    manager.on_tick(_print_trade_id)
    await manager.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
