"""Start, stop, clocks and the command line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import warnings

import websockets

from bot.data.sim import ExchangeSimulator


async def test_env_points_a_client_at_the_simulator() -> None:
    async with ExchangeSimulator(symbols=["BTC/USDT"]) as sim:
        env = sim.env()
        assert env["BINANCE_WS_URL"] == sim.binance_ws_url.rstrip("/")
        assert env["ALPACA_API_KEY"] == "sim-key" and env["ALPACA_SECRET_KEY"] == "sim-secret"
        assert sim.port != 0 and env["BINANCE_REST_URL"].endswith(str(sim.port))


async def test_stopping_with_open_connections_leaves_no_task_or_session_behind() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with ExchangeSimulator(symbols=["BTC/USDT"], speed=20) as sim:
            ws = await websockets.connect(f"{sim.binance_ws_url}/ws/btcusdt@trade")
            await ws.recv()
        assert sim.counters.connections_open == 0
        await ws.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not [w for w in caught if "nclosed" in str(w.message) or "pending" in str(w.message)]


async def test_the_same_seed_gives_the_same_market() -> None:
    start = 1_700_000_000_000_000_000
    runs = []
    for _ in range(2):
        async with ExchangeSimulator(symbols=["BTC/USDT"], seed=3, start_time_ns=start,
                                     history_seconds=120) as sim:
            runs.append([(t.trade_id, t.price_e8, t.qty_e8, t.time_ns)
                         for t in sim.trades("binance", "BTC/USDT") if t.time_ns <= start])
    assert runs[0] == runs[1] and len(runs[0]) > 100


async def test_an_injected_clock_drives_market_time() -> None:
    now = [1_700_000_000_000_000_000]
    async with ExchangeSimulator(symbols=["BTC/USDT"], clock=lambda: now[0]) as sim:
        assert sim.trades("binance", "BTC/USDT") == []
        now[0] += 600 * 10**9
        sim.advance()
        trades = sim.trades("binance", "BTC/USDT")
    assert len(trades) > 100 and trades[-1].time_ns <= now[0]
    assert len(sim.klines("BTC/USDT", "1m")) in (10, 11)


def test_command_line_prints_urls_and_stops_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.data.sim", "--symbols", "BTC/USDT", "--stocks", "AAPL",
         "--port", "0", "--history", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"})
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Task was destroyed" not in err
    assert any("export BINANCE_WS_URL=ws://127.0.0.1:" in line for line in lines)
    assert "Stopped" in out
