"""A seeded burst of orders under venue and stream faults, then the ground-truth audit.

Used by the bounded CI test, its ``slow`` full-size twin and ``scripts/track-truth``.
The burst places limit and market orders from several concurrent clients (retrying a
failed request with the same request_id, as a strategy should), cancels some, walks the
price so orders fill, all while the simulator injects timeouts-after-accept, 5xx,
connection resets, read-after-write lag and dropped / reordered / delayed stream events
and stream disconnects. Then faults stop and the audit compares the store, the events
and the venue's ground truth (``/_sim/orders``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any

import attrs

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.client.errors import OrderRejectedError, OrderStateError
from oexec.service.client_ids import CLIENT_ORDER_ID_PREFIX
from oexec.service.reconcile import Difference

from ..e2e.conftest import SimControl, endpoint, events_endpoint
from .helpers import EventLog, converged

#: (kind, probability, path, params): the fault mix of the burst.
FAULTS: tuple[tuple[str, float, str | None, dict[str, Any]], ...] = (
    ("timeout_after_accept", 0.04, "/fapi/v1/order", {"reply": "503"}),
    ("timeout_after_accept", 0.02, "/fapi/v1/order", {"reply": "-1007"}),
    ("reset_after_accept", 0.02, "/fapi/v1/order", {}),
    ("error_5xx", 0.03, "/fapi/v1/order", {}),
    ("read_after_write_lag", 0.05, None, {"ms": 400}),
    ("stream_drop", 0.03, None, {}),
    ("stream_reorder", 0.05, None, {}),
    ("stream_delay", 0.05, None, {"ms": 150}),
    ("stream_disconnect", 0.004, None, {}),
)
MID = 50_000
#: Answers a retry cannot change (anything else is retried with the same request_id).
FINAL_ERRORS = (OrderRejectedError, OrderStateError)


@attrs.define
class BurstReport:
    requested: int = 0
    client_errors: Counter[str] = attrs.field(factory=Counter)
    venue_orders: int = 0
    duplicates: int = 0
    lost: list[str] = attrs.field(factory=list)
    differences: list[Difference] = attrs.field(factory=list)
    fills_truth: int = 0
    fills_missed: int = 0
    fills_duplicated: int = 0
    filled_events_wrong: int = 0
    event_gaps: int = 0
    faults_fired: dict[str, int] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates
            or self.lost
            or self.differences
            or self.fills_missed
            or self.fills_duplicated
            or self.filled_events_wrong
            or self.event_gaps
        )


def _intent(rng: random.Random, n: int, seed: int) -> dict[str, Any]:
    side = rng.choice(["BUY", "SELL"])
    fields: dict[str, Any] = dict(
        symbol="BTCUSDT", side=side, quantity="0.003", request_id=f"burst-{seed}-{n}"
    )
    if rng.random() < 0.1:
        return fields | {"type": "MARKET"}
    offset = rng.randint(1, 60) * 10
    price = MID - offset if side == "BUY" else MID + offset
    return fields | {"type": "LIMIT", "price": f"{price}.0", "time_in_force": "GTC"}


async def _with_retries(call: Any, report: BurstReport, attempts: int = 4) -> Any:
    for attempt in range(attempts):
        try:
            return await call()
        except ClientError as exc:
            report.client_errors[str(exc.code)] += 1
            if isinstance(exc, FINAL_ERRORS) or attempt == attempts - 1:
                return None
            await asyncio.sleep(0.1 * (attempt + 1))
    return None


async def _client_loop(daemon: Daemon, numbers: list[int], seed: int, report: BurstReport) -> None:
    rng = random.Random(seed * 1000 + numbers[0] if numbers else seed)
    async with AsyncClient(endpoint(daemon), timeout_s=8.0) as client:
        for n in numbers:
            fields = _intent(rng, n, seed)
            report.requested += 1
            order = await _with_retries(lambda f=fields: client.place_order(**f), report)
            if order is not None and rng.random() < 0.3:
                await _with_retries(lambda o=order: client.cancel_order(order_id=o.id), report)


async def _walk_price(control: SimControl, seed: int) -> None:
    rng = random.Random(seed)
    price = MID
    while True:
        price = min(MID + 600, max(MID - 600, price + rng.randint(-60, 60) * 10))
        await control.price("BTCUSDT", f"{price}.0")
        await asyncio.sleep(0.05)


async def run_burst(
    daemon: Daemon, control: SimControl, *, orders: int, clients: int = 8, seed: int = 7
) -> BurstReport:
    report = BurstReport()
    await control.price("BTCUSDT", f"{MID}.0")
    log = EventLog()
    collector = asyncio.create_task(log.collect(events_endpoint(daemon)))
    await asyncio.sleep(0.3)  # ZeroMQ slow joiner
    for kind, probability, path, params in FAULTS:
        await control.fault(kind, probability=probability, path=path, params=params)
    walker = asyncio.create_task(_walk_price(control, seed))
    try:
        shares = [list(range(orders))[i::clients] for i in range(clients)]
        await asyncio.gather(*(_client_loop(daemon, s, seed, report) for s in shares))
    finally:
        walker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await walker
        report.faults_fired = dict((await control.stats())["faults_fired"])
        await control.clear_faults()
    report.differences = await converged(daemon, history=orders * 2)
    await asyncio.sleep(1.0)  # the last events reach the subscriber
    collector.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await collector
    await audit(daemon, control, log, report)
    return report


async def audit(daemon: Daemon, control: SimControl, log: EventLog, report: BurstReport) -> None:
    """Store vs venue truth vs published events."""
    truth = [
        o for o in await control.orders() if o["clientOrderId"].startswith(CLIENT_ORDER_ID_PREFIX)
    ]
    report.venue_orders = len(truth)
    per_coid = Counter(o["clientOrderId"] for o in truth)
    report.duplicates = sum(n - 1 for n in per_coid.values())
    for venue_order in truth:
        stored = await daemon.store.get_by_client_order_id(venue_order["clientOrderId"])
        if stored is None:
            report.lost.append(venue_order["clientOrderId"])
    trades = {(o["symbol"], int(f["tradeId"])) for o in truth for f in o["fills"]}
    published = log.fills_by_trade()
    report.fills_truth = len(trades)
    report.fills_missed = len(trades - set(published))
    report.fills_duplicated = sum(1 for n in published.values() if n > 1)
    filled_events = log.topic_by_order("order.filled")
    filled_truth = {o["clientOrderId"] for o in truth if o["status"] == "FILLED"}
    filled_ids = set()
    for coid in filled_truth:
        stored = await daemon.store.get_by_client_order_id(coid)
        if stored is not None:
            filled_ids.add(stored.id)
    report.filled_events_wrong = sum(
        1 for oid in filled_ids | set(filled_events) if filled_events.get(oid, 0) != 1
    )
    report.event_gaps = log.gaps
