"""Paper execution checked by hand on small scripted price paths."""

from __future__ import annotations

import json

import pytest

from bot.data.engine.paper import PaperExecutor
from bot.data.errors import ConfigError
from bot.data.models import SignalDirection
from tests.engine.support import T0, FakeManager, Market, make_signal

BUY, SELL = SignalDirection.BUY, SignalDirection.SELL
SECOND = 1_000_000_000


def test_round_trip_pnl_with_fees_by_hand(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, initial_cash=10_000.0, quantity=2.0, max_position=2.0,
                          fee_bps=10.0)
    paper.execute(make_signal(BUY))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)  # fill 2 @ 100, fee 0.2
    assert paper.cash == pytest.approx(9_799.8)  # 10000 - 200 - 0.2
    market.trade("BTC/USDT", 110.0, T0 + 2 * SECOND)
    assert paper.unrealised_pnl() == pytest.approx(20.0)  # (110 - 100) * 2
    assert paper.equity == pytest.approx(10_019.8)  # 9799.8 + 2 * 110

    paper.execute(make_signal(SELL))
    market.trade("BTC/USDT", 105.0, T0 + 3 * SECOND)  # fill 2 @ 105, fee 0.21
    assert paper.cash == pytest.approx(10_009.59)  # 9799.8 + 210 - 0.21
    assert paper.realised_pnl == pytest.approx(10.0)  # (105 - 100) * 2
    assert paper.fees_paid == pytest.approx(0.41)
    assert paper.unrealised_pnl() == 0.0
    assert paper.positions["BTC/USDT"].quantity == 0.0
    assert paper.equity == pytest.approx(10_009.59)
    assert [(f.side, f.quantity, f.price, f.fee) for f in paper.trades] == [
        (BUY, 2.0, 100.0, pytest.approx(0.2)), (SELL, 2.0, 105.0, pytest.approx(0.21))]


def test_slippage_moves_each_fill_against_the_trader(manager: FakeManager,
                                                     market: Market) -> None:
    paper = PaperExecutor(manager.bus, fee_bps=0.0, slippage_bps=50.0)
    paper.execute(make_signal(BUY))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)  # buy @ 100.5
    paper.execute(make_signal(SELL))
    market.trade("BTC/USDT", 110.0, T0 + 2 * SECOND)  # sell @ 109.45
    assert [f.price for f in paper.trades] == [pytest.approx(100.5), pytest.approx(109.45)]
    assert paper.cash == pytest.approx(10_008.95)  # 10000 - 100.5 + 109.45
    assert paper.realised_pnl == pytest.approx(8.95)


def test_short_round_trip_by_hand(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, fee_bps=0.0, allow_short=True)
    paper.execute(make_signal(SELL))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    market.trade("BTC/USDT", 95.0, T0 + 2 * SECOND)
    assert paper.unrealised_pnl() == pytest.approx(5.0)  # (95 - 100) * -1
    paper.execute(make_signal(BUY))
    market.trade("BTC/USDT", 90.0, T0 + 3 * SECOND)
    assert paper.realised_pnl == pytest.approx(10.0)
    assert paper.cash == pytest.approx(10_010.0)


def test_fills_at_the_next_trade_after_the_signal(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, fee_bps=0.0)
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    paper.execute(make_signal(BUY))
    assert paper.in_flight("BTC/USDT")
    market.trade("ETH/USDT", 3_000.0, T0 + 2 * SECOND)  # another symbol's trade does not fill
    assert paper.in_flight("BTC/USDT")
    market.trade("BTC/USDT", 101.0, T0 + 3 * SECOND)
    assert not paper.in_flight("BTC/USDT")
    assert paper.trades[0].price == 101.0
    assert paper.trades[0].timestamp == T0 + 3 * SECOND


def test_one_order_in_flight_per_symbol(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, quantity=1.0, max_position=5.0)
    paper.execute(make_signal(BUY))
    paper.execute(make_signal(BUY))
    paper.execute(make_signal(BUY, symbol="ETH/USDT"))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    assert paper.rejected == {"order_in_flight": 1}
    assert paper.positions["BTC/USDT"].quantity == 1.0
    assert paper.in_flight("ETH/USDT")


def test_position_limit_refuses_orders_beyond_it(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, quantity=1.0, max_position=2.0)
    for second in (1, 2, 3):
        paper.execute(make_signal(BUY))
        market.trade("BTC/USDT", 100.0, T0 + second * SECOND)
    assert paper.positions["BTC/USDT"].quantity == 2.0
    assert paper.rejected == {"position_limit": 1}


def test_no_short_selling_unless_allowed(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus)
    paper.execute(make_signal(SELL))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    assert paper.trades == []
    assert paper.rejected == {"short_not_allowed": 1}


def test_snapshot_is_json_serialisable(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus, fee_bps=0.0)
    paper.execute(make_signal(BUY))
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    snapshot = json.loads(json.dumps(paper.snapshot()))
    assert snapshot["positions"] == {"BTC/USDT": {"quantity": 1.0, "average_price": 100.0}}


def test_close_stops_filling(manager: FakeManager, market: Market) -> None:
    paper = PaperExecutor(manager.bus)
    paper.execute(make_signal(BUY))
    paper.close()
    market.trade("BTC/USDT", 100.0, T0 + SECOND)
    assert paper.trades == []


@pytest.mark.parametrize(("field", "kwargs"), [
    ("quantity", {"quantity": 0.0}),
    ("fee_bps", {"fee_bps": -1.0}),
    ("slippage_bps", {"slippage_bps": -1.0}),
    ("max_position", {"quantity": 2.0, "max_position": 1.0}),
])
def test_invalid_settings_are_refused(manager: FakeManager, field: str,
                                      kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=field):
        PaperExecutor(manager.bus, **kwargs)  # type: ignore[arg-type]
