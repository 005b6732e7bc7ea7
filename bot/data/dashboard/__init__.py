"""A live web dashboard of a running stream: candlestick charts with VWAP, volume by taker
side, signal markers, connection health and latency, and an engine's positions and PnL,
served locally (``bot-stream dashboard``).

The chart library (TradingView's lightweight-charts) is vendored under
``static/vendor/`` by ``scripts/vendor_chart_library.sh``; nothing is fetched
from the internet when the page runs.
"""

from bot.data.extras import require

try:
    from bot.data.dashboard.server import DashboardServer
except ImportError:
    require("cli", "The dashboard")
    raise

__all__ = ["DashboardServer"]
