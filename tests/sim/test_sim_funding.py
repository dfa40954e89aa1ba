"""Funding through the running simulator: settled on its own timer, pushed on the stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

from .helpers import VenueClient
from .test_sim_userstream import connect, listen_key, receive


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(seed=1, funding_interval_ms=1000)


async def test_funding_fee_arrives_as_account_update_and_income(
    client: VenueClient, sim: SimServer
) -> None:
    ws = await connect(client, sim, await listen_key(client))
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    assert (await client.call("POST", "/fapi/v1/order", order, signed=True)).status == 200
    deadline = asyncio.get_running_loop().time() + 4.0
    reasons = []
    while "FUNDING_FEE" not in reasons:
        event = await receive(ws, max(0.1, deadline - asyncio.get_running_loop().time()))
        if event["e"] == "ACCOUNT_UPDATE":
            reasons.append(event["a"]["m"])
    funding = await client.call(
        "GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE"}, signed=True
    )
    assert funding.status == 200 and funding.body
    assert all(Decimal(row["income"]) < 0 for row in funding.body)  # long pays at +0.01 %
    history = await client.call("GET", "/fapi/v1/fundingRate", {"symbol": "BTCUSDT"})
    assert history.body and all(row["fundingTime"] % 1000 == 0 for row in history.body)
    info = await client.call("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})
    assert info.body["nextFundingTime"] % 1000 == 0
    await ws.close()


async def test_funding_on_demand_through_the_control_api(client: VenueClient) -> None:
    order = {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.100"}
    assert (await client.call("POST", "/fapi/v1/order", order, signed=True)).status == 200
    rows = await client.control("POST", "/_sim/funding")
    assert {row["symbol"] for row in rows} >= {"ETHUSDT", "BTCUSDT"}
    eth = next(row for row in rows if row["symbol"] == "ETHUSDT")
    income = await client.call(
        "GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE", "symbol": "ETHUSDT"}, signed=True
    )
    expected = Decimal("0.100") * Decimal(eth["markPrice"]) * Decimal("0.0001")  # short earns
    assert [Decimal(row["income"]) for row in income.body][-1] == expected.quantize(
        Decimal("0.00000001")
    )
