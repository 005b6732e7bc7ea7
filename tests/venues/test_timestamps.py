"""parse_rfc3339_ns: exact nanoseconds from Alpaca's RFC 3339 trade times."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.data.venues.alpaca.timestamps import parse_rfc3339_ns
from tests.helpers import DATA

GO_TRADES = DATA / "alpaca" / "samples" / "alpaca-trade-api-go_marketdata_testdata_trades.json.gz"
DOC_TIMES = ["2021-02-22T15:51:44.208Z", "2021-02-22T15:51:45.335689322Z",
             "2024-03-12T10:27:48.858228144Z", "2024-03-12T10:29:43.111588173Z",
             "2021-02-22T19:15:00Z"]


def fixture_times() -> list[str]:
    with gzip.open(GO_TRADES) as fh:
        return [t["t"] for t in json.load(fh)["trades"]["AAPL"]] + DOC_TIMES


@pytest.mark.parametrize("text", fixture_times())
def test_fixture_timestamps_parse_to_the_exact_nanosecond(text: str) -> None:
    assert parse_rfc3339_ns(text) == pd.Timestamp(text).value


def test_nanosecond_digits_are_kept_exactly() -> None:
    assert parse_rfc3339_ns("2024-03-12T10:27:48.858228144Z") == 1710239268858228144
    assert parse_rfc3339_ns("2021-10-13T08:00:00.08960768Z") == 1634112000089607680
    assert parse_rfc3339_ns("1970-01-01T00:00:00.000000001Z") == 1


def test_offsets_shift_to_utc() -> None:
    assert parse_rfc3339_ns("2021-10-13T04:00:00.5-04:00") == parse_rfc3339_ns(
        "2021-10-13T08:00:00.5Z")
    assert parse_rfc3339_ns("2021-10-13T13:30:00+05:30") == parse_rfc3339_ns(
        "2021-10-13T08:00:00z")


@pytest.mark.parametrize("text", [
    "", "2021-10-13", "2021-10-13T08:00:00", "2021-10-13 08:00:00Z", "2021-13-13T08:00:00Z",
    "2021-02-30T08:00:00Z", "2021-10-13T24:00:00Z", "2016-12-31T23:59:60Z",
    "2021-10-13T08:00:00.Z", "2021-10-13T08:00:00.1234567891Z", "2021-10-13T08:00:00,5Z",
    "2021-10-13T08:00:00+0400", "2021-10-13T08:00:00+24:00", "2021-10-13T08:00:00.1x2Z",
    "2021-10-13T08:00:00.\u0661\u0662Z",  # Arabic-Indic digits
])
def test_invalid_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)),
       st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59))
def test_microsecond_inputs_agree_with_datetime_and_pandas(moment: datetime,
                                                           offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat()  # "+HH:MM" offsets, microseconds when non-zero
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    assert parse_rfc3339_ns(text) == expected
    assert parse_rfc3339_ns(moment.isoformat().replace("+00:00", "Z")) == expected
    assert expected == pd.Timestamp(text).value


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9 - 1))
def test_nanosecond_inputs_agree_with_pandas(ns: int) -> None:
    text = pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"
    assert parse_rfc3339_ns(text) == ns == pd.Timestamp(text).value
