"""USDⓈ-M gap fills without an API key: trades older than the venue's recent 1000 are
rebuilt from the public ``aggTrades``, and the bars they build are Binance's official
USDⓈ-M klines (a real day, tests/data/binance/usdm_BTCUSDT_2020-02-22)."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from pathlib import Path

import pytest

from bot.data.config import StreamManagerConfig
from bot.data.models import Side, Tick
from bot.data.sim import ExchangeSimulator
from bot.data.venues.binance_usdm.history import UsdmTradeHistory
from bot.data.venues.binance_usdm.rest import UsdmAggTrade
from bot.data.venues.binance_usdm.spec import BINANCE_USDM, NOT_MARKET
from bot.data.venues.history import TradePosition
from tests.helpers import DATA
from tests.streaming import point_at

DAY = DATA / "binance" / "usdm_BTCUSDT_2020-02-22"
SYMBOL = "BTC/USDT:USDT"
MINUTE_MS = 60_000
FIRST_MINUTE_MS = 1582329660000  # 00:01
MINUTES = 30


def _day_rows(tmp_path: Path) -> tuple[Path, list[list[str]]]:
    """The recording's trades of the minutes replayed, as an official trades CSV, and them."""
    end_ms = FIRST_MINUTE_MS + MINUTES * MINUTE_MS
    rows = []
    with gzip.open(DAY / "tardis_trades_full-day.repaired.csv.gz", "rt") as fh:
        for row in csv.DictReader(fh):
            time_ms = int(row["timestamp"]) // 1000
            if FIRST_MINUTE_MS <= time_ms < end_ms:
                rows.append([row["id"], row["price"], row["amount"], "0", str(time_ms),
                             "true" if row["side"] == "sell" else "false", "true"])
    path = tmp_path / "BTCUSDT-trades.csv"
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(rows)
    return path, rows


def _official() -> dict[int, list[str]]:
    with (DAY / "BTCUSDT-1m-2020-02_rows_2020-02-22.csv").open() as fh:
        return {int(row[0]): row for row in csv.reader(fh)}


