"""Alpaca trade conditions -> which bar fields a trade may update."""

from __future__ import annotations

import pytest

from bot.data.models import UPDATES_ALL, UPDATES_HIGH_LOW, UPDATES_OPEN_CLOSE, UPDATES_VOLUME
from bot.data.venues.alpaca.conditions import updates_for

# Alpaca staff's official list of conditions that exclude a trade from a bar's prices.
OFFICIAL = ["B", "W", "4", "7", "9", "C", "G", "H", "I", "M", "N", "P", "Q", "R", "T"]


@pytest.mark.parametrize("conditions", [(), ("@",), ("@", "F"), ("@", "F", "O"), ("6",)])
def test_regular_trades_update_every_field(conditions: tuple[str, ...]) -> None:
    assert updates_for(conditions) == UPDATES_ALL


@pytest.mark.parametrize("condition", OFFICIAL)
def test_officially_excluded_conditions_update_no_price(condition: str) -> None:
    assert not updates_for(("@", condition)) & (UPDATES_HIGH_LOW | UPDATES_OPEN_CLOSE)


@pytest.mark.parametrize("condition", ["I", "T", "B", "W", "4", "7", "C", "G", "H", "N", "P",
                                       "R", "U", "V", "Z"])
def test_volume_counts_every_trade_but_the_informational_reports(condition: str) -> None:
    assert updates_for((condition,)) & UPDATES_VOLUME


@pytest.mark.parametrize("condition", ["M", "Q", "9"])
def test_official_open_close_and_corrected_close_reports_update_nothing(condition: str) -> None:
    assert updates_for((condition,)) == 0


def test_conditions_past_the_official_list_follow_the_per_field_sets() -> None:
    assert updates_for(("U",)) == updates_for(("V",)) == UPDATES_VOLUME
    assert updates_for(("Z",)) == UPDATES_HIGH_LOW | UPDATES_VOLUME


def test_odd_lot_trades_of_alpacas_example_count_only_toward_volume() -> None:
    # The AAPL trades of 2023-05-18 20:30Z that produced no Alpaca minute bar.
    assert updates_for(("@", "F", "T", "I")) == updates_for(("@", "T", "I")) == UPDATES_VOLUME
