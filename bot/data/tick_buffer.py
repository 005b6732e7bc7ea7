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

Appending is on the per-trade path, and packing a row costs more than a list
append, so the newest ticks wait as objects in a short list (at most ``chunk``)
and are packed together: one comprehension and one copy per chunk. The list
counts towards the memory figure; with the default chunk it adds at most about
6 bytes a tick to a ring of 10,000 (3 on average: 47 bytes a tick in all). The
rows grow with the ticks until the ring is full, so a symbol that rarely trades
holds what it has, not its capacity.
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
DEFAULT_CHUNK: Final = 256
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# What packing a tick whose fields are not what Tick declares can raise.
_UNFIT: Final = (KeyError, TypeError, ValueError, OverflowError, struct.error)
# No uint32 packs it: the chunk goes tick by tick, and a tick of another symbol is kept whole.
_NO_KIND: Final = -1

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

    __slots__ = ("_codes", "_kinds", "_pos", "_rows", "_staged", "_written", "capacity",
                 "chunk", "symbol", "venue")

    def __init__(self, capacity: int, chunk: int = DEFAULT_CHUNK) -> None:
        """``chunk``: how many of the newest ticks wait as objects before being packed."""
        if capacity < 1 or chunk < 1:
            raise ValueError(f"a tick ring needs capacity >= 1 and chunk >= 1, "
                             f"got capacity={capacity} chunk={chunk}")
        self.capacity = capacity
        self.chunk = min(chunk, capacity)
        self.venue = ""  # the first tick's, set when it is packed
        self.symbol = ""
        self._rows = bytearray()  # grows to capacity rows, then wraps
        self._pos = 0  # byte offset of the next row to write
        self._written = 0  # rows ever packed
        self._staged: list[Tick] = []
        self._kinds: list[_Kind] = list(_PLAIN_KINDS)
        self._codes: dict[object, int] = {kind: code for code, kind in enumerate(_PLAIN_KINDS)}

    def append(self, tick: Tick) -> None:
        """Keep ``tick``, dropping the oldest when the ring is full."""
        staged = self._staged
        staged.append(tick)
        if len(staged) >= self.chunk:
            self._pack()

    def __len__(self) -> int:
        return min(self._written + len(self._staged), self.capacity)

    def recent(self, limit: int | None = None) -> list[Tick]:
        """The last ``limit`` ticks (all kept when None), oldest first."""
        n = len(self) if limit is None else max(0, min(limit, len(self)))
        staged = self._staged
        if n <= len(staged):
            return staged[len(staged) - n:] if n else []
        venue, symbol, kinds = self.venue, self.symbol, self._kinds
        out: list[Tick] = []
        for price, volume, trade_id, timestamp, receive, code in ROW.iter_unpack(
                self._packed_rows(n - len(staged))):
            kind = kinds[code]
            out.append(kind if isinstance(kind, Tick) else Tick(
                venue, symbol, price, volume, kind[0], trade_id, timestamp, receive,
                kind[1], kind[2], kind[3]))
        out.extend(staged)
        return out

    def count_since(self, timestamp_ns: int) -> int:
        """How many of the newest ticks in a row have an exchange time >= ``timestamp_ns``
        (counting back from the newest, stopping at the first older one)."""
        count = 0
        for tick in reversed(self._staged):
            if tick.timestamp < timestamp_ns:
                return count
            count += 1
        times = self._times(len(self) - count)
        older = np.flatnonzero(times < timestamp_ns)
        return count + (len(times) - int(older[-1]) - 1 if older.size else len(times))

    def last_receive_timestamp(self) -> int | None:
        """The newest tick's receive time, None when the ring is empty."""
        if self._staged:
            return self._staged[-1].receive_timestamp
        if not self._written:
            return None
        start = (self._pos or len(self._rows)) - ROW.size
        return int(ROW.unpack_from(self._rows, start)[4])

    # -- packing ----------------------------------------------------------------------
    def _pack(self) -> None:
        """Pack the staged ticks into rows after the newest, wrapping at the end."""
        staged = self._staged
        if not self._written:
            self.venue, self.symbol = staged[0].venue, staged[0].symbol
        if len(self._kinds) >= 2 * self.capacity + self.chunk + len(_PLAIN_KINDS):
            self._compact_kinds()
        data = b"".join(self._rows_of(staged))
        staged.clear()
        self._written += len(data) // ROW.size
        rows, full = self._rows, self.capacity * ROW.size
        if len(rows) < full:  # still filling: grow, then hold exactly capacity rows
            room = full - len(rows)
            rows += data[:room]
            data = data[room:]
            if len(rows) < full:
                self._pos = len(rows)
                return
            self._rows = rows = bytearray(rows)  # drops the growth's spare allocation
            self._pos = 0
        pos = self._pos
        end = pos + len(data)  # a chunk is at most capacity rows: wraps at most once
        if end <= full:
            rows[pos:end] = data
        else:
            split = full - pos
            rows[pos:] = data[:split]
            end -= full
            rows[:end] = data[split:]
        self._pos = end % full

    def _rows_of(self, ticks: list[Tick]) -> list[bytes]:
        """One packed row per tick: in one comprehension while every tick is of the ring's
        symbol and of a kind already seen, else tick by tick through :meth:`_row_of`."""
        pack, plain, codes = ROW.pack, _PLAIN_KIND_OF, self._codes
        venue, symbol = self.venue, self.symbol
        try:
            return [pack(t.price, t.volume, t.trade_id, t.timestamp, t.receive_timestamp,
                         (plain[t.side] if t.updates == UPDATES_ALL and t.conditions == ()
                          and t.exchange == "" else codes[t.side, t.conditions, t.exchange,
                                                          t.updates])
                         if t.symbol == symbol and t.venue == venue else _NO_KIND)
                    for t in ticks]
        except _UNFIT:  # a kind not seen yet, another symbol, or a value that does not fit
            return [self._row_of(t) for t in ticks]

    def _row_of(self, tick: Tick) -> bytes:
        try:
            return ROW.pack(tick.price, tick.volume, tick.trade_id, tick.timestamp,
                            tick.receive_timestamp, self._kind_of(tick))
        except _UNFIT:
            return ROW.pack(0.0, 0.0, 0, _int64(tick.timestamp), _int64(tick.receive_timestamp),
                            self._keep_whole(tick))

    def _kind_of(self, tick: Tick) -> int:
        """The code of ``tick``'s side, conditions, exchange and updates (added when new)."""
        if tick.venue != self.venue or tick.symbol != self.symbol:
            return self._keep_whole(tick)
        kind = (tick.side, tick.conditions, tick.exchange, tick.updates)
        try:
            code = self._codes.get(kind)
        except TypeError:  # an unhashable field
            return self._keep_whole(tick)
        if code is None:
            code = self._codes[kind] = len(self._kinds)
            self._kinds.append(kind)
        return code

    def _keep_whole(self, tick: Tick) -> int:
        self._kinds.append(tick)
        return len(self._kinds) - 1

    def _compact_kinds(self) -> None:
        """Forget the kinds no kept row uses (so the table stays bounded by the ring's size)."""
        rows = self._view()[:min(self._written, self.capacity)]
        used = np.unique(rows["kind"])
        used = used[used >= len(_PLAIN_KINDS)]
        kinds = list(_PLAIN_KINDS) + [self._kinds[code] for code in used.tolist()]
        renumber = np.arange(len(self._kinds), dtype=np.uint32)
        renumber[used] = np.arange(len(_PLAIN_KINDS), len(kinds), dtype=np.uint32)
        rows["kind"] = renumber[rows["kind"]]
        self._kinds = kinds
        self._codes = {kind: code for code, kind in enumerate(kinds) if not isinstance(kind, Tick)}

    # -- reading ----------------------------------------------------------------------
    def _view(self) -> np.ndarray:
        return np.frombuffer(self._rows, dtype=ROW_DTYPE)

    def _packed_rows(self, n: int) -> bytearray:
        """A copy of the newest ``n`` packed rows, oldest first."""
        start = self._pos - n * ROW.size
        if start >= 0:
            return self._rows[start:self._pos]
        return self._rows[start:] + self._rows[:self._pos]

    def _times(self, n: int) -> np.ndarray:
        """Exchange times of the newest ``n`` packed rows, oldest first."""
        if n <= 0:
            return np.empty(0, dtype=np.int64)
        last = self._pos // ROW.size or self.capacity
        times = self._view()["timestamp"]
        if last >= n:
            return times[last - n:last]
        return np.concatenate((times[last - n:], times[:last]))


def _int64(value: object) -> int:
    """``value`` clamped into int64 (0 when not an int): a kept-whole tick's time
    still orders correctly for :meth:`TickRing.count_since`."""
    return min(max(value, _INT64_MIN), _INT64_MAX) if isinstance(value, int) else 0
