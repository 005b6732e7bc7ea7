"""A local exchange simulator speaking Binance spot and Alpaca market-data protocols.

The demo, the tests and users testing bots offline run against it instead of
the real exchanges. See :class:`ExchangeSimulator`.
"""

from bot.data.sim.faults import Faults
from bot.data.sim.klines import Kline
from bot.data.sim.server import DEFAULT_KEY, DEFAULT_SECRET, ExchangeSimulator
from bot.data.sim.trades import AggTrade, SimTrade

__all__ = ["DEFAULT_KEY", "DEFAULT_SECRET", "AggTrade", "ExchangeSimulator", "Faults", "Kline",
           "SimTrade"]
