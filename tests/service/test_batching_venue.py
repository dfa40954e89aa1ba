"""BatchingVenue: a batch's submits leave as venue batch calls of at most 5 (cancels 10 per
symbol), each element gets its own answer, and a whole-call failure reaches every element.

The venue here is the scripted in-memory one: these tests drive the grouping's timing
exactly; tests/e2e/test_strategy_ops_e2e.py runs the same path against the simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import attrs
import pytest

from oexec.errors import VenueError, VenueRejectedError, VenueUnknownOutcomeError
from oexec.models import OrderTerms, VenueOrder
from oexec.models.enums import OrderType, Side, TimeInForce
from oexec.service.batch import BatchingVenue
from oexec.service.ports import VenueOrderRequest
from tests.service.fakes import ScriptedVenue


@attrs.define
class RecordingBatches(ScriptedVenue):
    """ScriptedVenue plus the batch endpoints; ``fail_next`` fails one whole call."""

    calls: list[list[str]] = attrs.Factory(list)
    fail_next: BaseException | None = None
    refuse: set[str] = attrs.Factory(set)  # client order ids answered with an element error

    async def batch_place(
        self, requests: Sequence[VenueOrderRequest], *, deadline_s: float | None = None
    ) -> list[VenueOrder | VenueError]:
        self.calls.append([r.client_order_id for r in requests])
        self.deadlines.append(deadline_s)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        return [
            VenueRejectedError("refused", venue_code=-4164)
            if r.client_order_id in self.refuse
            else self.accept(r)
            for r in requests
        ]

    async def batch_cancel(
        self, symbol: str, *, client_order_ids: Sequence[str] = (), order_ids: Sequence[str] = ()
    ) -> list[VenueOrder | VenueError]:
        self.calls.append([symbol, *client_order_ids])
        return [await self.cancel_order(symbol, client_order_id=cid) for cid in client_order_ids]


def request(cid: str) -> VenueOrderRequest:
    terms = OrderTerms(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=Decimal("49000"),
        time_in_force=TimeInForce.GTC,
    )
    return VenueOrderRequest(client_order_id=cid, terms=terms)


async def test_twelve_submits_leave_as_calls_of_five_five_two() -> None:
    venue = RecordingBatches()
    batching = BatchingVenue(venue, venue, linger_s=5.0)
    ids = [f"c{i}" for i in range(12)]
    venue.refuse = {"c7"}
    async with batching.placing(ids) as group:

        async def one(cid: str) -> VenueOrder:
            try:
                return await batching.place_order(request(cid))
            finally:
                group.done(cid)

        results = await asyncio.wait_for(
            asyncio.gather(*(one(cid) for cid in ids), return_exceptions=True), 2.0
        )
    assert sorted(len(call) for call in venue.calls) == [2, 5, 5]
    assert sorted(cid for call in venue.calls for cid in call) == sorted(ids)
    assert isinstance(results[7], VenueRejectedError)
    assert [r.client_order_id for r in results if isinstance(r, VenueOrder)] == [
        cid for cid in ids if cid != "c7"
    ]
    assert venue.placed == []  # nothing went through the single-order endpoint


async def test_elements_that_never_reach_the_venue_do_not_hold_the_others() -> None:
    venue = RecordingBatches()
    batching = BatchingVenue(venue, venue, linger_s=5.0)
    async with batching.placing(["a", "b", "refused"]) as group:
        group.done("refused")  # e.g. a validation reject: never calls the venue
        answers = await asyncio.wait_for(
            asyncio.gather(
                batching.place_order(request("a"), deadline_s=2.5),
                batching.place_order(request("b"), deadline_s=0.5),
            ),
            1.0,
        )
    assert [a.client_order_id for a in answers] == ["a", "b"]
    assert venue.calls == [["a", "b"]]
    assert venue.deadlines == [0.5]  # the call waits no longer than its most urgent element


async def test_a_held_up_element_is_not_waited_for_past_the_linger() -> None:
    venue = RecordingBatches()
    batching = BatchingVenue(venue, venue, linger_s=0.05)
    async with batching.placing(["a", "slow"]):
        answer = await asyncio.wait_for(batching.place_order(request("a")), 1.0)
    assert answer.client_order_id == "a" and venue.calls == [["a"]]


async def test_a_whole_call_failure_reaches_every_element_of_that_call() -> None:
    venue = RecordingBatches(fail_next=VenueUnknownOutcomeError("timeout"))
    batching = BatchingVenue(venue, venue, linger_s=5.0)
    async with batching.placing(["a", "b"]):
        results = await asyncio.gather(
            batching.place_order(request("a")),
            batching.place_order(request("b")),
            return_exceptions=True,
        )
    assert all(isinstance(r, VenueUnknownOutcomeError) for r in results)
    assert venue.calls == [["a", "b"]]


async def test_outside_a_batch_calls_pass_straight_through() -> None:
    venue = RecordingBatches()
    batching = BatchingVenue(venue, venue)
    placed = await batching.place_order(request("single"))
    canceled = await batching.cancel_order("BTCUSDT", client_order_id="single")
    assert placed.client_order_id == canceled.client_order_id == "single"
    assert [r.client_order_id for r in venue.placed] == ["single"] and venue.calls == []
    assert await batching.mark_price("BTCUSDT") == Decimal("50000")


async def test_cancels_are_batched_per_symbol() -> None:
    venue = RecordingBatches()
    for cid in ("x", "y"):
        venue.accept(request(cid))
    batching = BatchingVenue(venue, venue, linger_s=5.0)
    async with batching.canceling(["x", "y"]):
        results = await asyncio.wait_for(
            asyncio.gather(
                batching.cancel_order("BTCUSDT", client_order_id="x"),
                batching.cancel_order("BTCUSDT", client_order_id="y"),
            ),
            1.0,
        )
    assert [r.status.value for r in results] == ["CANCELED", "CANCELED"]
    assert venue.calls == [["BTCUSDT", "x", "y"]]


@pytest.mark.parametrize("count", [0, 51])
async def test_batch_size_is_bounded(count: int) -> None:
    from oexec.errors import OexecError
    from oexec.service.batch import BatchOrders

    async def never(*_: object, **__: object) -> object:
        raise AssertionError("not called")

    batches = BatchOrders(
        BatchingVenue(RecordingBatches(), RecordingBatches()),
        place_one=never,  # type: ignore[arg-type]
        cancel_one=never,
        lookup=never,
    )
    with pytest.raises(OexecError) as caught:
        await batches.cancel_orders(order_ids=[f"o{i}" for i in range(count)])
    assert caught.value.code.value == "BAD_REQUEST"
