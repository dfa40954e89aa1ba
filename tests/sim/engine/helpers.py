"""Request builders and event helpers for the engine tests."""

from __future__ import annotations

from typing import Any


def order(**params: str) -> dict[str, str]:
    """BTCUSDT order params with defaults, overridden by keyword."""
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
    }
    base.update(params)
    return {k: v for k, v in base.items() if v != ""}


def market(**params: str) -> dict[str, str]:
    return order(**({"type": "MARKET", "price": "", "timeInForce": ""} | params))


def kinds(log: list[dict[str, Any]]) -> list[str]:
    """Event names, with the execution type for order updates."""
    return [f"{e['e']}:{e['o']['x']}" if e["e"] == "ORDER_TRADE_UPDATE" else e["e"] for e in log]
