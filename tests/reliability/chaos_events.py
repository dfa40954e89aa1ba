"""The chaos run's subscriber (issue 17): one strategy-side event consumer kept connected
for the whole run, through daemon kills and restarts, Redis restarts and venue outages.

It is ``AsyncClient.subscribe`` exactly as a strategy uses it: every topic, from seq 0,
healing its gaps with the daemon's ``replay`` op and dropping flagged repeats. At the
end its deliveries are held to the venue's ground truth:

- fills missed / duplicated: venue trades (symbol, trade id) without a delivered
  ``fill`` event / delivered more than once (or never made by the venue);
- state mismatches: venue orders whose last delivered order event (highest version)
  does not show the venue's final status;
- gaps: delivered events that carry a ``gap`` (the log lost them), plus every break of
  the one sequence (a seq that is not the previous + 1 within an epoch).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import attrs

from oexec.client import AsyncClient, Event, Subscriber

STATE_WAIT_S = 15.0


@attrs.define
class SubscriberVerdict:
    delivered: int = 0
    fills_missed: int = 0
    fills_duplicated: int = 0
    state_mismatches: int = 0
    gaps: int = 0
    repeats_dropped: int = 0
    replayed: int = 0
    examples: list[str] = attrs.field(factory=list)

    @property
    def zeros(self) -> bool:
        return not (self.fills_missed or self.fills_duplicated or self.state_mismatches)

    def rows(self) -> list[tuple[str, object]]:
        return [
            ("subscriber events", self.delivered),
            ("subscriber fills missed", self.fills_missed),
            ("subscriber fills duplicated", self.fills_duplicated),
            ("subscriber final states wrong", self.state_mismatches),
            ("subscriber gaps unexplained", self.gaps),
            ("subscriber repeats dropped", self.repeats_dropped),
        ]


class EventWatch:
    """A subscriber in a background task, collecting what it delivers."""

    def __init__(self, request_endpoint: str, events_endpoint: str) -> None:
        self.client = AsyncClient(request_endpoint, timeout_s=2.0, retries=2)
        self.subscriber: Subscriber = self.client.subscribe(events_endpoint, from_seq=0)
        self.events: list[Event] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chaos-subscriber")

    async def _run(self) -> None:
        while True:
            self.events.append(await self.subscriber.receive())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.subscriber.close()
        await self.client.close()

    def verdict(self, venue_orders: list[dict[str, Any]]) -> SubscriberVerdict:
        events = self.events
        out = SubscriberVerdict(
            delivered=len(events),
            repeats_dropped=self.subscriber.repeats_dropped,
            replayed=self.subscriber.replayed,
        )
        venue_trades = {
            (o["symbol"], int(f["tradeId"])) for o in venue_orders for f in o.get("fills", ())
        }
        delivered = Counter(
            (e.data["fill"]["symbol"], int(e.data["fill"]["trade_id"]))
            for e in events
            if e.topic == "fill"
        )
        missed = venue_trades - set(delivered)
        out.fills_missed = len(missed)
        out.fills_duplicated = sum(n - 1 for n in delivered.values()) + len(
            set(delivered) - venue_trades
        )
        out.examples += [f"fill {m} never delivered" for m in sorted(missed)[:5]]
        mismatches = state_mismatches(events, venue_orders)
        out.state_mismatches = len(mismatches)
        out.examples += mismatches[:5]
        breaks = sequence_breaks(events, set(self.subscriber.dropped_seqs))
        out.gaps = len(breaks) + sum(1 for e in events if e.gap is not None)
        out.examples += breaks[:5]
        return out

    async def wait_for_states(self, venue_orders: list[dict[str, Any]]) -> float:
        """Seconds until every venue order's final status was delivered (bounded)."""
        started = time.monotonic()
        while time.monotonic() - started < STATE_WAIT_S:
            if not state_mismatches(self.events, venue_orders):
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - started


def state_mismatches(events: list[Event], venue_orders: list[dict[str, Any]]) -> list[str]:
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        order = event.data.get("order")
        if not isinstance(order, dict):
            continue
        coid = str(order.get("client_order_id"))
        known = latest.get(coid)
        if known is None or int(order.get("version", 0)) >= int(known.get("version", 0)):
            latest[coid] = order
    out = []
    for truth in venue_orders:
        seen = latest.get(truth["clientOrderId"])
        state = None if seen is None else seen.get("state")
        if state != truth["status"]:
            out.append(f"{truth['clientOrderId']}: delivered {state}, venue {truth['status']}")
    return out


def sequence_breaks(events: list[Event], dropped: set[int]) -> list[str]:
    """Jumps in the delivered sequence not explained by the repeats the subscriber
    dropped (a flagged repeat has its own seq)."""
    out = []
    previous: Event | None = None
    for event in events:
        same_epoch = previous is not None and previous.data.get("epoch") == event.data.get("epoch")
        if previous is not None and same_epoch and event.seq != previous.seq + 1:
            unexplained = set(range(previous.seq + 1, event.seq)) - dropped
            if unexplained or event.seq <= previous.seq:
                out.append(f"seq {previous.seq} -> {event.seq}")
        previous = event
    return out
