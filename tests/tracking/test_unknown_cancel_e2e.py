"""A cancel whose outcome is unknown, end to end (docs/tracking.md, "Unknown outcomes"):
the venue faults on ``DELETE /fapi/v1/order`` (reply lost after the venue applied it,
5xx before it did, connection reset), the client gets a typed answer, the daemon settles
the cancel by asking the venue, and the store ends equal to ``/_sim/orders`` with no
second order and nothing left resolving.

The user stream drops every event and the sweep is a minute away, so only the cancel
path itself can bring the store to the venue's truth. (tests/tracking/test_tracking_e2e.py
has the plain reset-after-accept case, asserting the reply and the trace only.)
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import attrs
import pytest

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.config import TrackingConfig
from oexec.errors import ErrorCode
from oexec.models import Order, OrderState
from oexec.service.reconcile import compare

from ..e2e.conftest import DaemonFactory, SimControl, endpoint
from .helpers import limit, wait_for

PATH = "/fapi/v1/order"  # POST place, DELETE cancel and GET query share it
#: The transport tries a cancel 1 + read_retries (3) times before giving up.
CANCEL_ATTEMPTS = 4
NO_SWEEP = TrackingConfig(poll_interval_s=0.5, sweep_interval_s=60)


@attrs.frozen
class Case:
    name: str
    #: fault rules added after the order is placed, before the cancel
    faults: tuple[dict[str, Any], ...]
    #: the answer: an order state, or the error code the client must get (any of them)
    reply: tuple[OrderState | ErrorCode, ...]
    #: the venue's status right after the cancel
    venue: str
    #: fault rules active while the order is placed
    at_place: tuple[dict[str, Any], ...] = ()


def _rule(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "probability": 1.0, "path": PATH, **fields}


UNKNOWN_5XX = {"status": 500, "code": -1000}  # neither a definite failure nor a success
CASES = [
    Case(
        "timeout-503-after-applied",
        (_rule("timeout_after_accept", count=1, params={"reply": "503"}),),
        (OrderState.CANCELED,),
        "CANCELED",
    ),
    Case(
        "timeout-1007-after-applied",
        (_rule("timeout_after_accept", count=1, params={"reply": "-1007"}),),
        (OrderState.CANCELED,),
        "CANCELED",
    ),
    Case(
        "reset-after-applied",
        (_rule("reset_after_accept", count=1),),
        (OrderState.CANCELED,),
        "CANCELED",
    ),
    Case(
        "5xx-definite-not-applied",
        (_rule("error_5xx", count=CANCEL_ATTEMPTS),),
        (ErrorCode.VENUE_UNAVAILABLE,),
        "NEW",
    ),
    Case(
        "5xx-unknown-not-applied",
        (_rule("error_5xx", count=CANCEL_ATTEMPTS, params=UNKNOWN_5XX),),
        (OrderState.NEW,),  # resolved by query: the venue never canceled it
        "NEW",
    ),
    Case(
        "5xx-unknown-and-queries-failing",
        (_rule("error_5xx", params=UNKNOWN_5XX),),
        (ErrorCode.VENUE_UNKNOWN_OUTCOME,),  # no answer within 3 s: resolving in background
        "NEW",
    ),
    Case(
        "timeout-after-applied-not-visible-yet",
        (_rule("timeout_after_accept", count=1),),
        # -2013 for 2 s after the venue accepted the order means "not visible yet": ask
        # again (within the 3 s, or the typed unknown and on in the background)
        (OrderState.CANCELED, ErrorCode.VENUE_UNKNOWN_OUTCOME),
        "CANCELED",
        at_place=(_rule("read_after_write_lag", count=1, params={"ms": 2000}),),
    ),
]
XFAIL = functools.partial(pytest.mark.xfail, strict=True, raises=(AssertionError, TimeoutError))
KNOWN_BUGS: dict[str, str] = {}  # e.g. {case name: reason}: marks the case xfail(strict)
PARAMS = [
    pytest.param(
        case,
        id=case.name,
        marks=[XFAIL(reason=KNOWN_BUGS[case.name])] if case.name in KNOWN_BUGS else [],
    )
    for case in CASES
]


async def _truth(control: SimControl) -> list[dict[str, Any]]:
    return await control.orders()


async def _settled(daemon: Daemon) -> bool:
    return daemon.resolver.pending == 0 and not await compare(daemon.store, daemon.venue)


async def _cancel(client: AsyncClient, order: Order) -> Order | ErrorCode:
    try:
        async with asyncio.timeout(20):
            return await client.cancel_order(order_id=order.id)
    except ClientError as exc:
        assert isinstance(exc.code, ErrorCode), exc
        return exc.code


async def _run_case(case: Case, daemon: Daemon, control: SimControl, prefix: str) -> None:
    for rule in case.at_place:
        await control.fault(**rule)
    async with AsyncClient(endpoint(daemon), timeout_s=10, retries=0) as client:
        order = await client.place_order(**limit(f"{prefix}-1", "49000.0"))
        assert order.state is OrderState.NEW
        await control.clear_faults()
        await control.fault("stream_drop", probability=1.0)
        for rule in case.faults:
            await control.fault(**rule)

        answer = await _cancel(client, order)
        got = answer.state if isinstance(answer, Order) else answer
        assert got in case.reply, f"{case.name}: replied {got}"
        (venue,) = await _truth(control)
        assert venue["status"] == case.venue, venue

        await control.clear_faults()  # the venue answers again (stream events stay lost)
        await wait_for(lambda: _settled(daemon), within_s=15)
        stored = await client.get_order(order_id=order.id)
        assert stored.state is OrderState(case.venue)
        if stored.state is OrderState.NEW:  # the strategy may simply cancel again
            assert (await client.cancel_order(order_id=order.id)).state is OrderState.CANCELED
            await wait_for(lambda: _settled(daemon), within_s=15)
        await asyncio.sleep(0.2)  # the journal writes in the background
        trace = await client.trace(order_id=order.id)
    kinds = [(e["kind"], e.get("op")) for e in trace["journal"]]
    after_cancel = kinds[kinds.index(("request", "cancel_order")) :]
    if case.reply != (ErrorCode.VENUE_UNAVAILABLE,):  # a definite "not done" needs no query
        assert ("response", "query_order") in after_cancel, kinds  # asked, not assumed
    truth = await _truth(control)
    assert len(truth) == 1 and truth[0]["clientOrderId"] == order.client_order_id  # no 2nd
    assert truth[0]["status"] == "CANCELED"


@pytest.mark.parametrize("case", PARAMS)
async def test_unknown_cancel_is_settled_by_asking_the_venue(
    case: Case, make_daemon: DaemonFactory, control: SimControl
) -> None:
    daemon = await make_daemon(tracking=NO_SWEEP)
    await _run_case(case, daemon, control, case.name[:12])
