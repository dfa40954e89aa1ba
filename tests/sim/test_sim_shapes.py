"""Every REST endpoint's reply against the venue's documented example for that path and
version (tests/fixtures/binance/venue_docs, see its README): keys and their casing, JSON
types, integers, decimals as strings. Differences the simulator knowingly has are listed
in TOLERATED with the reason; docs/sim.md lists them too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig
from oexec.sim.routes import ENDPOINTS

from .helpers import VenueClient, limit_order
from .shapes import differences

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "binance" / "venue_docs"
#: Paths the simulator serves that the venue retired: compared with their successor.
SAME_AS = {
    ("GET", "/fapi/v1/account"): "GET_v2_account",
    ("GET", "/fapi/v1/balance"): "GET_v2_balance",
    ("GET", "/fapi/v1/positionRisk"): "GET_v2_positionRisk",
    ("GET", "/fapi/v2/leverageBracket"): "GET_v1_leverageBracket",
}
_TRAILING_ONLY = ("activatePrice", "priceRate")  # "only return with TRAILING_STOP_MARKET"


def _keys(prefix: str, *names: str) -> frozenset[str]:
    return frozenset(f"{prefix}.{name}" for name in names)


#: Known differences, each with its reason (docs/sim.md "Known differences" lists them).
TOLERATED: dict[str, frozenset[str]] = {
    # The doc example shows an order object; the simulator answers {} (the venue's test
    # endpoint validates without placing; which body the live venue sends is unconfirmed).
    "POST_v1_order_test": frozenset({"$"}),
    # New-order replies carry the query shape's "time" (one order object everywhere).
    "POST_v1_order": _keys("$", "time"),
    # The batch example predates closePosition/time in order replies.
    "POST_v1_batchOrders": _keys("$[]", "closePosition", "time"),
    # The POST example (a trailing order) lacks actualOrderId, actualPrice and the tp/sl
    # fields that the GET example of the same object has; activatePrice/callbackRate are
    # trailing-only (as in the GET example of a TAKE_PROFIT order).
    "POST_v1_algoOrder": _keys(
        "$",
        "actualOrderId",
        "actualPrice",
        "activatePrice",
        "callbackRate",
        "tpTriggerPrice",
        "tpPrice",
        "slTriggerPrice",
        "slPrice",
        "tpOrderType",
    ),
    # futuresType, maxMoveOrderLimit, permissionSets and the MAX_NUM_ALGO_ORDERS filter are
    # newer than the example; OrderType became orderTypes (official SDK 8.0.0, 2026-03-09).
    "GET_v1_exchangeInfo": _keys("$", "futuresType")
    | _keys("$.symbols[]", "OrderType", "orderTypes", "maxMoveOrderLimit", "permissionSets")
    | {"$.symbols[].filters[MAX_NUM_ALGO_ORDERS]"},
    # nq (quantity without RPI trades): official SDK 11.0.0, newer than the example.
    "GET_v1_aggTrades": _keys("$[]", "nq"),
    # Order queries: trailing-only fields absent on other orders; cumQty as in new-order replies.
    "GET_v1_order": _keys("$", *_TRAILING_ONLY, "cumQty"),
    "GET_v1_openOrder": _keys("$", *_TRAILING_ONLY, "cumQty"),
    "GET_v1_openOrders": _keys("$[]", *_TRAILING_ONLY, "cumQty"),
    "GET_v1_allOrders": _keys("$[]", *_TRAILING_ONLY, "cumQty"),
    "DELETE_v1_order": _keys("$", *_TRAILING_ONLY, "avgPrice", "time"),
    "DELETE_v1_batchOrders": _keys("$[]", *_TRAILING_ONLY, "avgPrice", "time"),
    # The modify example carries COIN-M's cumBase and lacks cumQuote/time.
    "PUT_v1_order": _keys("$", "cumBase", "cumQuote", "time"),
    "PUT_v1_batchOrders": _keys("$[]", "cumBase", "cumQuote", "time"),
    # marginAsset: sent by the simulator on each trade (the margin asset is USDT);
    # not in the example.
    "GET_v1_userTrades": _keys("$[]", "marginAsset"),
    # notionalCoef "only appears when user's symbol bracket is adjusted".
    "GET_v1_leverageBracket": _keys("$[]", "notionalCoef"),
}


def fixture_name(method: str, path: str) -> str:
    return SAME_AS.get((method, path)) or method + path.replace("/fapi", "").replace("/", "_")


def example(name: str) -> Any:
    return json.loads((DOCS / f"{name}.json").read_text())["example"]


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(seed=5, funding_interval_ms=1000)


def test_every_endpoint_has_a_documented_example() -> None:
    names = {fixture_name(method, path) for method, path in ENDPOINTS}
    assert {n for n in names if not (DOCS / f"{n}.json").exists()} == set()
    for path in DOCS.glob("*.json"):
        assert json.loads(path.read_text())["source"].startswith("qiuham/crypto-api-docs")


async def test_every_reply_has_its_documented_shape(client: VenueClient) -> None:
    calls: list[tuple[str, str, dict[str, Any], bool]] = []
    checked: dict[tuple[str, str], list[str]] = {}

    async def call(method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        signed = ENDPOINTS[(method, path)].security.name not in ("NONE", "USER_STREAM")
        reply = await client.call(method, path, params or {}, signed=signed)
        assert reply.status == 200, (method, path, reply.body)
        name = fixture_name(method, path)
        tolerate = TOLERATED.get(name, frozenset())
        found = differences(reply.body, example(name), "$", tolerate)
        checked[(method, path)] = list(dict.fromkeys(checked.get((method, path), []) + found))
        calls.append((method, path, params or {}, signed))
        return reply.body

    btc = {"symbol": "BTCUSDT"}
    await call("POST", "/fapi/v1/leverage", btc | {"leverage": "10"})
    await call("POST", "/fapi/v1/marginType", {"symbol": "SOLUSDT", "marginType": "ISOLATED"})
    resting = await call("POST", "/fapi/v1/order", limit_order(newClientOrderId="shape-1"))
    await call(
        "POST", "/fapi/v1/order", btc | {"side": "BUY", "type": "MARKET", "quantity": "0.01"}
    )
    await call("POST", "/fapi/v1/order/test", limit_order())
    batch = [limit_order(price="48000.0"), limit_order(price="47000.0")]
    placed = await call("POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(batch)})
    algo = {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "quantity": "0.010", "triggerPrice": "45000",
    }  # fmt: skip
    algo_id = (await call("POST", "/fapi/v1/algoOrder", algo))["algoId"]
    await call("POST", "/fapi/v1/countdownCancelAll", btc | {"countdownTime": "0"})
    await call("POST", "/fapi/v1/listenKey")
    await asyncio.sleep(1.1)  # a funding settlement: fundingRate and FUNDING_FEE rows
    for path, params in (
        ("/fapi/v1/ping", {}),
        ("/fapi/v1/time", {}),
        ("/fapi/v1/exchangeInfo", {}),
        ("/fapi/v1/depth", btc | {"limit": "5"}),
        ("/fapi/v1/ticker/24hr", btc),
        ("/fapi/v1/ticker/bookTicker", btc),
        ("/fapi/v1/ticker/price", btc),
        ("/fapi/v2/ticker/price", btc),
        ("/fapi/v1/premiumIndex", btc),
        ("/fapi/v1/klines", btc | {"interval": "1m"}),
        ("/fapi/v1/markPriceKlines", btc | {"interval": "1m"}),
        ("/fapi/v1/indexPriceKlines", {"pair": "BTCUSDT", "interval": "1m"}),
        ("/fapi/v1/aggTrades", btc),
        ("/fapi/v1/trades", btc),
        ("/fapi/v1/fundingRate", btc),
        ("/fapi/v1/fundingInfo", {}),
        ("/fapi/v1/openInterest", btc),
        ("/fapi/v1/order", btc | {"orderId": resting["orderId"]}),
        ("/fapi/v1/openOrder", btc | {"orderId": resting["orderId"]}),
        ("/fapi/v1/openOrders", btc),
        ("/fapi/v1/allOrders", btc),
        ("/fapi/v1/userTrades", btc),
        ("/fapi/v1/algoOrder", {"algoId": algo_id}),
        ("/fapi/v1/openAlgoOrders", btc),
        ("/fapi/v1/allAlgoOrders", btc),
        ("/fapi/v1/account", {}),
        ("/fapi/v2/account", {}),
        ("/fapi/v3/account", {}),
        ("/fapi/v1/balance", {}),
        ("/fapi/v2/balance", {}),
        ("/fapi/v3/balance", {}),
        ("/fapi/v1/positionRisk", btc),
        ("/fapi/v2/positionRisk", btc),
        ("/fapi/v3/positionRisk", btc),
        ("/fapi/v1/leverageBracket", btc),
        ("/fapi/v2/leverageBracket", btc),
        ("/fapi/v1/positionSide/dual", {}),
        ("/fapi/v1/multiAssetsMargin", {}),
        ("/fapi/v1/rateLimit/order", {}),
        ("/fapi/v1/symbolConfig", btc),
        ("/fapi/v1/accountConfig", {}),
        ("/fapi/v1/commissionRate", btc),
        ("/fapi/v1/income", {}),
    ):
        await call("GET", path, params)
    modify = btc | {
        "orderId": resting["orderId"],
        "side": "BUY",
        "quantity": "0.02",
        "price": "49100.0",
    }
    await call("PUT", "/fapi/v1/order", modify)
    again = [{"orderId": placed[0]["orderId"], "symbol": "BTCUSDT", "side": "BUY",
              "quantity": "0.02", "price": "48100.0"}]  # fmt: skip
    await call("PUT", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(again)})
    await call("PUT", "/fapi/v1/listenKey")
    await call("DELETE", "/fapi/v1/order", btc | {"orderId": resting["orderId"]})
    ids = json.dumps([placed[1]["orderId"]])
    await call("DELETE", "/fapi/v1/batchOrders", btc | {"orderIdList": ids})
    await call("DELETE", "/fapi/v1/allOpenOrders", btc)
    await call("DELETE", "/fapi/v1/algoOrder", {"algoId": algo_id})
    await call("POST", "/fapi/v1/algoOrder", algo)
    await call("DELETE", "/fapi/v1/algoOpenOrders", btc)
    await call("DELETE", "/fapi/v1/listenKey")
    close = btc | {"side": "SELL", "type": "MARKET", "quantity": "0.01", "reduceOnly": "true"}
    await call("POST", "/fapi/v1/order", close)
    await call("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})

    assert set(checked) == set(ENDPOINTS), set(ENDPOINTS) - set(checked)
    problems = {f"{m} {p}": found for (m, p), found in checked.items() if found}
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


STREAM_EXAMPLES = {
    "btcusdt@bookTicker": "STREAM_bookTicker",
    "btcusdt@depth5@100ms": "STREAM_depthN",
    "btcusdt@depth@100ms": "STREAM_depthN",  # diff depth: the same envelope (its own page)
    "btcusdt@aggTrade": "STREAM_aggTrade",
    "btcusdt@markPrice@1s": "STREAM_markPrice",
    "!markPrice@arr@1s": "STREAM_markPrice_arr",
    "btcusdt@kline_1m": "STREAM_kline",
}


async def test_every_stream_payload_has_its_documented_shape(
    client: VenueClient, sim: SimServer
) -> None:
    public = "btcusdt@bookTicker/btcusdt@depth5@100ms/btcusdt@depth@100ms"
    market = "btcusdt@aggTrade/btcusdt@markPrice@1s/!markPrice@arr@1s/btcusdt@kline_1m"
    seen: dict[str, Any] = {}
    async with (
        client.session.ws_connect(f"{sim.ws_url}/public/stream?streams={public}") as book,
        client.session.ws_connect(f"{sim.ws_url}/market/stream?streams={market}") as rest,
    ):
        await client.control("POST", "/_sim/price", {"symbol": "BTCUSDT", "price": "50100"})
        for ws, streams in ((book, public), (rest, market)):
            while not set(streams.split("/")) <= set(seen):
                message = json.loads((await ws.receive(timeout=3.0)).data)
                seen.setdefault(message["stream"], message["data"])
    problems = {
        stream: differences(seen[stream], example(name)) for stream, name in STREAM_EXAMPLES.items()
    }
    assert {k: v for k, v in problems.items() if v} == {}


EVENT_TOLERATED: dict[str, frozenset[str]] = {
    # The example is a trailing-stop order: AP (activation price) and cr (callback rate)
    # come with TRAILING_STOP_MARKET orders only.
    "EVENT_ORDER_TRADE_UPDATE": _keys("$.o", "AP", "cr"),
    # The example prints E as a string, unlike every other event (unconfirmed which the
    # live venue sends); the simulator sends an integer like the other events.
    "EVENT_listenKeyExpired": frozenset({"$.E"}),
    # ALGO_UPDATE.o.ia: official SDK 17.0.1 (2026-08-11), newer than the example.
    "EVENT_ALGO_UPDATE": _keys("$.o", "ia"),
}


async def test_every_user_stream_event_has_its_documented_shape(
    client: VenueClient, sim: SimServer
) -> None:
    key = (await client.call("POST", "/fapi/v1/listenKey")).body["listenKey"]
    seen: dict[str, Any] = {}
    async with client.session.ws_connect(f"{sim.ws_url}/private/ws?listenKey={key}") as ws:
        btc = {"symbol": "BTCUSDT"}
        await client.call("POST", "/fapi/v1/leverage", btc | {"leverage": "9"}, signed=True)
        market = btc | {"side": "BUY", "type": "MARKET", "quantity": "0.010"}
        await client.call("POST", "/fapi/v1/order", market, signed=True)
        algo = btc | {"algoType": "CONDITIONAL", "side": "SELL", "type": "STOP_MARKET",
                      "quantity": "0.010", "triggerPrice": "45000"}  # fmt: skip
        await client.call("POST", "/fapi/v1/algoOrder", algo, signed=True)
        await client.control("POST", "/_sim/faults", {"kind": "listen_key_expiry", "count": 1})
        while "listenKeyExpired" not in seen:
            event = json.loads((await ws.receive(timeout=3.0)).data)
            seen.setdefault(event["e"], event)
    problems = {}
    for kind, event in seen.items():
        name = f"EVENT_{kind}"
        tolerate = EVENT_TOLERATED.get(name, frozenset())
        problems[kind] = differences(event, example(name), "$", tolerate)
    assert set(seen) == {
        "ACCOUNT_CONFIG_UPDATE", "ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE",
        "ALGO_UPDATE", "listenKeyExpired",
    }  # fmt: skip
    assert {k: v for k, v in problems.items() if v} == {}
