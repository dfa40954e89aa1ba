"""The daemon with ``[venue] order_transport = "ws"``: a client's orders reach the venue
over its WebSocket API, and /health, /metrics and the dashboard's extra say so."""

from __future__ import annotations

import aiohttp

from oexec.client import AsyncClient
from oexec.models import OrderState

from .conftest import DaemonFactory, SimControl, endpoint
from .test_orders_e2e import limit


async def test_orders_over_the_websocket_api_and_the_ops_view(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(venue_changes={"order_transport": "ws"})
    async with AsyncClient(endpoint(daemon)) as client:
        order = await client.place_order(**limit("ws-e2e-1"))
        assert order.state is OrderState.NEW
        canceled = await client.cancel_order(order_id=order.id)
        assert canceled.state is OrderState.CANCELED
    stats = control.server.state.stats
    seen = stats.requests_by_path
    assert seen["/ws-fapi/v1 order.place"] == 1 and seen["/ws-fapi/v1 order.cancel"] == 1
    # neither went over REST. By method: a GET /fapi/v1/order is a lookup, not order
    # entry - the takeover reconciliation (Redis: the stream lease) may query the order
    # if it lists the venue's open orders after the cancel (seen under load)
    rest = stats.requests_by_route
    assert rest["POST /fapi/v1/order"] == 0 and rest["DELETE /fapi/v1/order"] == 0, rest
    truth = {o["clientOrderId"]: o["status"] for o in await control.orders()}
    assert truth[order.client_order_id] == "CANCELED"

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{daemon.http_url}/health") as resp:
            body = await resp.json()
        assert resp.status == 200 and body["checks"]["ws_api"] == "healthy", body
        async with http.get(f"{daemon.http_url}/metrics") as resp:
            metrics = await resp.text()
    assert 'dependency_up{name="ws_api"} 1.0' in metrics
    assert 'endpoint="ws:order.place"' in metrics
    extra = daemon.dashboard_extra()
    assert extra["order_transport"] == "ws" and extra["ws_api_state"] == "connected"
