"""Order entry over the WebSocket API (order_transport = "ws") against the simulator:
which transport each request took, unknown outcomes on a lost connection, REST while it
is down, the shared gate and its rateLimits feedback, Ed25519 logon, rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from oexec.config import VenueConfig
from oexec.errors import (
    VenueClockSkewError,
    VenueRateLimitError,
    VenueRejectedError,
    VenueUnknownOutcomeError,
)
from oexec.models import OrderTerms, OrderType, Side, TimeInForce, VenueOrderStatus
from oexec.service.ports import VenueOrderRequest
from oexec.sim.app import SimServer
from oexec.sim.config import AccountConfig, FaultConfig, SimConfig
from oexec.venue.binance import BinanceUsdmVenue, ws_transport
from oexec.venue.binance.ws_frames import (
    rate_limit_usage,
    retry_after_headers,
    signing_payload,
    ws_api_url_for,
)

from ..ports import free_port
from .conftest import RecordingGate

ED = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WS_PLACE = "/ws-fapi/v1 order.place"


def order(cid: str, qty: str = "0.01", price: str = "49000") -> VenueOrderRequest:
    terms = OrderTerms(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal(qty),
        price=Decimal(price),
        time_in_force=TimeInForce.GTC,
    )
    return VenueOrderRequest(client_order_id=cid, terms=terms)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    pem = ED.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    accounts = (
        AccountConfig(key="hm-key", secret="hm-secret", name="hm"),
        AccountConfig(key="ed-key", ed25519_public_key=pem.decode(), name="ed"),
    )
    async with SimServer(SimConfig(seed=5, accounts=accounts)) as server:
        yield server


VenueFactory = Callable[..., Any]


@pytest.fixture
async def open_venue(sim: SimServer) -> AsyncIterator[VenueFactory]:
    venues: list[BinanceUsdmVenue] = []

    async def factory(**changes: Any) -> BinanceUsdmVenue:
        base = VenueConfig(
            base_url=sim.base_url,
            api_key="hm-key",
            api_secret="hm-secret",
            time_sync_interval_s=0,
            order_transport="ws",
            timeout_s=2.0,
        )
        gate = changes.pop("gate", None)
        venue = BinanceUsdmVenue(attrs.evolve(base, **changes), gate=gate)
        await venue.start()
        venues.append(venue)
        return venue

    yield factory
    for venue in venues:
        await venue.close()


def paths(sim: SimServer) -> dict[str, int]:
    return dict(sim.state.stats.requests_by_path)


def test_url_derivation_and_payload_helpers() -> None:
    assert ws_api_url_for("https://fapi.binance.com") == "wss://ws-fapi.binance.com/ws-fapi/v1"
    assert ws_api_url_for("http://127.0.0.1:8765") == "ws://127.0.0.1:8765/ws-fapi/v1"
    assert signing_payload({"b": "2", "a": "1", "signature": "x"}) == b"a=1&b=2"
    rows = [
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "count": 3},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "count": 9},
    ]
    assert rate_limit_usage(rows) == (9, 3, None)
    assert retry_after_headers({"data": {"retryAfter": 12_500}}, 10_000) == {"Retry-After": "3"}
    assert retry_after_headers({"code": -1015}, 10_000) == {}


async def test_submit_modify_cancel_go_over_the_websocket_api(
    open_venue: VenueFactory, sim: SimServer
) -> None:
    gate = RecordingGate()
    venue = await open_venue(gate=gate)
    assert venue.ws_api is not None and venue.ws_api.state == "connected"
    placed = await venue.place_order(order("ws-a-1"))
    assert placed.status is VenueOrderStatus.NEW
    modified = await venue.modify_order(
        "BTCUSDT", Side.BUY, Decimal("0.02"), Decimal("49100"), client_order_id="ws-a-1"
    )
    assert modified.price == Decimal("49100")
    cancelled = await venue.cancel_order("BTCUSDT", client_order_id="ws-a-1")
    assert cancelled.status is VenueOrderStatus.CANCELED
    seen = paths(sim)
    assert seen[WS_PLACE] == 1 and seen["/ws-fapi/v1 order.modify"] == 1
    assert seen["/ws-fapi/v1 order.cancel"] == 1 and "/fapi/v1/order" not in seen
    # the same gate, the REST twins' costs, corrected from each reply's rateLimits
    assert gate.acquired[-3:] == [(0, 1, 2.0), (0, 1, 2.0), (1, 0, 2.0)]
    assert gate.observed[-3][1] == 1 and gate.observed[-2][1] == 2  # ORDERS 10 s count
    assert venue.ws_api.logged_on is False  # HMAC: every request signed


async def test_ed25519_key_logs_on_once(open_venue: VenueFactory, sim: SimServer) -> None:
    pem = ED.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    venue = await open_venue(api_key="ed-key", api_secret=pem, key_type="ed25519")
    assert venue.ws_api is not None and venue.ws_api.logged_on
    await venue.place_order(order("ed-1"))
    await venue.cancel_order("BTCUSDT", client_order_id="ed-1")
    assert paths(sim)["/ws-fapi/v1 session.logon"] == 1


async def test_rejection_and_rate_limit_are_typed_like_rest(
    open_venue: VenueFactory, sim: SimServer
) -> None:
    gate = RecordingGate()
    venue = await open_venue(gate=gate)
    with pytest.raises(VenueRejectedError) as rejected:
        await venue.place_order(order("small", qty="0.001"))
    assert rejected.value.venue_code == -4164
    sim.state.limiter.reconfigure(attrs.evolve(sim.state.limiter.config, orders_per_10s=1))
    with pytest.raises(VenueRateLimitError) as limited:
        await venue.place_order(order("over"))
    assert limited.value.venue_code == -1015 and gate.paused and gate.paused[-1] >= 1


async def test_lost_connection_makes_the_submit_unknown_then_rest_then_ws_again(
    open_venue: VenueFactory, sim: SimServer
) -> None:
    venue = await open_venue()
    ws_api = venue.ws_api
    assert ws_api is not None
    sim.state.faults.add(fault("reset_after_accept", count=1))
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(order("lost-1"))
    truth = {o["clientOrderId"] for o in sim.exchange.ground_truth()}
    assert "lost-1" in truth  # accepted: resolved by client id, never resent
    await venue.place_order(order("rest-1"))  # the connection is not back yet: REST
    assert paths(sim).get("/fapi/v1/order") == 1 and ws_api.fallbacks == 1
    await wait_for(lambda: ws_api.ready, 5)
    await venue.place_order(order("ws-again"))
    assert paths(sim)[WS_PLACE] == 2 and ws_api.reconnects == 1


async def test_no_reply_within_the_timeout_is_unknown(
    open_venue: VenueFactory, sim: SimServer
) -> None:
    venue = await open_venue(timeout_s=0.2)
    sim.state.faults.add(fault("latency", count=1, params={"ms": 600}))
    with pytest.raises(VenueUnknownOutcomeError):
        await venue.place_order(order("slow-1"))
    await asyncio.sleep(0.5)
    assert "slow-1" in {o["clientOrderId"] for o in sim.exchange.ground_truth()}


async def test_rotation_before_the_lifetime(open_venue: VenueFactory, sim: SimServer) -> None:
    venue = await open_venue(ws_api_rotate_s=0.2)
    ws_api = venue.ws_api
    assert ws_api is not None
    await wait_for(lambda: ws_api.reconnects >= 1 and ws_api.ready, 5)
    await venue.place_order(order("after-rotate"))
    assert paths(sim)[WS_PLACE] == 1


def fault(kind: str, **fields: Any) -> FaultConfig:
    return FaultConfig(kind=kind, path="/fapi/v1/order", **fields)


async def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_never_connected_orders_go_over_rest_and_health_says_why(
    open_venue: VenueFactory, sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"ws://127.0.0.1:{free_port()}/ws-fapi/v1"
    venue = await open_venue(ws_api_url=dead, connect_timeout_s=0.2)
    ws_api = venue.ws_api
    assert ws_api is not None and not ws_api.ready
    await ws_api.health_check()  # within the grace: REST carries the orders
    placed = await venue.place_order(order("rest-only"))
    assert placed.status is VenueOrderStatus.NEW and ws_api.fallbacks == 1
    assert paths(sim)["/fapi/v1/order"] == 1
    assert ws_api.describe()["order_transport"] == "rest"
    monkeypatch.setattr(ws_transport, "HEALTH_GRACE_S", 0.0)
    with pytest.raises(RuntimeError, match="orders go over REST"):
        await ws_api.health_check()


async def test_clock_skew_answer_resyncs_the_venue_clock(
    open_venue: VenueFactory, sim: SimServer
) -> None:
    venue = await open_venue()
    synced = venue.transport.last_sync_ms
    sim.state.faults.add(fault("clock_skew", count=1, params={"offset_ms": -60_000}))
    with pytest.raises(VenueClockSkewError):
        await venue.place_order(order("skewed"))
    await wait_for(lambda: venue.transport.last_sync_ms != synced, 5)
    assert "skewed" not in {o["clientOrderId"] for o in sim.exchange.ground_truth()}
