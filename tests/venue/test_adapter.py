"""BinanceUsdmVenue against a scripted local HTTP server: wire format, gate, retries, mapping."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import parse_qsl

import attrs
import pytest

from oexec.config import VenueConfig
from oexec.errors import (
    VenueClockSkewError,
    VenueOrderNotFoundError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUnknownOutcomeError,
)
from oexec.models import OrderTerms, OrderType, Side, TimeInForce, VenueOrderStatus
from oexec.service.ports import VenueOrderRequest
from oexec.venue.binance import BinanceUsdmVenue, ListenKeyExpiredError, VenueParseError
from tests.venue.conftest import API_KEY, SECRET, RecordingGate, ScriptedVenue, load

from ..ports import free_port

NOW_S = 1_700_000_000.0
SERVER_MS = 1_700_000_005_000  # server 5 s ahead of the local clock
V1 = "/fapi/v1"


@pytest.fixture
async def venue(
    config: VenueConfig, gate: RecordingGate, server: ScriptedVenue
) -> AsyncIterator[BinanceUsdmVenue]:
    cfg = attrs.evolve(config, base_url=server.url, timeout_s=0.5)
    v = BinanceUsdmVenue(cfg, gate=gate, clock=lambda: NOW_S)
    server.add("GET", f"{V1}/time", payload={"serverTime": SERVER_MS})
    await v.start()
    yield v
    await v.close()


REQ = VenueOrderRequest(
    client_order_id="oexec-abc123",
    terms=OrderTerms(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("43000.10"),
        time_in_force=TimeInForce.GTC,
    ),
)


async def test_start_measures_offset(venue: BinanceUsdmVenue) -> None:
    assert venue.time_offset_ms == 5000
    assert venue.now_ms() == SERVER_MS
    assert venue.name == "binance_usdm"


async def test_place_order_sends_signed_body(
    venue: BinanceUsdmVenue, gate: RecordingGate, server: ScriptedVenue
) -> None:
    m = server
    m.add(
        "POST",
        "/fapi/v1/order",
        payload=load("order_new_limit.json"),
        headers={
            "X-MBX-USED-WEIGHT-1M": "12",
            "X-MBX-ORDER-COUNT-10S": "3",
            "X-MBX-ORDER-COUNT-1M": "9",
        },
    )
    order = await venue.place_order(REQ, deadline_s=0.5)
    (call,) = m.calls("POST", "/fapi/v1/order")
    assert order.exchange_order_id == "22542179" and order.status is VenueOrderStatus.NEW
    body = call.body
    params = parse_qsl(body)
    names = [k for k, _ in params]
    assert names[-1] == "signature"
    values = dict(params)
    assert values["newClientOrderId"] == "oexec-abc123"
    assert values["newOrderRespType"] == "RESULT"
    assert values["quantity"] == "0.010" and values["price"] == "43000.10"
    assert values["timestamp"] == str(SERVER_MS) and values["recvWindow"] == "5000"
    assert "reduceOnly" not in values and "positionSide" not in values
    unsigned = body.rsplit("&signature=", 1)[0].encode()
    expected = hmac.new(SECRET.encode(), unsigned, hashlib.sha256).hexdigest()
    assert values["signature"] == expected
    assert call.headers["X-MBX-APIKEY"] == API_KEY
    assert gate.acquired[-1] == (0, 1, 0.5)
    assert gate.observed[-1] == (12, 3, 9)
    # Binance's counters are fixed windows of its clock: told how far into each they are
    ages = gate.ages[-1]
    assert ages is not None
    assert ages[("ORDERS", 10)] == pytest.approx((SERVER_MS % 10_000) / 1000, abs=1.0)
    assert ages[("REQUEST_WEIGHT", 60)] == pytest.approx((SERVER_MS % 60_000) / 1000, abs=1.0)


async def test_optional_order_fields(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    terms = attrs.evolve(
        REQ.terms,
        type=OrderType.TRAILING_STOP_MARKET,
        price=None,
        time_in_force=None,
        reduce_only=True,
        callback_rate=Decimal("0.5"),
        activation_price=Decimal("1E+4"),
        good_till_date=1700000600000,
    )
    m = server
    m.add("POST", "/fapi/v1/order", payload=load("order_new_limit.json"))
    await venue.place_order(attrs.evolve(REQ, terms=terms))
    (call,) = m.calls("POST", "/fapi/v1/order")
    values = dict(call.params())
    assert values["reduceOnly"] == "true" and values["callbackRate"] == "0.5"
    assert values["activationPrice"] == "10000"  # never an exponent
    assert values["goodTillDate"] == "1700000600000" and "price" not in values


async def test_submit_is_never_retried(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    m = server
    m.add("POST", "/fapi/v1/order", status=503, body="Unknown error, please check your request")
    m.add("POST", "/fapi/v1/order", payload=load("order_new_limit.json"))
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(REQ)
    assert len(m.calls("POST", "/fapi/v1/order")) == 1


async def test_submit_timeout_is_unknown_outcome(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("POST", "/fapi/v1/order", action="hang")
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(REQ)
    assert len(m.calls("POST", "/fapi/v1/order")) == 1


async def test_submit_unparseable_2xx_is_unknown_outcome(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("POST", "/fapi/v1/order", payload={"weird": True})
    with pytest.raises(VenueUnknownOutcomeError) as info:
        await venue.place_order(REQ)
    assert info.value.details["client_order_id"] == "oexec-abc123"
    m = server
    m.add("POST", "/fapi/v1/order", body="<html>ok</html>", status=200)
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(REQ)


async def test_submit_rejection_is_typed(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    m = server
    m.add("POST", "/fapi/v1/order", status=400, payload={"code": -4164, "msg": "notional"})
    with pytest.raises(VenueRejectedError) as info:
        await venue.place_order(REQ)
    assert info.value.venue_code == -4164 and info.value.details["venue_msg"] == "notional"


async def test_reads_are_retried_with_backoff(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("GET", "/fapi/v1/order", status=503, body="Service Unavailable.")
    m.add("GET", "/fapi/v1/order", action="hang")
    m.add("GET", "/fapi/v1/order", payload=load("order_market_filled.json"))
    order = await venue.query_order("BTCUSDT", client_order_id="oexec-mkt1")
    assert len(m.calls("GET", "/fapi/v1/order")) == 3
    assert order.status is VenueOrderStatus.FILLED


async def test_reads_give_up_after_configured_retries(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    for _ in range(3):
        m.add("GET", "/fapi/v1/openOrders", status=500, payload={"code": -1007, "msg": "t"})
    with pytest.raises(VenueUnknownOutcomeError) as info:
        await venue.open_orders("BTCUSDT")
    assert len(m.calls("GET", "/fapi/v1/openOrders")) == 3  # 1 + read_retries (2)
    assert info.value.details["after_unknown_attempt"] is True


async def test_cancel_retry_after_unknown_then_2011_is_flagged(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("DELETE", "/fapi/v1/order", action="hang")
    m.add("DELETE", "/fapi/v1/order", status=400, payload={"code": -2011, "msg": "Unknown order"})
    with pytest.raises(VenueOrderNotFoundError) as info:
        await venue.cancel_order("BTCUSDT", order_id="22542179")
    assert len(m.calls("DELETE", "/fapi/v1/order")) == 2
    assert info.value.details["after_unknown_attempt"] is True


async def test_cancel_not_found_plain(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    m = server
    m.add("DELETE", "/fapi/v1/order", status=400, payload={"code": -2011, "msg": "Unknown"})
    with pytest.raises(VenueOrderNotFoundError) as info:
        await venue.cancel_order("BTCUSDT", client_order_id="x")
    assert "after_unknown_attempt" not in info.value.details


async def test_clock_skew_resyncs_and_retries_reads_once(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    skew = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    m = server
    m.add("GET", "/fapi/v1/order", status=400, payload=skew)
    m.add("GET", "/fapi/v1/time", payload={"serverTime": SERVER_MS + 2000})
    m.add("GET", "/fapi/v1/order", payload=load("order_new_limit.json"))
    await venue.query_order("BTCUSDT", order_id="1")
    second = m.calls("GET", "/fapi/v1/order")[1]
    assert venue.time_offset_ms == 7000
    assert second is not None
    m = server
    m.add("GET", "/fapi/v1/order", status=400, payload=skew)
    m.add("GET", "/fapi/v1/time", payload={"serverTime": SERVER_MS})
    m.add("GET", "/fapi/v1/order", status=400, payload=skew)
    m.add("GET", "/fapi/v1/time", payload={"serverTime": SERVER_MS})
    with pytest.raises(VenueClockSkewError):
        await venue.query_order("BTCUSDT", order_id="1")
    assert len(m.calls("GET", "/fapi/v1/order")) == 2 + 2  # exactly one retry this time


async def test_clock_skew_on_submit_resyncs_but_never_resends(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("POST", "/fapi/v1/order", status=400, payload={"code": -1021, "msg": "x"})
    m.add("GET", "/fapi/v1/time", payload={"serverTime": SERVER_MS + 1000})
    with pytest.raises(VenueClockSkewError):
        await venue.place_order(REQ)
    assert len(m.calls("POST", "/fapi/v1/order")) == 1
    assert len(m.calls("GET", "/fapi/v1/time")) == 1 + 1  # start + one resync
    assert venue.time_offset_ms == 6000


async def test_rate_limit_pauses_gate(
    venue: BinanceUsdmVenue, gate: RecordingGate, server: ScriptedVenue
) -> None:
    m = server
    m.add(
        "GET",
        "/fapi/v1/openOrders",
        status=429,
        payload={"code": -1003, "msg": "Too many requests"},
        headers={"Retry-After": "3", "X-MBX-USED-WEIGHT-1M": "2400"},
    )
    with pytest.raises(VenueRateLimitError) as info:
        await venue.open_orders()
    assert len(m.calls("GET", "/fapi/v1/openOrders")) == 1  # not retried
    assert info.value.retry_after_s == 3.0
    assert gate.paused == [3.0]
    assert gate.observed[-1] == (2400, None, None)
    assert gate.acquired[-1][:2] == (40, 0)  # all-symbols openOrders weighs 40


async def test_connection_refused_is_unavailable(config: VenueConfig) -> None:
    port = free_port()
    dead = attrs.evolve(config, base_url=f"http://127.0.0.1:{port}", read_retries=0)
    venue = BinanceUsdmVenue(dead)
    with pytest.raises(VenueUnavailableError):
        await venue.start()
    with pytest.raises(VenueUnavailableError):
        await venue.place_order(REQ)
    await venue.close()


async def test_market_data(
    venue: BinanceUsdmVenue, gate: RecordingGate, server: ScriptedVenue
) -> None:
    m = server
    m.add("GET", "/fapi/v1/exchangeInfo", payload=load("exchange_info.json"))
    m.add("GET", "/fapi/v1/premiumIndex", payload={"symbol": "BTCUSDT", "markPrice": "43000.12"})
    m.add("GET", "/fapi/v1/ticker/price", payload={"symbol": "BTCUSDT", "price": "43000.1"})
    m.add("GET", "/fapi/v1/ticker/price", payload=[])
    info = await venue.exchange_info()
    assert await venue.mark_price("BTCUSDT") == Decimal("43000.12")
    assert await venue.ticker_price("BTCUSDT") == Decimal("43000.1")
    with pytest.raises(VenueParseError):
        await venue.ticker_price("BTCUSDT")
    (call,) = m.calls("GET", "/fapi/v1/exchangeInfo")
    assert "X-MBX-APIKEY" not in call.headers
    assert info.symbols["BTCUSDT"].tick_size == Decimal("0.10")


async def test_reads(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    m = server
    m.add("GET", "/fapi/v1/openOrders", payload=[load("order_new_limit.json")])
    m.add("GET", "/fapi/v1/userTrades", payload=load("user_trades.json"))
    orders = await venue.open_orders("BTCUSDT")
    trades = await venue.user_trades("BTCUSDT", order_id="22542180", limit=50)
    (call,) = m.calls("GET", "/fapi/v1/userTrades")
    assert [o.client_order_id for o in orders] == ["oexec-abc123"]
    assert len(trades) == 2
    values = call.params()
    assert values["orderId"] == "22542180" and values["limit"] == "50"
    assert call.body == ""


async def test_order_lookup_needs_an_id(venue: BinanceUsdmVenue) -> None:
    with pytest.raises(VenueRejectedError):
        await venue.query_order("BTCUSDT")


async def test_modify_order(
    venue: BinanceUsdmVenue, gate: RecordingGate, server: ScriptedVenue
) -> None:
    m = server
    m.add("PUT", "/fapi/v1/order", payload=load("order_new_limit.json"))
    m.add("PUT", "/fapi/v1/order", action="hang")
    order = await venue.modify_order(
        "BTCUSDT", Side.BUY, Decimal("0.020"), Decimal("42000.0"), client_order_id="c1"
    )
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.modify_order(
            "BTCUSDT", Side.BUY, Decimal("0.020"), Decimal("42000.0"), order_id="1"
        )
    first, second = m.calls("PUT", "/fapi/v1/order")
    values = dict(first.params())
    assert values["origClientOrderId"] == "c1" and values["quantity"] == "0.020"
    assert values["price"] == "42000.0" and values["side"] == "BUY"
    assert dict(second.params())["orderId"] == "1"
    assert order.exchange_order_id == "22542179"
    assert gate.acquired[-1][:2] == (0, 1)


async def test_batch_place(
    venue: BinanceUsdmVenue, gate: RecordingGate, server: ScriptedVenue
) -> None:
    second = attrs.evolve(REQ, client_order_id="oexec-2")
    answer = [load("order_new_limit.json"), {"code": -2022, "msg": "ReduceOnly rejected"}]
    m = server
    m.add("POST", "/fapi/v1/batchOrders", payload=answer)
    results = await venue.batch_place([REQ, second])
    (call,) = m.calls("POST", "/fapi/v1/batchOrders")
    assert results[0].exchange_order_id == "22542179"  # type: ignore[union-attr]
    assert isinstance(results[1], VenueRejectedError) and results[1].venue_code == -2022
    batch = dict(call.params())["batchOrders"]
    assert batch.startswith('[{"symbol":"BTCUSDT"') and '"newClientOrderId":"oexec-2"' in batch
    assert gate.acquired[-1][:2] == (5, 5)
    with pytest.raises(VenueRejectedError):
        await venue.batch_place([REQ] * 6)


async def test_batch_place_mismatched_or_unreadable_answer(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    m = server
    m.add("POST", "/fapi/v1/batchOrders", payload=[])
    m.add("POST", "/fapi/v1/batchOrders", payload=[{"orderId": 1}])
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.batch_place([REQ])
    (result,) = await venue.batch_place([REQ])
    assert isinstance(result, VenueUnknownOutcomeError)


async def test_batch_cancel_and_cancel_all(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    answer = [load("order_new_limit.json"), {"code": -2011, "msg": "Unknown order sent."}]
    m = server
    m.add("DELETE", "/fapi/v1/batchOrders", payload=answer)
    m.add("DELETE", "/fapi/v1/batchOrders", payload=[])
    m.add("DELETE", "/fapi/v1/batchOrders", payload={})
    m.add("DELETE", "/fapi/v1/allOpenOrders", payload={"code": 200, "msg": "done"})
    m.add("POST", "/fapi/v1/countdownCancelAll", payload={"symbol": "BTCUSDT"})
    results = await venue.batch_cancel("BTCUSDT", client_order_ids=["a", "b"])
    await venue.batch_cancel("BTCUSDT", order_ids=["1", "2"])
    with pytest.raises(VenueParseError):
        await venue.batch_cancel("BTCUSDT", order_ids=["1"])
    await venue.cancel_all("BTCUSDT")
    await venue.countdown_cancel_all("BTCUSDT", 120000)
    addresses = [c.query for c in m.calls("DELETE", "/fapi/v1/batchOrders")]
    (countdown,) = m.calls("POST", "/fapi/v1/countdownCancelAll")
    assert isinstance(results[1], VenueOrderNotFoundError)
    assert any("origClientOrderIdList=%5B%22a%22%2C%22b%22%5D" in a for a in addresses)
    assert any("orderIdList=%5B1%2C2%5D" in a for a in addresses)
    assert dict(countdown.params())["countdownTime"] == "120000"
    with pytest.raises(VenueRejectedError):
        await venue.batch_cancel("BTCUSDT", order_ids=[str(i) for i in range(11)])
    with pytest.raises(VenueRejectedError):
        await venue.batch_cancel("BTCUSDT", order_ids=["1"], client_order_ids=["a"])


async def test_listen_key_calls(venue: BinanceUsdmVenue, server: ScriptedVenue) -> None:
    m = server
    m.add("POST", "/fapi/v1/listenKey", payload={"listenKey": "k1"})
    m.add("PUT", "/fapi/v1/listenKey", payload={})
    m.add("PUT", "/fapi/v1/listenKey", status=400, payload={"code": -1125, "msg": "gone"})
    m.add("DELETE", "/fapi/v1/listenKey", payload={})
    assert await venue.create_listen_key() == "k1"
    await venue.keepalive_listen_key()
    with pytest.raises(ListenKeyExpiredError):
        await venue.keepalive_listen_key()
    await venue.close_listen_key()
    (create,) = m.calls("POST", "/fapi/v1/listenKey")
    assert create.headers["X-MBX-APIKEY"] == API_KEY
    assert create.body == ""  # USER_STREAM: no signature


async def test_session_requires_start(config: VenueConfig) -> None:
    venue = BinanceUsdmVenue(config)
    with pytest.raises(VenueUnavailableError):
        _ = venue.session


async def test_reset_after_send_is_unknown_for_submit_and_retried_for_reads(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    server.add("POST", "/fapi/v1/order", action="reset")
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(REQ)
    assert len(server.calls("POST", "/fapi/v1/order")) == 1
    server.add("GET", "/fapi/v1/order", action="reset")
    server.add("GET", "/fapi/v1/order", payload=load("order_new_limit.json"))
    assert (await venue.query_order("BTCUSDT", order_id="1")).exchange_order_id == "22542179"


async def test_every_signed_request_verifies_server_side(
    venue: BinanceUsdmVenue, server: ScriptedVenue
) -> None:
    server.add("GET", "/fapi/v1/openOrders", payload=[])
    server.add("DELETE", "/fapi/v1/order", payload=load("order_new_limit.json"))
    await venue.open_orders("BTCUSDT")
    await venue.cancel_order("BTCUSDT", client_order_id="a:b/c")
    for call in server.calls("GET", "/fapi/v1/openOrders") + server.calls(
        "DELETE", "/fapi/v1/order"
    ):
        mac = hmac.new(SECRET.encode(), call.signed_part().encode(), hashlib.sha256)
        assert call.params()["signature"] == mac.hexdigest()
    assert server.calls("DELETE", "/fapi/v1/order")[0].params()["origClientOrderId"] == "a:b/c"
