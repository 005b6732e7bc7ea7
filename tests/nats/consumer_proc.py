"""A RemoteStreamManager in a process of its own, for the kill tests.

``python -m tests.nats.consumer_proc URL DURABLE SYMBOL FREEZE_FILE`` prints the
trade id of every TICK it emits, one per line, flushed, until it is killed.

Once ``FREEZE_FILE`` exists, the next tick handler prints ``frozen ack_errors=N``
and blocks the whole process. Handlers run while a fetched batch is handled,
after the previous batch's ack was confirmed by the server (``N`` counts acks
that were not) and before this batch's ack is sent: so no ack of the frozen
process is on its way, and the ack floor the server reports is final.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bot.data.events import StreamEvent
from tests.nats.support import ACK_TIMEOUT_S, remote


async def main(url: str, durable: str, symbol: str, freeze_file: str) -> None:
    manager = remote(url, durable, [symbol], ack_timeout=ACK_TIMEOUT_S)
    freeze = Path(freeze_file)

    def on_tick(event: StreamEvent) -> None:
        if freeze.exists():
            ack_errors = manager.get_metrics()["counters"]["nats_ack_errors"]
            print(f"frozen ack_errors={ack_errors}", flush=True)
            time.sleep(3600)  # blocks the event loop: nothing more is sent until the SIGKILL
        print(event.data.trade_id, flush=True)

    manager.on_tick(on_tick)
    await manager.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
