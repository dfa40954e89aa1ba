"""Every venue endpoint over real HTTP: paths, parameter rules, errors, headers."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from oexec.sim.app import SERVICE_TIME_HEADER, SimServer, merged_params
from oexec.sim.routes import ENDPOINTS

from .helpers import VenueClient, limit_order

PUBLIC = [
    ("/fapi/v1/ping", {}, dict),
    ("/fapi/v1/time", {}, dict),
    ("/fapi/v1/exchangeInfo", {}, dict),
    ("/fapi/v1/ticker/price", {"symbol": "BTCUSDT"}, dict),
    ("/fapi/v1/ticker/price", {}, list),
    ("/fapi/v2/ticker/price", {"symbol": "ETHUSDT"}, dict),
    ("/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}, dict),
    ("/fapi/v1/ticker/24hr", {}, list),
    ("/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"}, dict),
    ("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, dict),
    ("/fapi/v1/premiumIndex", {}, list),
    ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "5"}, dict),
]


@pytest.mark.parametrize(("path", "params", "shape"), PUBLIC)
async def test_public_endpoints(
    client: VenueClient, path: str, params: dict[str, str], shape: type
) -> None:
    reply = await client.call("GET", path, params, key=None)
    assert reply.status == 200, reply.body
    assert isinstance(reply.body, shape)
    assert "X-MBX-USED-WEIGHT-1M" in reply.headers
    assert int(reply.headers[SERVICE_TIME_HEADER]) >= 0


async def test_exchange_info_carries_configured_rate_limits(client: VenueClient) -> None:
    info = (await client.call("GET", "/fapi/v1/exchangeInfo")).body
    kinds = {(x["rateLimitType"], x["interval"], x["intervalNum"]) for x in info["rateLimits"]}
    assert kinds == {
        ("REQUEST_WEIGHT", "MINUTE", 1),
        ("ORDERS", "MINUTE", 1),
        ("ORDERS", "SECOND", 10),
    }
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert {f["filterType"] for f in btc["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"}


async def test_time_is_server_clock(client: VenueClient) -> None:
    before = time.time_ns() // 1_000_000
    server = (await client.call("GET", "/fapi/v1/time")).body["serverTime"]
    assert before - 5 <= server <= time.time_ns() // 1_000_000 + 5


async def test_order_lifecycle_by_id_and_client_id(client: VenueClient) -> None:
    placed = await client.call(
        "POST", "/fapi/v1/order", limit_order(newClientOrderId="life-1"), signed=True
    )
    assert placed.status == 200, placed.body
    order_id = placed.body["orderId"]
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert placed.headers["X-MBX-ORDER-COUNT-1M"] == "1"
    by_id = await client.call(
        "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": order_id}, signed=True
    )
    by_cid = await client.call(
        "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "life-1"}, signed=True
    )
    assert by_id.body["orderId"] == by_cid.body["orderId"] == order_id
    assert by_id.body["status"] == "NEW" and D(by_id.body["price"]) == D("49000")
    opened = await client.call(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": order_id}, signed=True
    )
    assert opened.status == 200
    modified = await client.call(
        "PUT",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "orderId": order_id,
            "side": "BUY",
            "quantity": "0.020",
            "price": "49100.0",
        },
        signed=True,
    )
    assert modified.status == 200, modified.body
    assert D(modified.body["price"]) == D("49100") and D(modified.body["origQty"]) == D("0.02")
    listing = await client.call("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"}, signed=True)
    assert [o["orderId"] for o in listing.body] == [order_id]
    cancelled = await client.call(
        "DELETE",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "origClientOrderId": "life-1"},
        signed=True,
    )
    assert cancelled.body["status"] == "CANCELED"
    gone = await client.call(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": order_id}, signed=True
    )
    assert (gone.status, gone.code) == (400, -2013)
    history = await client.call("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"}, signed=True)
    assert history.body[-1]["status"] == "CANCELED"


async def test_market_fill_then_trades_account_positions(client: VenueClient) -> None:
    market = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "MARKET",
        "quantity": "0.010",
        "newOrderRespType": "RESULT",
    }
    filled = await client.call("POST", "/fapi/v1/order", market, signed=True)
    assert filled.body["status"] == "FILLED", filled.body
    trades = await client.call("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"}, signed=True)
    assert trades.body and trades.body[0]["orderId"] == filled.body["orderId"]
    for path in ("/fapi/v1/account", "/fapi/v2/account", "/fapi/v3/account"):
        reply = await client.call("GET", path, signed=True)
        assert reply.status == 200 and "assets" in reply.body, path
    for path in ("/fapi/v1/balance", "/fapi/v2/balance", "/fapi/v3/balance"):
        reply = await client.call("GET", path, signed=True)
        assert any(b["asset"] == "USDT" for b in reply.body), path
    for path in ("/fapi/v1/positionRisk", "/fapi/v2/positionRisk", "/fapi/v3/positionRisk"):
        reply = await client.call("GET", path, {"symbol": "BTCUSDT"}, signed=True)
        assert D(reply.body[0]["positionAmt"]) == D("0.01"), (path, reply.body)


async def test_batch_endpoints(client: VenueClient) -> None:
    orders = [limit_order(newClientOrderId=f"b{i}", price=f"4800{i}.0") for i in range(2)]
    orders.append(limit_order(newClientOrderId="bad", price="1.23"))  # below minPrice
    reply = await client.call(
        "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(orders)}, signed=True
    )
    assert reply.status == 200
    assert [("orderId" in x, x.get("code")) for x in reply.body] == [
        (True, None),
        (True, None),
        (False, -4013),
    ]
    assert reply.headers["X-MBX-ORDER-COUNT-10S"] == "5"
    ids = [x["orderId"] for x in reply.body[:2]]
    modify = [
        {
            "symbol": "BTCUSDT",
            "orderId": ids[0],
            "side": "BUY",
            "quantity": "0.010",
            "price": "48100.0",
        }
    ]
    reply = await client.call(
        "PUT", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(modify)}, signed=True
    )
    assert D(reply.body[0]["price"]) == D("48100")
    reply = await client.call(
        "DELETE",
        "/fapi/v1/batchOrders",
        {"symbol": "BTCUSDT", "orderIdList": json.dumps(ids)},
        signed=True,
    )
    assert [x["status"] for x in reply.body] == ["CANCELED", "CANCELED"]


async def test_cancel_all_countdown_leverage_modes(client: VenueClient) -> None:
    await client.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    reply = await client.call(
        "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"}, signed=True
    )
    assert reply.body["code"] == 200
    reply = await client.call(
        "POST",
        "/fapi/v1/countdownCancelAll",
        {"symbol": "BTCUSDT", "countdownTime": "0"},
        signed=True,
    )
    assert reply.status == 200 and reply.body["symbol"] == "BTCUSDT"
    reply = await client.call(
        "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "5"}, signed=True
    )
    assert reply.body["leverage"] == 5
    for path in ("/fapi/v1/leverageBracket", "/fapi/v2/leverageBracket"):
        reply = await client.call("GET", path, {"symbol": "BTCUSDT"}, signed=True)
        assert reply.status == 200 and reply.body
    reply = await client.call(
        "POST",
        "/fapi/v1/marginType",
        {"symbol": "BTCUSDT", "marginType": "ISOLATED"},
        signed=True,
    )
    assert reply.body == {"code": 200, "msg": "success"}
    reply = await client.call("POST", "/fapi/v1/order/test", limit_order(), signed=True)
    assert reply.status == 200 and reply.body == {}
    reply = await client.call("GET", "/fapi/v1/positionSide/dual", signed=True)
    assert reply.body == {"dualSidePosition": False}
    reply = await client.call(
        "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}, signed=True
    )
    assert reply.body["code"] == 200
    reply = await client.call("GET", "/fapi/v1/multiAssetsMargin", signed=True)
    assert reply.body == {"multiAssetsMargin": False}
    reply = await client.call("GET", "/fapi/v1/rateLimit/order", signed=True)
    assert {x["rateLimitType"] for x in reply.body} == {"ORDERS"}


async def test_algo_order_paths(client: VenueClient) -> None:
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "0.010",
        "triggerPrice": "45000",
        "clientAlgoId": "algo-1",
    }
    placed = await client.call("POST", "/fapi/v1/algoOrder", params, signed=True)
    assert placed.status == 200, placed.body
    algo_id = placed.body["algoId"]
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    got = await client.call("GET", "/fapi/v1/algoOrder", {"algoId": algo_id}, signed=True)
    assert got.body["clientAlgoId"] == "algo-1"
    opened = await client.call("GET", "/fapi/v1/openAlgoOrders", signed=True)
    assert [a["algoId"] for a in opened.body] == [algo_id]
    every = await client.call("GET", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"}, signed=True)
    assert every.status == 200 and every.body
    cancelled = await client.call("DELETE", "/fapi/v1/algoOrder", {"algoId": algo_id}, signed=True)
    assert cancelled.status == 200, cancelled.body
    await client.call("POST", "/fapi/v1/algoOrder", params | {"clientAlgoId": "a2"}, signed=True)
    reply = await client.call(
        "DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "BTCUSDT"}, signed=True
    )
    assert reply.status == 200


def test_every_table_path_is_exercised_somewhere() -> None:
    """Guard: a new route must get a test in this module (by path)."""
    source = Path(__file__).read_text()
    missing = {path for _, path in ENDPOINTS if path not in source and "Key" not in path}
    assert missing == set()


# -- parameter rules ----------------------------------------------------------------------
def test_merge_query_wins_and_get_ignores_body() -> None:
    assert merged_params("POST", "a=1&b=2", "b=3&c=4") == {"a": "1", "b": "2", "c": "4"}
    assert merged_params("GET", "a=1", "c=4") == {"a": "1"}
    assert merged_params("DELETE", "x=%2B1", "") == {"x": "+1"}


async def test_params_in_body_or_mixed(client: VenueClient) -> None:
    reply = await client.call("POST", "/fapi/v1/order", body=limit_order(), signed=True)
    assert reply.status == 200, reply.body
    mixed = await client.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY"},
        body={k: v for k, v in limit_order().items() if k not in ("symbol", "side")},
        signed=True,
    )
    assert mixed.status == 200, mixed.body


async def test_get_params_from_query_only(client: VenueClient) -> None:
    reply = await client.call("GET", "/fapi/v1/allOrders", body={"symbol": "BTCUSDT"}, signed=True)
    assert (reply.status, reply.code) == (400, -1102)


# -- auth errors over HTTP ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"key": None}, 401, -2015),
        ({"key": "not-a-key"}, 401, -2015),
        ({"key": "bad key$"}, 401, -2014),
        ({"signature": "00" * 32}, 400, -1022),
        ({"timestamp_ms": 1_000}, 400, -1021),
        ({"timestamp_ms": int(time.time() * 1000) + 60_000}, 400, -1021),
    ],
)
async def test_auth_errors(
    client: VenueClient, kwargs: dict[str, Any], status: int, code: int
) -> None:
    reply = await client.call("GET", "/fapi/v2/account", signed=True, **kwargs)
    assert (reply.status, reply.code) == (status, code), reply.body
    assert set(reply.body) == {"code", "msg"}
    assert "X-MBX-USED-WEIGHT-1M" in reply.headers


async def test_missing_timestamp_and_recv_window_too_large(client: VenueClient) -> None:
    reply = await client.call("GET", "/fapi/v2/account")
    assert (reply.status, reply.code) == (400, -1102)
    reply = await client.call("GET", "/fapi/v2/account", {"recvWindow": "60001"}, signed=True)
    assert (reply.status, reply.code) == (400, -1130)


async def test_engine_errors_are_json_400(client: VenueClient) -> None:
    reply = await client.call("POST", "/fapi/v1/order", limit_order(symbol="NOPE"), signed=True)
    assert (reply.status, reply.code) == (400, -1121)
    reply = await client.call("GET", "/fapi/v1/depth", {"limit": "5"})
    assert reply.code == -1102
    reply = await client.call("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "x"})
    assert reply.code == -1100


async def test_unknown_path_and_method_is_empty_404(client: VenueClient) -> None:
    for method, path in (
        ("GET", "/fapi/v1/nothing"),
        ("PATCH", "/fapi/v1/order"),
        ("GET", "/sapi/v1/capital/config/getall"),
    ):
        reply = await client.call(method, path)
        assert (reply.status, reply.body) == (404, None)


async def test_stats_count_statuses_and_paths(client: VenueClient, sim: SimServer) -> None:
    await client.call("GET", "/fapi/v1/ping")
    await client.call("GET", "/fapi/v2/account", key=None, signed=True)
    stats = await client.control("GET", "/_sim/stats")
    assert stats["responses_by_status"] == {"200": 1, "401": 1}
    assert stats["requests_by_path"] == {"/fapi/v1/ping": 1, "/fapi/v2/account": 1}
    assert stats["requests_by_route"] == {"GET /fapi/v1/ping": 1, "GET /fapi/v2/account": 1}


async def test_stats_count_routes_apart_on_one_path(client: VenueClient) -> None:
    """Place, query and cancel share /fapi/v1/order: ``requests_by_route`` tells them apart."""
    placed = await client.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    assert placed.status == 200, placed.body
    ref = {"symbol": "BTCUSDT", "orderId": str(placed.body["orderId"])}
    assert (await client.call("GET", "/fapi/v1/order", ref, signed=True)).status == 200
    assert (await client.call("DELETE", "/fapi/v1/order", ref, signed=True)).status == 200
    stats = await client.control("GET", "/_sim/stats")
    assert stats["requests_by_path"]["/fapi/v1/order"] == 3
    routes = stats["requests_by_route"]
    assert [routes[f"{m} /fapi/v1/order"] for m in ("POST", "GET", "DELETE")] == [1, 1, 1]


async def test_connect_time_and_market_history_paths(client: VenueClient) -> None:
    """What clients read at connect, and market history, through HTTP."""
    for path, params in (
        ("/fapi/v1/symbolConfig", {"symbol": "BTCUSDT"}),
        ("/fapi/v1/accountConfig", {}),
        ("/fapi/v1/commissionRate", {"symbol": "BTCUSDT"}),
        ("/fapi/v1/income", {"incomeType": "COMMISSION"}),
    ):
        reply = await client.call("GET", path, params, signed=True)
        assert reply.status == 200, (path, reply.body)
    reply = await client.call("GET", "/fapi/v1/commissionRate", signed=True)
    assert (reply.status, reply.code) == (400, -1102)
    await client.control("POST", "/_sim/advance", {"steps": 3})
    for path, params in (
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}),
        ("/fapi/v1/markPriceKlines", {"symbol": "BTCUSDT", "interval": "1m"}),
        ("/fapi/v1/indexPriceKlines", {"pair": "BTCUSDT", "interval": "1m"}),
        ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT"}),
        ("/fapi/v1/trades", {"symbol": "BTCUSDT"}),
        ("/fapi/v1/fundingRate", {"symbol": "BTCUSDT"}),
        ("/fapi/v1/fundingInfo", {}),
        ("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}),
    ):
        reply = await client.call("GET", path, params)
        assert reply.status == 200, (path, reply.body)
    klines = await client.call("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"})
    assert sum(row[8] for row in klines.body) == 3 and klines.headers["X-MBX-USED-WEIGHT-1M"]
    bad = await client.call("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"})
    assert (bad.status, bad.code) == (400, -1120)
