"""NATS subject names and message ids of the market-data streams.

Subjects::

    md.tick.<venue>.<SYMBOL>                 a batch of trades, or a watermark (header Md-Record)
    md.bar.<timeframe>.<venue>.<SYMBOL>      one completed bar
    md.signal.<venue>.<SYMBOL>               one trading signal
    md.health.<worker>                       a worker's health and metrics (JSON)

A NATS subject token may not hold ``.`` (the separator), ``*``, ``>`` or
whitespace, so a unified symbol is spelled token-safe: ``/`` becomes ``_``,
``.`` becomes ``-`` and ``:`` becomes ``~`` (``"BTC/USDT"`` -> ``BTC_USDT``,
``"BRK.B"`` -> ``BRK-B``, ``"BTC/USDT:USDT"`` -> ``BTC_USDT~USDT``). The mapping
is reversible (:func:`token_symbol`) because unified symbols never hold ``_``,
``-`` or ``~``; the payload carries the unified symbol as well.

Message ids (the ``Nats-Msg-Id`` header) make JetStream drop a message it
already stored within the stream's duplicate window, which is what lets two
redundant workers publish the same trades. A batch of trades is named by
exactly the trades it holds, in order (:func:`batch_msg_id`): two workers
holding the same trades publish one message, and a batch a worker could fill
only partly never shadows the whole one. ``venue:SYMBOL:trade_id`` names a
single tick (as published before batches),
``venue:SYMBOL:timeframe:open_time`` a bar. A bar that knows it lacks
trades (PARTIAL or GAP) gets its flags appended, so a worker that joined late
never shadows another worker's complete bar of the same interval.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Sequence

from bot.data.models import Bar, BarFlag, Signal, Tick

PREFIX = "md"
TICKS = f"{PREFIX}.tick"
BARS = f"{PREFIX}.bar"
SIGNALS = f"{PREFIX}.signal"
HEALTH = f"{PREFIX}.health"
MSG_ID_HEADER = "Nats-Msg-Id"
RECORD_HEADER = "Md-Record"  # set on what a tick subject carries besides ticks
WATERMARK = "watermark"
BATCH = "batch"

_SYMBOL = re.compile(r"[A-Za-z0-9]+(?:[/.:][A-Za-z0-9]+)*")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_INCOMPLETE = BarFlag.PARTIAL | BarFlag.GAP


def symbol_token(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"BTC_USDT"``, ``"BRK.B"`` -> ``"BRK-B"``,
    ``"BTC/USDT:USDT"`` -> ``"BTC_USDT~USDT"`` (upper case)."""
    if not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"symbol {symbol!r} cannot be a subject token: use letters and digits "
                         "joined by '/', '.' or ':', e.g. 'BTC/USDT', 'BRK.B' or 'BTC/USDT:USDT'")
    return symbol.upper().replace("/", "_").replace(".", "-").replace(":", "~")


def token_symbol(token: str) -> str:
    """The unified symbol of a subject token (inverse of :func:`symbol_token`)."""
    return token.replace("_", "/").replace("-", ".").replace("~", ":")


def check_token(name: str, value: str) -> str:
    """``value`` if it is a valid subject token, else a ValueError naming ``name``."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{name}={value!r} cannot be a subject token: use letters, digits, "
                         "'_' and '-' only")
    return value


def tick_subject(venue: str, symbol: str) -> str:
    return f"{TICKS}.{venue}.{symbol_token(symbol)}"


def bar_subject(timeframe: str, venue: str, symbol: str) -> str:
    return f"{BARS}.{timeframe}.{venue}.{symbol_token(symbol)}"


def signal_subject(venue: str, symbol: str) -> str:
    return f"{SIGNALS}.{venue}.{symbol_token(symbol)}"


def health_subject(worker: str) -> str:
    return f"{HEALTH}.{check_token('worker', worker)}"


def tick_msg_id(tick: Tick) -> str:
    return f"{tick.venue}:{tick.symbol}:{tick.trade_id}"


def batch_msg_id(venue: str, symbol: str, trade_ids: Sequence[int]) -> str:
    """``venue:SYMBOL:first-last:count:digest``: the digest (BLAKE2b, 64 bits) is of every
    trade id in order, so two batches share an id only when they hold the same trades."""
    digest = hashlib.blake2b(array("q", trade_ids).tobytes(), digest_size=8).hexdigest()
    return f"{venue}:{symbol}:{trade_ids[0]}-{trade_ids[-1]}:{len(trade_ids)}:{digest}"


def bar_msg_id(bar: Bar) -> str:
    base = f"{bar.venue}:{bar.symbol}:{bar.timeframe}:{bar.open_time}"
    return f"{base}:{int(bar.flags)}" if bar.flags & _INCOMPLETE else base


def watermark_msg_id(venue: str, symbol: str, through_ns: int) -> str:
    """Redundant workers completing the same bar publish the same watermark: stored once."""
    return f"{venue}:{symbol}:through:{through_ns}"


def signal_msg_id(signal: Signal) -> str:
    bar = signal.bar
    return f"{bar.venue}:{signal.symbol}:{bar.timeframe}:{bar.open_time}:{signal.direction}"
