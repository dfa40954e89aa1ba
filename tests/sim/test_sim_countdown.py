"""countdownCancelAll fires on time by itself, as on the venue: no price move, no request
(found by tests/tracking/test_dead_man_e2e.py: the timer only fired on a price move)."""

from __future__ import annotations

import asyncio

from oexec.sim.app import SimServer

from .helpers import VenueClient, limit_order
from .test_sim_userstream import connect, listen_key, receive


async def _statuses(client: VenueClient) -> dict[str, str]:
    reply = await client.call("GET", "/_sim/orders")
    orders = reply.body["orders"] if isinstance(reply.body, dict) else reply.body
    return {o["clientOrderId"]: o["status"] for o in orders}


async def test_countdown_cancels_resting_orders_without_a_price_move(
    client: VenueClient, sim: SimServer
) -> None:
    ws = await connect(client, sim, await listen_key(client))
    try:
        for coid, symbol in (("cd-btc", "BTCUSDT"), ("cd-eth", "ETHUSDT")):
            price = "49000.0" if symbol == "BTCUSDT" else "2500.00"
            params = limit_order(symbol=symbol, price=price, newClientOrderId=coid)
            reply = await client.call("POST", "/fapi/v1/order", params, signed=True)
            assert reply.status == 200, reply.body
        for _ in range(2):
            assert (await receive(ws))["o"]["X"] == "NEW"
        armed = await client.call(
            "POST",
            "/fapi/v1/countdownCancelAll",
            {"symbol": "BTCUSDT", "countdownTime": "300"},
            signed=True,
        )
        assert armed.status == 200, armed.body
        event = await receive(ws, wait_s=3.0)  # nothing else happens: only the timer
        assert (event["e"], event["o"]["c"], event["o"]["X"]) == (
            "ORDER_TRADE_UPDATE",
            "cd-btc",
            "CANCELED",
        )
    finally:
        await ws.close()
    await asyncio.sleep(0.3)
    assert await _statuses(client) == {"cd-btc": "CANCELED", "cd-eth": "NEW"}
    assert sim.exchange._state.countdowns == {}
