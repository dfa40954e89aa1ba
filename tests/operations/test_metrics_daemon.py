"""Every metric family moves when its event happens, in a real daemon over the real sim.

Each step drives one kind of event through the daemon (orders over ZeroMQ, faults and
prices through the simulator's control API) while a poller reads ``/metrics`` every
100 ms, as Prometheus would. A family "moves" in a step when any scrape during the step
differs from the scrape before it (so gauges that rise and fall back, in-flight and
unknown-outcome counts, are seen too). The table must name every family of
oexec/ops/metric_families.py: a new family without an event here fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.config import BreakerConfig, FrontConfig, TrackingConfig
from oexec.models import OrderState
from oexec.ops.metric_families import FAMILIES

from ..e2e.conftest import DaemonFactory, SimControl, endpoint
from .scrape import Signature, fresh, metrics, moved, value

#: step -> families its events must move
EXPECTED: dict[str, set[str]] = {
    "start": {
        "rate_limit_limit",
        "circuit_breaker_state",
        "circuit_breaker_failures",
        "uptime_seconds",
        "user_stream_connected",
        "dependency_up",
    },
    "orders": {
        "orders_placed_total",
        "orders_filled_total",
        "orders_rejected_total",
        "order_submission_duration_seconds",
        "validation_failures_total",
        "exchange_api_requests_total",
        "exchange_api_request_duration_seconds",
        "cache_hits_total",
        "cache_misses_total",
        "requests_total",
        "request_duration_seconds",
        "pipeline_stage_duration_seconds",
        "store_operation_duration_seconds",
        "fills_total",
        "fill_notional_total",
        "fees_total",
        "open_orders",
        "event_sequence",
        "rate_limit_usage",
        "user_stream_lag_seconds",
    },
    "venue_error": {"exchange_api_errors_total"},
    "stream_gap": {
        "user_stream_reconnects_total",
        "tracking_recoveries_total",
        "tracking_corrections_total",
    },
    "burst": {"requests_in_flight", "requests_queued", "requests_busy_rejected_total"},
    "unknown": {"orders_unknown_outcome", "unknown_outcome_resolution_seconds"},
    "breaker": {"circuit_breaker_transitions_total"},
    "rate_limit": {"rate_limit_reached_total"},
}


def test_the_table_names_every_family() -> None:
    named = set().union(*EXPECTED.values())
    assert named == {f.name for f in FAMILIES}


@pytest.fixture
def store_kind() -> str:
    return "sqlite"  # the store does not change what is counted; one backend suffices


def limit(rid: str, price: str = "49000.0", **kw: Any) -> dict[str, Any]:
    return dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price=price,
        time_in_force="GTC",
        request_id=rid,
        **kw,
    )


def market(rid: str) -> dict[str, Any]:
    return dict(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010", request_id=rid)


class Poller:
    """Scrapes /metrics every 100 ms; ``step`` collects what moved during a block."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.last: dict[str, Signature] = {}
        self._moved: set[str] | None = None
        self._since: dict[str, Signature] = {}

    async def scrape(self) -> dict[str, Signature]:
        self.last = await metrics(self.http, self.base)
        if self._moved is not None:
            self._moved |= moved(self._since, self.last)
        return self.last

    async def run(self) -> None:
        while True:
            await self.scrape()
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def step(
        self, since: dict[str, Signature] | None = None, settle_s: float = 1.2
    ) -> AsyncIterator[set[str]]:
        self._since = since if since is not None else await metrics(self.http, self.base)
        self._moved = seen = set()
        yield seen
        await asyncio.sleep(settle_s)  # sampled gauges (1 s) catch up
        await self.scrape()
        self._moved = None

    async def until(self, check: Callable[[dict[str, Signature]], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s):
            while True:
                if check(await self.scrape()):
                    return
                await asyncio.sleep(0.1)


async def quietly(call: Awaitable[Any]) -> Any:
    with contextlib.suppress(ClientError):
        return await call
    return None


async def test_every_metric_moves_when_its_event_happens(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    before_start = fresh()
    daemon: Daemon = await make_daemon(
        front=FrontConfig(listen=("tcp://127.0.0.1:*",), workers=2, queue_size=2),
        tracking=TrackingConfig(poll_interval_s=0.5, sweep_interval_s=1.0),
        breaker=BreakerConfig(failure_threshold=2, recovery_timeout_s=1.0, success_threshold=1),
    )
    seen: dict[str, set[str]] = {}
    async with aiohttp.ClientSession() as http, AsyncClient(endpoint(daemon)) as client:
        poll = Poller(http, daemon.http_url)
        poller = asyncio.create_task(poll.run())
        try:
            await run_steps(daemon, control, client, poll, http, before_start, seen)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    missing = {step: EXPECTED[step] - seen.get(step, set()) for step in EXPECTED}
    assert {step: names for step, names in missing.items() if names} == {}


async def run_steps(
    daemon: Daemon,
    control: SimControl,
    client: AsyncClient,
    poll: Poller,
    http: aiohttp.ClientSession,
    before_start: dict[str, Signature],
    seen: dict[str, set[str]],
) -> None:
    async with poll.step(since=before_start) as seen["start"]:
        await poll.until(
            lambda m: value(m["user_stream_connected"], "user_stream_connected") == 1, 10
        )
        async with http.get(f"{daemon.http_url}/health") as response:
            assert response.status == 200

    async with poll.step() as seen["orders"]:
        await control.fault("stream_delay", count=2, params={"ms": 300})
        resting = await client.place_order(**limit("m-rest"))
        assert resting.state is OrderState.NEW
        await client.place_order(**limit("m-rest"))  # duplicate: idempotency hit
        await client.place_order(**market("m-take"))  # fills as taker: fees
        await quietly(client.place_order(**limit("m-tick", price="49000.05")))  # PRICE_TICK
        await poll.until(lambda m: value(m["fills_total"], "fills_total") >= 1, 10)

    async with poll.step() as seen["venue_error"]:
        await control.fault("error_5xx", count=1, path="/fapi/v1/premiumIndex")
        async with http.get(f"{daemon.http_url}/health"):
            pass

    async with poll.step() as seen["stream_gap"]:
        # the fill's event closes the stream instead: a gap the recovery sweep repairs
        await control.fault("stream_disconnect", count=1)
        await control.price("BTCUSDT", "48900.0")  # fills m-rest
        await poll.until(
            lambda m: value(m["tracking_corrections_total"], "tracking_corrections_total") >= 1,
            15,
        )

    async with poll.step() as seen["burst"]:
        await control.fault("latency", path="/fapi/v1/order", params={"ms": 1500})
        burst = [quietly(client.place_order(**limit(f"m-b{i}", price="48000.0"))) for i in range(8)]
        await asyncio.gather(*burst)
        await control.clear_faults()

    async with poll.step() as seen["unknown"]:
        await control.fault("timeout_after_accept", count=1, path="/fapi/v1/order")
        # the stream's NEW comes late and the resolver's query is slow, so UNKNOWN lasts
        # long enough to be scraped
        await control.fault("stream_delay", count=1, params={"ms": 2000})
        await control.fault("latency", path="/fapi/v1/order", params={"ms": 800})
        await quietly(client.place_order(**limit("m-unknown", price="48000.0")))
        await poll.until(
            lambda m: (
                value(
                    m["unknown_outcome_resolution_seconds"],
                    "unknown_outcome_resolution_seconds_count",
                )
                >= 1
            ),
            15,
        )
        await control.clear_faults()

    async with poll.step() as seen["breaker"]:
        await control.fault("error_5xx", count=2, path="/fapi/v1/order")
        for i in range(3):
            await quietly(client.place_order(**limit(f"m-brk{i}", price="48000.0")))
        await asyncio.sleep(1.2)  # recovery timeout: half-open, then one success closes
        await quietly(client.place_order(**limit("m-brk-ok", price="48000.0")))

    async with poll.step() as seen["rate_limit"]:
        await control._call("POST", "rate_limits", {"orders_per_10s": 1})
        for i in range(3):
            await quietly(client.place_order(**limit(f"m-rl{i}", price="48000.0")))
        await control._call("DELETE", "rate_limits")
