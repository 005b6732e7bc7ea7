"""Warm-up at start: bar history from REST, and a first streamed bar that is whole.

For each symbol, before its stream is let through:

1. every configured timeframe's history is filled with the last
   ``bar_history_size`` completed bars from REST (Binance klines, Alpaca bars),
   so ``get_bar_dataframe`` is useful from the first second;
2. the aggregator is seeded with the base-length bars of the longest
   timeframe's current interval, so the longer bars being built are whole;
3. :class:`~bot.data.recovery.GapRecovery` fills the trades of the current base
   interval from REST and then lets the buffered live ticks through, so the
   first bar built from the stream is complete rather than partial.

Bars from REST pass :class:`~bot.data.bar_check.BarCheck` first (finite,
positive, consistent, oldest first): the history and the seed hold only bars
a trade could have built.

All of it has one deadline (``warm_up_timeout_seconds``): history not loaded by
then is skipped, and the fill gets what is left; a fill that cannot finish
reports its span as a gap and lets the live ticks through. ``start()`` never
waits longer than that for REST, whatever REST does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

import msgspec

from bot.data.aggregation import BarAggregator
from bot.data.models import Bar, Tick
from bot.data.pipeline import TickPipeline
from bot.data.recovery import GapRecovery
from bot.data.timeframes import NS_PER_SECOND, TIMEFRAME_SECONDS, align

logger = logging.getLogger(__name__)


class BarSource(Protocol):
    async def bars(self, symbol: str, timeframe: str, limit: int, end_ns: int) -> list[Bar]:
        """The last ``limit`` bars closed at or before ``end_ns``, oldest first."""
        ...

    async def first_trade_id(self, symbol: str, start_ns: int) -> int | None:
        """The id of the first trade at or after ``start_ns`` (None where ids are not known)."""
        ...


async def _with_first_ids(source: BarSource, symbol: str, seed: list[Bar], fill_start: int,
                          agg: BarAggregator) -> list[Bar]:
    """Give the first seed bar of each longer interval its first trade id.

    Klines carry no trade ids; the longer bars being built take their first id
    from the earliest seed bar with trades, so that one id is looked up.
    """
    out = list(seed)
    for length in {agg.timeframe_ns(tf) for tf in agg.timeframes} - {agg.base_ns}:
        start = align(fill_start, length)
        i = next((i for i, b in enumerate(out) if b.open_time >= start and b.trade_count), None)
        if i is not None and out[i].first_trade_id < 0:
            first = await source.first_trade_id(symbol, out[i].open_time)
            if first is not None:
                out[i] = msgspec.structs.replace(out[i], first_trade_id=first)
    return out


def warmup_start(pipeline: TickPipeline, now_ns: int) -> int:
    """Where the stream's first interval opens: the open of the current base interval."""
    return align(now_ns, pipeline.aggregator.base_ns)


async def warm_up(pipeline: TickPipeline, recovery: GapRecovery, source: BarSource,
                  venue: str, symbol: str, fill_start: int,
                  stored: Sequence[Tick] = (), *, timeout: float = 30.0) -> None:
    """Load history and seed the aggregator for ``symbol``, then start the trade fill.

    ``stored``: trades from ``fill_start`` on kept by the local store before a
    restart; they are replayed first, and the fill continues after the last.

    The symbol must already be tracked by ``recovery`` with ``since_ns=fill_start``
    (so live ticks wait). Whatever fails here is logged and the fill still
    starts, with what is left of ``timeout`` (seconds) as its own: the stream is
    never blocked by a history that cannot be loaded.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            await _load_history(pipeline, source, venue, symbol, fill_start)
    except TimeoutError:
        logger.warning("warm-up of %s: bar history not loaded within %g s", symbol, timeout)
    except Exception as exc:  # history is a convenience; never block the stream for it
        logger.warning("warm-up of %s: bar history not loaded: %s: %s", symbol,
                       type(exc).__name__, exc)
    for tick in stored:
        pipeline.process(tick)
    recovery.begin(symbol, timeout=max(0.0, deadline - loop.time()))


async def _load_history(pipeline: TickPipeline, source: BarSource, venue: str, symbol: str,
                        fill_start: int) -> None:
    """Fill every timeframe's history and seed the longer bars being built."""
    agg = pipeline.aggregator
    check = pipeline.bar_check
    end = fill_start - 1
    size = pipeline.config.bar_history_size
    for timeframe in pipeline.config.supported_timeframes:
        history = pipeline.history(venue, symbol, timeframe)
        if len(history):
            continue
        bars = await source.bars(symbol, timeframe, size, end)
        for bar in check.plausible(bars, agg.timeframe_ns(timeframe)):
            history.append(bar)
    # The fill covers the base interval from its open; the seed (if any) reaches back further.
    agg.configure_symbol(venue, symbol, complete_from=fill_start)
    longest = max(TIMEFRAME_SECONDS[tf] for tf in agg.timeframes) * NS_PER_SECOND
    seed_count = (fill_start - align(fill_start, longest)) // agg.base_ns
    base_tf = _timeframe_of(agg.base_ns)
    if seed_count and base_tf is not None:
        seed = check.plausible(await source.bars(symbol, base_tf, seed_count, end), agg.base_ns)
        agg.seed(venue, symbol, await _with_first_ids(source, symbol, seed, fill_start, agg))


def _timeframe_of(length_ns: int) -> str | None:
    """The timeframe name of a bar length, if the venues know one."""
    seconds = length_ns // NS_PER_SECOND
    return next((tf for tf, s in TIMEFRAME_SECONDS.items() if s == seconds), None)
