"""Record, store, replay and bulk-aggregate market data.

- :class:`Recorder` writes the bus's ticks and completed bars to a partitioned
  Parquet tree, atomically and off the event loop.
- :class:`TradeStore` reads it back as pandas/polars DataFrames or records, and
  runs SQL over it in DuckDB.
- :func:`replay` feeds recorded ticks through a ``TickPipeline``.
- :func:`aggregate_ticks` builds the streaming aggregator's bars from a whole
  tick table at once, vectorized.
- :func:`read_binance_trades` reads Binance's public trade files as a tick table
  (it lives in the Binance venue package, ``bot.data.venues.binance.downloads``).

Needs the ``store`` extra: ``pip install 'bot-stream[store]'``.
"""

from bot.data.extras import require

try:
    from bot.data.store.bulk import aggregate_ticks
    from bot.data.store.files import StoreError
    from bot.data.store.lock import StoreLocked
    from bot.data.store.recorder import Recorder
    from bot.data.store.replay import ReplayResult, replay
    from bot.data.store.store import TradeStore
    from bot.data.venues.binance.downloads import read_binance_trades
except ImportError:
    require("store", "The Parquet store (recording, TradeStore, replay)")
    raise

__all__ = ["Recorder", "ReplayResult", "StoreError", "StoreLocked", "TradeStore",
           "aggregate_ticks", "read_binance_trades", "replay"]
