"""The command line with a symbol the venue does not list, and with an exchange it cannot
reach: one line on stderr naming the problem, the documented exit status, no traceback,
and ``--duration`` holding even while start-up retries."""

from __future__ import annotations

import socket
import time

from tests.cli.test_config import run_cli


def _closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_symbol_the_simulator_does_not_list_exits_2_suggesting_the_listed_one() -> None:
    result = run_cli("live", "--sim", "BTC/USDTT", "--duration", "20")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("simulator:")]
    assert lines == ["bot-stream live: configuration error: crypto_symbols='BTC/USDTT' is "
                     "invalid: binance does not list it; did you mean 'BTC/USDT'?"]


def test_a_pair_without_its_slash_exits_2_in_one_line() -> None:
    result = run_cli("live", "BTCUSDT")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "symbols='BTCUSDT' is invalid: must look like 'BASE/QUOTE'" in result.stderr


def test_duration_bounds_start_up_against_an_unreachable_exchange() -> None:
    port = _closed_port()
    began = time.monotonic()
    result = run_cli("live", "BTC/USDT", "--json", "--duration", "3",
                     env={"BINANCE_REST_URL": f"http://127.0.0.1:{port}",
                          "BINANCE_WS_URL": f"ws://127.0.0.1:{port}"})
    took = time.monotonic() - began
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == (f"bot-stream live: not streaming within 3 s: binance REST: cannot "
                         f"reach 127.0.0.1:{port}: connection refused")
    assert all(f"cannot reach 127.0.0.1:{port}: connection refused; retrying with backoff "
               "(attempt" in line for line in lines[:-1])
    assert took < 3 + 12, "returned near its deadline, not after every retry (31 s)"


def test_a_stock_the_simulator_does_not_list_exits_2_suggesting_the_listed_one() -> None:
    result = run_cli("live", "--sim", "--stocks", "TSLAA", "--duration", "20")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("simulator:")]
    assert lines == ["bot-stream live: configuration error: stock_symbols='TSLAA' is "
                     "invalid: alpaca does not list it; did you mean 'TSLA'?"]