@pytest.mark.parametrize("resumed_minute", [11, None], ids=["stream-resumed", "up-to-now"])
async def test_a_gap_older_than_the_recent_trades_is_rebuilt_from_agg_trades_as_the_klines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resumed_minute: int | None) -> None:
    """Known up to the last trade before 00:03; the stream resumed at ``resumed_minute``'s
    first trade (None: the fill runs up to now, past where the recent trades start)."""
    replay, rows = _day_rows(tmp_path)
    end_ms = FIRST_MINUTE_MS + MINUTES * MINUTE_MS
    async with ExchangeSimulator([], futures_symbols=[SYMBOL], replay={SYMBOL: replay},
                                 start_time_ns=end_ms * 10**6) as sim:
        point_at(sim, monkeypatch)
        config = StreamManagerConfig()
        rest = BINANCE_USDM.rest(config, None, sim.now_ns)
        history = BINANCE_USDM.history(config, rest)
        last = max((r for r in rows if int(r[4]) < FIRST_MINUTE_MS + 2 * MINUTE_MS),
                   key=lambda r: int(r[0]))
        until = None
        end_id = int(rows[-1][0]) + 1
        if resumed_minute is not None:
            resumed = min((r for r in rows
                           if int(r[4]) >= FIRST_MINUTE_MS + resumed_minute * MINUTE_MS),
                          key=lambda r: int(r[0]))
            until = Tick("binanceusdm", SYMBOL, float(resumed[1]), float(resumed[2]),
                         Side.BUY, int(resumed[0]), int(resumed[4]) * 10**6, 0)
            end_id = until.trade_id
        ticks = await history.fetch(SYMBOL, TradePosition(int(last[0]), int(last[4]) * 10**6),
                                    until, sim.now_ns())
        paths = [entry.split("?")[0] for entry in sim.rest_log]
        await rest.close()

    assert "/fapi/v1/historicalTrades" not in paths, "the keyless client never asks it"
    assert "/fapi/v1/aggTrades" in paths, "the gap is older than the recent 1000 trades"
    assert [t.trade_id for t in ticks] == list(range(int(last[0]) + 1, end_id))
    minutes: dict[int, list[Tick]] = defaultdict(list)
    for tick in ticks:
        minutes[tick.timestamp // 10**6 // MINUTE_MS * MINUTE_MS].append(tick)
    official = _official()
    last_minute = MINUTES if resumed_minute is None else resumed_minute
    assert sorted(minutes) == [FIRST_MINUTE_MS + i * MINUTE_MS for i in range(2, last_minute)]
    for open_ms, trades in minutes.items():
        row = official[open_ms]
        prices = [t.price for t in trades]
        assert (prices[0], max(prices), min(prices), prices[-1], len(trades)) == (
            float(row[1]), float(row[2]), float(row[3]), float(row[4]), int(row[8]))
        buys = [t for t in trades if t.side is Side.BUY]
        for got, want in ((sum(t.volume for t in trades), row[5]),
                          (sum(t.price * t.volume for t in trades), row[7]),
                          (sum(t.volume for t in buys), row[9]),
                          (sum(t.price * t.volume for t in buys), row[10])):
            assert got == pytest.approx(float(want), rel=1e-9, abs=1e-9)


def _agg(a: int, first: int, last: int, qty: float, time_ms: int) -> UsdmAggTrade:
    return UsdmAggTrade(a=a, p=100.0, q=qty, f=first, l=last, T=time_ms, m=False)


def _trade(trade_id: int) -> Tick:
    return Tick("binanceusdm", SYMBOL, 100.0, 1.0, Side.BUY, trade_id, trade_id * 10**6, 0)


class _ScriptedRest:
    """The two public USDⓈ-M trade lists, scripted; counts the aggTrades pages asked."""

    venue = "binanceusdm"
    PAGE = 1000

    def __init__(self, recent: list[Tick], aggs: list[UsdmAggTrade]) -> None:
        self.recent = recent
        self.aggs = aggs
        self.agg_pages = 0

    async def recent_trades(self, symbol: str) -> list[Tick]:
        return self.recent

    async def agg_trade_rows(self, symbol: str, *, start_ms: int | None = None,
                             from_id: int | None = None) -> list[UsdmAggTrade]:
        self.agg_pages += 1
        return self.aggs if from_id is None else []

    def receive_time_ns(self) -> int:
        return 0


@pytest.mark.parametrize("source", ["aggTrades", "recent trades"])
async def test_ids_the_trade_lists_do_not_hold_come_back_as_refused_not_market_records(
        source: str) -> None:
    """USDⓈ-M's aggregates (and, on the venue, its trade lists) hold market trades only: the
    ids between, and up to the stream's next trade once the answer reaches past it, are
    records of price 0 the gate refuses, so the fill leaves no gap."""
    if source == "aggTrades":
        rest = _ScriptedRest([], [_agg(1, 8, 10, 3.0, 1), _agg(2, 12, 13, 1.0, 2),
                                  _agg(3, 21, 21, 1.0, 3)])
    else:
        rest = _ScriptedRest([_trade(i) for i in (9, 10, 12, 13, 21)], [])
    history = UsdmTradeHistory(rest, BINANCE_USDM.facts, aggregate=False)  # type: ignore[arg-type]
    ticks = await history.fetch(SYMBOL, TradePosition(9, 9 * 10**6), _trade(20), 0)
    assert [t.trade_id for t in ticks] == list(range(10, 20))
    refused = [t.trade_id for t in ticks if t.conditions == (NOT_MARKET,)]
    assert refused == [11, 14, 15, 16, 17, 18, 19]
    assert all(t.price == 0 and t.volume == 0 for t in ticks if t.conditions)
    assert rest.agg_pages == (1 if source == "aggTrades" else 0)
    if source == "aggTrades":
        assert [t.volume for t in ticks if not t.conditions] == [1.0, 0.5, 0.5]


async def test_ids_past_what_the_venue_answered_are_left_missing_not_invented() -> None:
    rest = _ScriptedRest([_trade(i) for i in (9, 10, 12)], [])
    history = UsdmTradeHistory(rest, BINANCE_USDM.facts, aggregate=False)  # type: ignore[arg-type]
    ticks = await history.fetch(SYMBOL, TradePosition(9, 9 * 10**6), _trade(20), 0)
    assert [t.trade_id for t in ticks] == [10, 11, 12]
