"""``TickRing``: the last ``capacity`` ticks of one symbol in 44 bytes a tick.

A deque of :class:`Tick` objects costs 200-270 bytes a tick (the struct, its
floats and ints); 10,000 ticks for each of 1,000 symbols would hold 2-3 GB. The
ring keeps each tick as one packed row instead: price and volume (float64),
trade id, exchange time and receive time (int64) and a ``kind`` (uint32) that
names the tick's side, sale conditions, exchange code and ``updates`` in a small
table of the combinations seen (three for a crypto symbol: buy, sell, unknown).
Venue and symbol are the ring's own. A tick that does not fit a row (a venue or
symbol other than the ring's, an int beyond int64, a field of the wrong type) is
kept whole in the table instead, so every tick comes back equal to what went in.

Appending is on the per-trade path: a row is packed in place, straight into the
ring's buffer. The pipeline's fast path, which already holds a plain trade's
fields, writes them with :meth:`TickRing.append_plain` without reading them
again. The buffer grows (doubling) with the ticks until it holds ``capacity``
rows, so a symbol that rarely trades holds what it has, not its capacity.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np

from bot.data.models import UPDATES_ALL, Side, Tick

# Native byte order (the rows never leave the process): packs faster than "<".
ROW: Final = struct.Struct("=ddqqqI")
ROW_DTYPE: Final = np.dtype([("price", "=f8"), ("volume", "=f8"), ("trade_id", "=i8"),
                             ("timestamp", "=i8"), ("receive_timestamp", "=i8"),
                             ("kind", "=u4")])
_ROW_SIZE: Final = ROW.size
_PACK_INTO: Final = ROW.pack_into
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# What packing a tick whose fields are not what Tick declares can raise.
_UNFIT: Final = (KeyError, TypeError, ValueError, OverflowError, struct.error)

# A kind is (side, conditions, exchange, updates), or a whole Tick kept as it came.
_Kind = tuple[Side, tuple[str, ...], str, int] | Tick
# The first kinds are a plain trade's, one per side: a crypto symbol never needs more.
_PLAIN_KINDS: Final[tuple[tuple[Side, tuple[str, ...], str, int], ...]] = tuple(
    (side, (), "", UPDATES_ALL) for side in Side)
_PLAIN_KIND_OF: Final = {kind[0]: code for code, kind in enumerate(_PLAIN_KINDS)}

assert ROW.size == ROW_DTYPE.itemsize


class TickRing:
    """The last ``capacity`` ticks appended (of one symbol), oldest dropped first.

    What a ``deque(maxlen=capacity)`` of ticks gives, in packed rows: :meth:`recent`
    returns equal ticks, oldest first; :meth:`count_since` and
    :meth:`last_receive_timestamp` answer the health check without rebuilding ticks.
    """

    __slots__ = ("_codes", "_full", "_kinds", "_pos", "_rows", "_written", "capacity",
                 "symbol", "venue")

    def __init__(self, capacity: int, venue: str = "", symbol: str = "") -> None:
        """``venue`` and ``symbol``: whose ticks the rows hold (the first tick's when not
        given); a tick of another is kept whole."""
        if capacity < 1:
            raise ValueError(f"a tick ring needs capacity >= 1, got capacity={capacity}")
        self.capacity = capacity
        self.venue = venue
        self.symbol = symbol
        self._full = capacity * ROW.size  # bytes of a full ring
        self._rows = bytearray()  # grows to capacity rows, then wraps
        self._pos = 0  # byte offset of the next row to write
        self._written = 0  # rows ever written
        self._kinds: list[_Kind] = list(_PLAIN_KINDS)
        self._codes: dict[object, int] = {kind: code for code, kind in enumerate(_PLAIN_KINDS)}

    def append(self, tick: Tick) -> None:
        """Keep ``tick``, dropping the oldest when the ring is full."""
        if not self._written and not self.symbol:
            self.venue, self.symbol = tick.venue, tick.symbol
        try:
            if tick.symbol == self.symbol and tick.venue == self.venue:
                kind = (_PLAIN_KIND_OF[tick.side] if tick.updates == UPDATES_ALL
                        and tick.conditions == () and tick.exchange == "" else self._kind_of(tick))
            else:
                kind = self._keep_whole(tick)
            self._write(tick.price, tick.volume, tick.trade_id, tick.timestamp,
                        tick.receive_timestamp, kind)
        except _UNFIT:  # a side that is no Side, or a value that does not fit a row
            self._write(0.0, 0.0, 0, _int64(tick.timestamp), _int64(tick.receive_timestamp),
                        self._keep_whole(tick))

    def append_plain(self, tick: Tick, price: float, volume: float, trade_id: int,
                     timestamp: int, receive_timestamp: int, side: Side) -> None:
        """Keep ``tick``, a plain trade of the ring's own venue and symbol (no conditions,
        no exchange code, every bar field updated), from its fields the caller already
        holds: what :meth:`append` keeps of it, without reading them again. A field that
        does not fit a row sends it to :meth:`append`, which keeps it whole."""
        try:
            self._write(price, volume, trade_id, timestamp, receive_timestamp,
                        _PLAIN_KIND_OF[side])
        except _UNFIT:
            self.append(tick)

    def _write(self, price: float, volume: float, trade_id: int, timestamp: int,
               receive_timestamp: int, kind: int) -> None:
        """Pack one row at the write position. A value that does not fit raises, leaving
        the position and count as they were; the slot may then hold part of the row,
        which the caller overwrites at once (both appends' fallbacks do)."""
        pos = self._pos
        if pos == len(self._rows):  # still filling: room for more rows first
            self._grow()
        _PACK_INTO(self._rows, pos, price, volume, trade_id, timestamp, receive_timestamp, kind)
        pos += _ROW_SIZE
        self._pos = 0 if pos == self._full else pos
        self._written += 1

    def _grow(self) -> None:
        """Double the buffer, up to exactly ``capacity`` rows (no spare allocation kept)."""
        rows = self._rows
        size = min(self._full, max(2 * len(rows), 16 * _ROW_SIZE))
        grown = bytearray(size)
        grown[:len(rows)] = rows
        self._rows = grown

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    def recent(self, limit: int | None = None) -> list[Tick]:
        """The last ``limit`` ticks (all kept when None), oldest first."""
        n = len(self) if limit is None else max(0, min(limit, len(self)))
        if not n:
            return []
        venue, symbol, kinds = self.venue, self.symbol, self._kinds
        out: list[Tick] = []
        for price, volume, trade_id, timestamp, receive, code in ROW.iter_unpack(
                self._newest_rows(n)):
            kind = kinds[code]
            out.append(kind if isinstance(kind, Tick) else Tick(
                venue, symbol, price, volume, kind[0], trade_id, timestamp, receive,
                kind[1], kind[2], kind[3]))
        return out

    def count_since(self, timestamp_ns: int) -> int:
        """How many of the newest ticks in a row have an exchange time >= ``timestamp_ns``
        (counting back from the newest, stopping at the first older one)."""
        times = self._times(len(self))
        older = np.flatnonzero(times < timestamp_ns)
        return len(times) - int(older[-1]) - 1 if older.size else len(times)

    def last_receive_timestamp(self) -> int | None:
        """The newest tick's receive time, None when the ring is empty."""
        if not self._written:
            return None
        return int(ROW.unpack_from(self._rows, self._end() - _ROW_SIZE)[4])

    # -- kinds ------------------------------------------------------------------------
    def _kind_of(self, tick: Tick) -> int:
        """The code of ``tick``'s side, conditions, exchange and updates (added when new)."""
        kind = (tick.side, tick.conditions, tick.exchange, tick.updates)
        try:
            code = self._codes.get(kind)
        except TypeError:  # an unhashable field
            return self._keep_whole(tick)
        if code is None:
            self._make_room()
            code = self._codes[kind] = len(self._kinds)
            self._kinds.append(kind)
        return code

    def _keep_whole(self, tick: Tick) -> int:
        self._make_room()
        self._kinds.append(tick)
        return len(self._kinds) - 1

    def _make_room(self) -> None:
        """Forget the kinds no kept row uses once the table outgrows the ring (so it
        stays bounded by the ring's size)."""
        if len(self._kinds) >= 2 * self.capacity + len(_PLAIN_KINDS):
            self._compact_kinds()

    def _compact_kinds(self) -> None:
        rows = np.frombuffer(self._rows, dtype=ROW_DTYPE)[:len(self)]
        used = np.unique(rows["kind"])
        used = used[used >= len(_PLAIN_KINDS)]
        kinds = list(_PLAIN_KINDS) + [self._kinds[code] for code in used.tolist()]
        renumber = np.arange(len(self._kinds), dtype=np.uint32)
        renumber[used] = np.arange(len(_PLAIN_KINDS), len(kinds), dtype=np.uint32)
        rows["kind"] = renumber[rows["kind"]]
        self._kinds = kinds
        self._codes = {kind: code for code, kind in enumerate(kinds) if not isinstance(kind, Tick)}

    # -- reading ----------------------------------------------------------------------
    def _end(self) -> int:
        """Byte offset just past the newest row (the buffer's end once it has wrapped)."""
        return self._pos or len(self._rows)

    def _newest_rows(self, n: int) -> bytearray:
        """A copy of the newest ``n`` rows, oldest first."""
        end = self._end()
        start = end - n * _ROW_SIZE
        if start >= 0:
            return self._rows[start:end]
        return self._rows[start:] + self._rows[:end]

    def _times(self, n: int) -> np.ndarray:
        """Exchange times of the newest ``n`` rows, oldest first."""
        if n <= 0:
            return np.empty(0, dtype=np.int64)
        last = self._end() // _ROW_SIZE
        times = np.frombuffer(self._rows, dtype=ROW_DTYPE)["timestamp"]
        if last >= n:
            return times[last - n:last]
        return np.concatenate((times[last - n:], times[:last]))


def _int64(value: object) -> int:
    """``value`` clamped into int64 (0 when not an int): a kept-whole tick's time
    still orders correctly for :meth:`TickRing.count_since`."""
    return min(max(value, _INT64_MIN), _INT64_MAX) if isinstance(value, int) else 0
