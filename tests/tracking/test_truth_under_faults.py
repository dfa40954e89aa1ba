"""Done-when: under venue and stream faults the store equals the venue's ground truth,
with zero duplicates, zero lost orders and every fill published exactly once."""

from __future__ import annotations

import os

import pytest

from oexec.app import Daemon
from oexec.config import BreakerConfig, TrackingConfig
from oexec.sim.config import RateLimitConfig

from ..e2e.conftest import DaemonFactory, SimControl
from .burst import run_burst

#: The burst is about tracking, not throttling: lift the venue's limits far above it.
ROOMY = RateLimitConfig(orders_per_10s=100_000, orders_per_minute=1_000_000,
                        weight_per_minute=1_000_000)  # fmt: skip
TRACKING = TrackingConfig(poll_interval_s=0.5, sweep_interval_s=2.0)


async def _daemon(make_daemon: DaemonFactory, order_transport: str = "rest") -> Daemon:
    return await make_daemon(
        tracking=TRACKING,
        breaker=BreakerConfig(failure_threshold=10_000),
        venue_changes={"order_transport": order_transport},
    )


@pytest.mark.sim_config(rate_limits=ROOMY, seed=5)
@pytest.mark.parametrize("order_transport", ["rest", "ws"])
async def test_a_few_hundred_orders_under_faults_match_the_venue(
    make_daemon: DaemonFactory, control: SimControl, order_transport: str
) -> None:
    """With "ws" the burst's submits go over the WebSocket API, whose connection each
    reset after accept cuts with every request in flight on it."""
    daemon = await _daemon(make_daemon, order_transport)
    # Coverage by count, not by luck: the 50th, 100th and 150th stream events are lost
    # whatever the timing (the burst delivers a few hundred), on top of the burst's own
    # random drops (each rule draws from its own seeded sequence).
    await control.fault("stream_drop", every_n=50, count=3)
    report = await run_burst(daemon, control, orders=300, seed=5)
    assert report.ok, report
    assert report.venue_orders > 200 and report.fills_truth > 50
    fired = report.faults_fired
    assert fired.get("timeout_after_accept", 0) + fired.get("reset_after_accept", 0) > 0
    assert fired.get("stream_drop", 0) > 0 and fired.get("stream_reorder", 0) > 0
    stats = control.server.state.stats
    ws_places = stats.requests_by_path["/ws-fapi/v1 order.place"]
    # (seen failing under load; not reproduced in 19 runs under load, where ws carried 250
    # to 287 of ~295 places): the message says how the connection fared if it fails again
    why = (ws_places, report.venue_orders, daemon.dashboard_extra(), dict(stats.requests_by_route))
    assert (ws_places > report.venue_orders // 2) is (order_transport == "ws"), why


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.sim_config(rate_limits=ROOMY, seed=9)
async def test_thousands_of_orders_under_faults_match_the_venue(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    orders = int(os.environ.get("OEXEC_TRUTH_ORDERS", "3000"))
    report = await run_burst(await _daemon(make_daemon), control, orders=orders, clients=16, seed=9)
    print(f"\n{report}")  # scripts/track-truth shows it
    assert report.ok, report
