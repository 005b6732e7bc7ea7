"""Compact binary payloads of ticks, bars and signals (MessagePack via msgspec).

A tick or a bar travels as a MessagePack *array* of the record's fields in
declaration order (66 bytes for a Binance tick, against 162 as a map). The
wire type is derived from the model's own fields, so it cannot drift from it,
and it is array-like with the model's defaults: a payload from a publisher
that knows fewer trailing fields decodes with their defaults, and trailing
fields a consumer does not know are ignored. Signals are rare and nested, and
travel as maps.

A batch of one symbol's ticks (:class:`BatchCodec`) is ``[venue, symbol,
rows]``, each row a tick's fields after the venue and the symbol, with the
same tolerance for fewer or more trailing fields (about 48 bytes per Binance
tick).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from bot.data.models import Bar, Signal, Tick

R = TypeVar("R", bound=msgspec.Struct)


class Watermark(msgspec.Struct, frozen=True, gc=False):
    """A worker's word that every trade of ``symbol`` before ``through_ns`` precedes it.

    Published on the symbol's tick subject when the worker completes a bar, so
    it lands after those trades in the stream: a remote manager completes its
    bars up to ``through_ns`` on it, never earlier by its own clock. A worker
    that is recovering a gap completes nothing, so its consumers wait too.
    """

    venue: str
    symbol: str
    through_ns: int
_astuple = msgspec.structs.astuple


def _wire_type(model: type[msgspec.Struct], skip: int = 0) -> type[msgspec.Struct]:
    """An array-like Struct with ``model``'s fields (after the first ``skip``), types and
    defaults."""
    fields: list[Any] = []
    for f in msgspec.structs.fields(model)[skip:]:
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, f.type, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, f.type))
    return msgspec.defstruct(f"{model.__name__}Wire", fields, array_like=True, gc=False)


class RecordCodec(Generic[R]):
    """Encodes records of ``model`` as MessagePack arrays and decodes them back."""

    def __init__(self, model: type[R]) -> None:
        self.model = model
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_wire_type(model))

    def encode(self, record: R) -> bytes:
        return self._encoder.encode(_astuple(record))

    def decode(self, payload: bytes) -> R:
        """The record; ``msgspec.DecodeError`` (a ValueError) names what is wrong."""
        return self.model(*_astuple(self._decoder.decode(payload)))


_HEAD = tuple(f.name for f in msgspec.structs.fields(Tick)[:2])
assert _HEAD == ("venue", "symbol"), "a batch row is a tick's fields after these two"


class BatchCodec:
    """One symbol's ticks as one payload: ``[venue, symbol, rows]``, in the given order."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        row = _wire_type(Tick, skip=2)
        self._decoder = msgspec.msgpack.Decoder(
            msgspec.defstruct("TickBatchWire", [("venue", str), ("symbol", str),
                                                ("rows", list[row])],  # type: ignore[valid-type]
                              array_like=True, gc=False))

    def encode(self, venue: str, symbol: str, ticks: list[Tick]) -> bytes:
        """``ticks`` must all be of ``venue`` and ``symbol`` (the rows do not repeat them)."""
        return self._encoder.encode((venue, symbol, [_astuple(t)[2:] for t in ticks]))

    def decode(self, payload: bytes) -> list[Tick]:
        """The ticks, in the batch's order; ``msgspec.DecodeError`` names what is wrong."""
        wire: Any = self._decoder.decode(payload)
        venue, symbol = wire.venue, wire.symbol
        return [Tick(venue, symbol, *_astuple(row)) for row in wire.rows]


class SignalCodec:
    """Signals as MessagePack maps (nested bar and prediction included)."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Signal)

    def encode(self, signal: Signal) -> bytes:
        return self._encoder.encode(signal)

    def decode(self, payload: bytes) -> Signal:
        return self._decoder.decode(payload)


def tick_codec() -> RecordCodec[Tick]:
    return RecordCodec(Tick)


def bar_codec() -> RecordCodec[Bar]:
    return RecordCodec(Bar)


def watermark_codec() -> RecordCodec[Watermark]:
    return RecordCodec(Watermark)


def batch_codec() -> BatchCodec:
    return BatchCodec()
