"""``DeliveredIds`` against a plain set of the ids passed on."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from bot.data.nats.delivered import DeliveredIds


@given(st.lists(st.integers(0, 60), max_size=200))
def test_an_id_is_new_exactly_once_whatever_the_order(ids: list[int]) -> None:
    delivered = DeliveredIds()
    seen: set[int] = set()
    for trade_id in ids:
        assert delivered.add(trade_id) is (trade_id not in seen), trade_id
        seen.add(trade_id)
    ranges = delivered.ranges
    assert {i for low, high in ranges for i in range(low, high + 1)} == seen
    assert all(high + 1 < low for (_, high), (low, _) in pairwise(ranges)), \
        "ranges are disjoint, apart and ascending"


def test_consecutive_ids_take_one_range_and_only_the_newest_ranges_are_kept() -> None:
    delivered = DeliveredIds(max_ranges=2)
    assert all(delivered.add(i) for i in range(1_000, 2_000))
    assert delivered.ranges == [(1_000, 1_999)]
    for trade_id in (3_000, 5_000):  # two holes: three ranges, the oldest dropped
        delivered.add(trade_id)
    assert delivered.ranges == [(3_000, 3_000), (5_000, 5_000)]
    assert delivered.add(1_500), "below what is kept counts as new (the aggregator decides)"
    assert not delivered.add(5_000)
