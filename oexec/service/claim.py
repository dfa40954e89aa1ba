"""The idempotency claim, and what a request that loses it does.

The claim is ONE atomic store step that also makes the order durable (state SUBMITTING,
or REJECTED when admission refused it), through ``OrderWriter.claim`` so an order
rejected at once is announced with it. Losing the claim means another request (here or
in another daemon) owns the request_id: wait for its outcome (``first_outcome``). A
submit that provably never left gives the claim back (``release``), so a retry is a
fresh attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson

from oexec.errors import ErrorCode, OexecError
from oexec.models import Order, OrderIntent, OrderState
from oexec.models.serde import order_from_dict
from oexec.service.client_ids import client_order_id_for
from oexec.service.ports import ClaimResult, OrderStore
from oexec.service.settle import Settlement
from oexec.service.stages import PipelineObserver, PipelineSettings, error_from_order, new_order_id
from oexec.service.writer import OrderWriter


def order_for(intent: OrderIntent, now_ms: int, reject: OexecError | None) -> Order:
    """The order a claim records for ``intent`` (REJECTED with the rule's error, or
    SUBMITTING with the client order id derived from its request_id)."""
    return Order.from_terms(
        intent.terms,
        id=new_order_id(now_ms),
        request_id=intent.request_id,
        client_order_id=client_order_id_for(intent.request_id),
        state=OrderState.REJECTED if reject is not None else OrderState.SUBMITTING,
        created_at=now_ms,
        updated_at=now_ms,
        error_code=reject.code.value if reject is not None else None,
        error_message=reject.message if reject is not None else None,
        version=1,
    )


class Claims:
    def __init__(
        self,
        *,
        store: OrderStore,
        writer: OrderWriter,
        settlement: Settlement,
        settings: PipelineSettings,
        observer: PipelineObserver,
    ) -> None:
        self.store = store
        self.writer = writer
        self.settlement = settlement
        self.settings = settings
        self.observer = observer

    async def claim(self, order: Order) -> ClaimResult:
        """Claim ``order.request_id`` for ``order``, making the order durable."""
        t0 = time.perf_counter()
        result = await self.writer.claim(order, self.settings.idempotency_ttl_s, early=True)
        self.observer.stage("idempotency", time.perf_counter() - t0)
        if result.claimed:
            self.observer.cache_miss()
        else:
            self.observer.cache_hit()
        return result

    async def release(self, order: Order) -> None:
        """Give the claim back: the submit provably never left."""
        await self.store.release(order)

    async def first_outcome(
        self,
        intent: OrderIntent,
        claim: ClaimResult,
        place_again: Callable[[OrderIntent], Awaitable[Order]],
    ) -> Order:
        """The outcome of the request that owns the claim; wait for it while it is in
        flight. ``place_again``: the claim was released (never sent), so try afresh."""
        first, reply = claim.order, claim.reply
        if _differs(intent, first):
            raise OexecError(
                f"request_id {intent.request_id!r} was already used for a different order",
                code=ErrorCode.DUPLICATE_REQUEST_MISMATCH,
                details={"order_id": first.id},
            )
        if reply is None and self.settlement.being_stored(first.id):  # answered here
            await self.settlement.persisted(first.id)
            reply = await self.store.get_reply(intent.request_id)
        deadline = time.monotonic() + self.settings.duplicate_wait_s
        delay = 0.002
        while reply is None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
            reply = await self.store.get_reply(intent.request_id)
            if reply is not None:
                break
            current = await self.store.get(first.id)
            if current is None:
                return await place_again(intent)  # the first was released: never sent
            if current.state not in (OrderState.SUBMITTING, OrderState.UNKNOWN):
                # settled without a saved reply: by the resolver after a restart
                if current.state is OrderState.REJECTED:
                    raise error_from_order(current)
                return current
        if reply is None:
            current = await self.store.get(first.id)
            return current or first
        order = order_from_dict(orjson.loads(reply))
        if order.state is OrderState.REJECTED:
            raise error_from_order(order)
        return order


def _differs(intent: OrderIntent, first: Order) -> bool:
    terms = intent.terms
    return (
        terms.symbol != first.symbol
        or terms.side is not first.side
        or terms.type is not first.type
        or terms.quantity != first.quantity
        or terms.price != first.price
    )
