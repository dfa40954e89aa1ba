"""Third-party client over the WebSocket API: Binance's own USDⓈ-M futures SDK
(binance-sdk-derivatives-trading-usds-futures), unmodified, its WebSocket API URL pointed
at the simulator. HMAC per request, and an Ed25519 session.logon."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from binance_common.configuration import ConfigurationWebSocketAPI
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)
from binance_sdk_derivatives_trading_usds_futures.websocket_api.models import (
    ModifyOrderSideEnum,
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from oexec.sim.app import SimServer
from oexec.sim.config import AccountConfig, SimConfig

from .test_wsapi import ed_account

# The SDK passes a float timeout to aiohttp's ws_connect, which aiohttp deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:binance_common.*")
BUY, LIMIT, GTC = NewOrderSideEnum.BUY.value, NewOrderTypeEnum.LIMIT.value, "GTC"


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    _, ed = ed_account()
    hmac_account = AccountConfig(key="sdk-key", secret="sdk-secret", name="sdk")
    async with SimServer(SimConfig(seed=13, accounts=(hmac_account, ed))) as server:
        yield server


async def connect(config: ConfigurationWebSocketAPI) -> Any:
    client = DerivativesTradingUsdsFutures(config_ws_api=config)
    return await client.websocket_api.create_connection()


async def place(connection: Any, cid: str, qty: float = 0.01, price: float = 49000) -> Any:
    return await connection.new_order(
        symbol="BTCUSDT",
        side=NewOrderSideEnum[BUY],
        type=NewOrderTypeEnum[LIMIT],
        time_in_force=NewOrderTimeInForceEnum[GTC],
        quantity=qty,
        price=price,
        new_client_order_id=cid,
    )


async def test_sdk_place_query_modify_cancel_reject_and_rate_limit(sim: SimServer) -> None:
    config = ConfigurationWebSocketAPI(
        api_key="sdk-key", api_secret="sdk-secret", stream_url=sim.ws_api_url, timeout=3000
    )
    connection = await connect(config)
    try:
        placed = await place(connection, "sdk-1")
        order = placed.data().result
        assert order.client_order_id == "sdk-1" and order.status == "NEW"
        assert {r.rateLimitType for r in placed.rate_limits} == {"ORDERS", "REQUEST_WEIGHT"}

        queried = (await connection.query_order(symbol="BTCUSDT", order_id=order.order_id)).data()
        assert queried.result.order_id == order.order_id

        modified = await connection.modify_order(
            symbol="BTCUSDT",
            side=ModifyOrderSideEnum.BUY,
            quantity=0.02,
            price=49100,
            order_id=order.order_id,
        )
        assert Decimal(modified.data().result.price) == 49100

        cancelled = await connection.cancel_order(symbol="BTCUSDT", order_id=order.order_id)
        assert cancelled.data().result.status == "CANCELED"

        rejected = (await place(connection, "sdk-2", qty=0.001)).data()  # 49 USDT < 100
        assert rejected["error"]["code"] == -4164

        limiter = sim.state.limiter
        limiter.reconfigure(attrs.evolve(limiter.config, orders_per_10s=limiter_used(sim) + 1))
        assert (await place(connection, "sdk-3")).data().result.client_order_id == "sdk-3"
        limited = (await place(connection, "sdk-4")).data()
        assert limited["error"]["code"] == -1015
    finally:
        await connection.close_connection(close_session=True)
    truth = {o["clientOrderId"]: o["status"] for o in sim.exchange.ground_truth()}
    assert truth == {"sdk-1": "CANCELED", "sdk-3": "NEW"}
    assert sim.state.stats.responses_by_status["429"] == 1


def limiter_used(sim: SimServer) -> int:
    usage = sim.state.limiter.usage("127.0.0.1", "sdk", sim.state.now_ms())
    assert usage.orders_10s is not None
    return usage.orders_10s


async def test_sdk_ed25519_session_logon(sim: SimServer) -> None:
    private, _ = ed_account()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    config = ConfigurationWebSocketAPI(
        api_key="ed-key", private_key=pem, stream_url=sim.ws_api_url, timeout=3000
    )
    connection = await connect(config)
    try:
        logon = await connection.send_signed_message(
            {"method": "session.logon", "params": {}},
            signer=connection.signer,
            session_logon=True,
        )
        assert logon.data()["result"]["apiKey"] == "ed-key"
        placed = await place(connection, "sdk-ed-1")  # unsigned now: the session's key
        assert placed.data().result.client_order_id == "sdk-ed-1"
    finally:
        await connection.close_connection(close_session=True)
    assert sim.state.stats.requests_by_path["/ws-fapi/v1 session.logon"] == 1


async def test_sdk_account_market_and_listen_key_methods_validate(sim: SimServer) -> None:
    """The other methods: each reply passes the SDK's own response model."""
    config = ConfigurationWebSocketAPI(
        api_key="sdk-key", api_secret="sdk-secret", stream_url=sim.ws_api_url, timeout=3000
    )
    connection = await connect(config)
    try:
        account = (await connection.account_information()).data().result
        assert account.can_trade is True
        v2 = (await connection.account_information_v2()).data().result
        assert Decimal(v2.total_wallet_balance) > 0
        for balances in (
            await connection.futures_account_balance(),
            await connection.futures_account_balance_v2(),
        ):
            assert "USDT" in {row.asset for row in balances.data().result}
        legs = (await connection.position_information(symbol="BTCUSDT")).data().result
        assert [leg.symbol for leg in legs] == ["BTCUSDT"]
        assert (await connection.position_information_v2(symbol="BTCUSDT")).data().result == []
        book = (await connection.order_book(symbol="BTCUSDT", limit=5)).data().result
        assert len(book.additional_properties["bids"]) == 5  # the model types only the ids
        price = (await connection.symbol_price_ticker(symbol="BTCUSDT")).data()
        assert Decimal(price.actual_instance.result.price) > 0
        key = (await connection.start_user_data_stream()).data().result.listen_key
        kept = (await connection.keepalive_user_data_stream()).data().result.listen_key
        assert kept == key
        assert (await connection.close_user_data_stream()).data().result == {}
    finally:
        await connection.close_connection(close_session=True)
