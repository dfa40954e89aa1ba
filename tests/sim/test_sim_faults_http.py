"""Each fault kind through the real HTTP server and the control API."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from oexec.sim.app import SERVICE_TIME_HEADER, SimServer
from oexec.sim.config import FaultConfig, SimConfig

from .helpers import VenueClient, limit_order


async def add_fault(client: VenueClient, **rule: Any) -> None:
    await client.control("POST", "/_sim/faults", {"probability": 1.0} | rule)


async def ground_truth(client: VenueClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await client.control("GET", "/_sim/orders")
    return result


async def test_latency_is_applied_and_excluded_from_service_time(client: VenueClient) -> None:
    await add_fault(client, kind="latency", path="/fapi/v1/ping", params={"ms": 150})
    began = time.perf_counter()
    reply = await client.call("GET", "/fapi/v1/ping")
    assert time.perf_counter() - began >= 0.15
    assert int(reply.headers[SERVICE_TIME_HEADER]) < 150_000
    began = time.perf_counter()
    await client.call("GET", "/fapi/v1/time")  # path filter: not delayed
    assert time.perf_counter() - began < 0.15


async def test_error_5xx_does_not_process(client: VenueClient) -> None:
    await add_fault(client, kind="error_5xx", count=1, path="/fapi/v1/order")
    reply = await client.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    assert reply.status == 503 and reply.code is not None
    assert await ground_truth(client) == []
    reply = await client.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    assert reply.status == 200  # count exhausted
    assert len(await ground_truth(client)) == 1


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [({}, 503, -1000), ({"reply": "-1007"}, 408, -1007)],
)
async def test_timeout_after_accept_places_the_order(
    client: VenueClient, params: dict[str, str], status: int, code: int
) -> None:
    await add_fault(client, kind="timeout_after_accept", count=1, params=params)
    reply = await client.call(
        "POST", "/fapi/v1/order", limit_order(newClientOrderId="unk-1"), signed=True
    )
    assert (reply.status, reply.code) == (status, code)
    truth = await ground_truth(client)
    assert [o["clientOrderId"] for o in truth] == ["unk-1"]
    found = await client.call(
        "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "unk-1"}, signed=True
    )
    assert found.status == 200 and found.body["status"] == "NEW"


async def test_reset_after_accept_drops_connection_but_places(client: VenueClient) -> None:
    await add_fault(client, kind="reset_after_accept", count=1, path="/fapi/v1/order")
    with pytest.raises(aiohttp.ClientError):
        await client.call(
            "POST", "/fapi/v1/order", limit_order(newClientOrderId="rst-1"), signed=True
        )
    assert [o["clientOrderId"] for o in await ground_truth(client)] == ["rst-1"]
    stats = await client.control("GET", "/_sim/stats")
    assert stats["connections_reset"] == 1
    assert (await client.call("GET", "/fapi/v1/ping")).status == 200  # server still fine


async def test_clock_skew_shifts_server_time_and_timestamp_check(client: VenueClient) -> None:
    await add_fault(client, kind="clock_skew", params={"offset_ms": 120_000})
    server = (await client.call("GET", "/fapi/v1/time")).body["serverTime"]
    assert server - time.time() * 1000 > 100_000
    reply = await client.call("GET", "/fapi/v2/account", signed=True)
    assert reply.code == -1021
    await client.control("DELETE", "/_sim/faults")
    assert (await client.call("GET", "/fapi/v2/account", signed=True)).status == 200


async def test_read_after_write_lag(client: VenueClient) -> None:
    await add_fault(client, kind="read_after_write_lag", count=1, params={"ms": 300})
    placed = await client.call(
        "POST", "/fapi/v1/order", limit_order(newClientOrderId="lag-1"), signed=True
    )
    query = {"symbol": "BTCUSDT", "orderId": placed.body["orderId"]}
    early = await client.call("GET", "/fapi/v1/order", query, signed=True)
    assert (early.status, early.code) == (400, -2013)
    early = await client.call(
        "GET",
        "/fapi/v1/openOrder",
        {"symbol": "BTCUSDT", "origClientOrderId": "lag-1"},
        signed=True,
    )
    assert early.code == -2013
    import asyncio

    await asyncio.sleep(0.35)
    late = await client.call("GET", "/fapi/v1/order", query, signed=True)
    assert late.status == 200


async def test_control_fault_errors_and_listing(client: VenueClient) -> None:
    async with client.session.post(
        f"{client.base_url}/_sim/faults", json={"kind": "bogus", "probability": 1}
    ) as resp:
        assert resp.status == 400 and "bogus" in (await resp.json())["error"]
    await add_fault(client, kind="stream_drop", count=2)
    listing = await client.control("GET", "/_sim/faults")
    assert listing["faults"][0]["kind"] == "stream_drop"
    assert listing["faults"][0]["remaining"] == 2
    assert listing["faults"][0]["chances"] == 0 and listing["faults"][0]["every_n"] is None
    await client.control("DELETE", "/_sim/faults")
    assert (await client.control("GET", "/_sim/faults"))["faults"] == []


async def test_faults_from_config_are_deterministic_under_seed() -> None:
    rule = FaultConfig(kind="error_5xx", probability=0.5, path="/fapi/v1/ping")

    async def statuses(seed: int) -> list[int]:
        async with SimServer(SimConfig(seed=seed, faults=(rule,))) as sim:
            async with aiohttp.ClientSession() as session:
                result = []
                for _ in range(30):
                    async with session.get(f"{sim.base_url}/fapi/v1/ping") as resp:
                        result.append(resp.status)
                return result

    first, again, other = await statuses(5), await statuses(5), await statuses(6)
    assert first == again and first != other
    assert {200, 503} == set(first)
