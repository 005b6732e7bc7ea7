"""Alpaca's asset list: ``GET /v2/assets`` and ``GET /v2/assets/{symbol_or_asset_id}``.

Served on the trading API's paths (the simulator's one port stands for both
Alpaca hosts) for the instruments the simulator lists, in the documented Asset
entity shape; a symbol it does not list is ``404 {"code": 40410000, "message":
"asset not found"}``, as Alpaca answers. ``status`` filters by status and
``asset_class`` (default ``us_equity``) by class; every listed asset is active
and tradable. Requests must carry known API keys, else ``401 {"code": 40110000,
"message": "request is not authorized"}`` as Alpaca's trading API answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from bot.data.sim.market import Instrument

NOT_FOUND = {"code": 40410000, "message": "asset not found"}
NOT_AUTHORISED = {"code": 40110000, "message": "request is not authorized"}
STOCK_EXCHANGE = "NASDAQ"
CRYPTO_EXCHANGE = "CRYPTO"


def asset(instrument: Instrument) -> dict[str, Any]:
    """The Asset entity of one listed instrument (its id stable across runs)."""
    stock = instrument.is_stock
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-sim/{instrument.symbol}")),
        "class": "us_equity" if stock else "crypto",
        "exchange": STOCK_EXCHANGE if stock else CRYPTO_EXCHANGE,
        "symbol": instrument.symbol,
        "name": f"{instrument.symbol} (simulated)",
        "status": "active",
        "tradable": True,
        "marginable": stock,
        "maintenance_margin_requirement": 30 if stock else 100,
        "shortable": stock,
        "easy_to_borrow": stock,
        "fractionable": True,
        "attributes": [],
    }


class SimAlpacaAssets:
    """The asset routes over the simulator's Alpaca instruments."""

    def __init__(self, instruments: Iterable[Instrument], keys: Mapping[str, str]) -> None:
        self.assets = [asset(i) for i in instruments]
        self.keys = keys

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v2/assets", self.list_assets),
                web.get("/v2/assets/{symbol_or_asset_id}", self.get_asset)]

    def _authorised(self, request: web.Request) -> bool:
        key = request.headers.get("APCA-API-KEY-ID")
        return key is not None and self.keys.get(key) == request.headers.get(
            "APCA-API-SECRET-KEY")

    async def list_assets(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response(NOT_AUTHORISED, status=401)
        wanted_class = request.query.get("asset_class", "us_equity")
        status = request.query.get("status")
        return web.json_response([a for a in self.assets if a["class"] == wanted_class
                                  and status in (None, a["status"])])

    async def get_asset(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response(NOT_AUTHORISED, status=401)
        wanted = request.match_info["symbol_or_asset_id"]
        found = next((a for a in self.assets if wanted in (a["symbol"], a["id"])), None)
        if found is None:
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response(found)
