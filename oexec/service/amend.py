"""``modify_order``: amend a resting LIMIT order's price and/or quantity in place.

Why in place (the venue's ``PUT /fapi/v1/order``) and not cancel + new: the order keeps its
id, its client order id and its fills, and the venue applies its own priority rules (a
quantity cut keeps the queue place, a price change re-queues); a cancel + new always
loses the place and opens a window with no order at all.

The amended terms go through the same pre-trade checks as a new order (the venue's
filters, then risk; the order's own open-order slot is not counted twice). The amend
is rate-limited like any order request (the adapter's gate: one ORDERS unit) and every
request, answer and error is journaled under the order's client order id. A modify is
never resent: an unknown outcome is resolved by reading the order back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs

from oexec.errors import (
    ErrorCode,
    OexecError,
    VenueError,
    VenueUnknownOutcomeError,
)
from oexec.models import Order, OrderIntent, OrderState, OrderTerms, OrderType, VenueOrder
from oexec.models.decimals import format_decimal
from oexec.service.apply import apply_venue_order
from oexec.service.journal import Journal
from oexec.service.market import MarketState
from oexec.service.ports import AmendVenue, Venue
from oexec.service.rules.allowlist import SymbolAllowList
from oexec.service.rules.risk import RiskManager, is_reducing
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.stages import Breaker
from oexec.service.writer import OrderWriter

log = logging.getLogger("oexec.amend")

#: States in which the venue holds the order open (an amend can land).
AMENDABLE_STATES = frozenset({OrderState.NEW, OrderState.PARTIALLY_FILLED})
#: Reads of the order after an amend whose outcome is unknown, and the pause between.
RESOLVE_ATTEMPTS = 5
RESOLVE_DELAY_S = 0.2

Lookup = Callable[..., Awaitable[Order]]


def apply_amendment(order: Order, venue: VenueOrder, now_ms: int) -> Order | None:
    """``order`` as the venue describes it after an amend (pure): the one fold of the
    venue's views (``apply_venue_order``), which takes a LIMIT order's price and quantity
    from any view at least as new as the last one applied. None when nothing is new."""
    return apply_venue_order(order, venue, now_ms)


def amended_terms(order: Order, price: Decimal | None, quantity: Decimal | None) -> OrderTerms:
    """The order's terms with the new price/quantity; raises for an order that cannot be
    amended (ORDER_NOT_AMENDABLE) or an empty request (BAD_REQUEST)."""
    if price is None and quantity is None:
        raise OexecError(
            "give a new price, a new quantity or both",
            code=ErrorCode.BAD_REQUEST,
            details={"field": "price"},
        )
    if order.type is not OrderType.LIMIT or order.state not in AMENDABLE_STATES:
        raise OexecError(
            f"only a resting LIMIT order can be amended ({order.type.value}, {order.state.value})",
            code=ErrorCode.ORDER_NOT_AMENDABLE,
            details={"order_id": order.id, "state": order.state.value, "type": order.type.value},
        )
    new_quantity = order.quantity if quantity is None else quantity
    if new_quantity <= order.filled_quantity:
        raise OexecError(
            "the new quantity must exceed the quantity already filled",
            code=ErrorCode.ORDER_NOT_AMENDABLE,
            details={
                "order_id": order.id,
                "field": "quantity",
                "filled_quantity": format_decimal(order.filled_quantity),
            },
        )
    return attrs.evolve(
        order.terms, price=order.price if price is None else price, quantity=new_quantity
    )


class Amender:
    """Implements ``OrderService.modify_order`` (see the module docstring)."""

    def __init__(
        self,
        *,
        amend: AmendVenue,
        venue: Venue,
        writer: OrderWriter,
        lookup: Lookup,
        market: MarketState,
        rules_book: SymbolRulesBook,
        validation: ValidationPipeline,
        risk: RiskManager,
        breaker: Breaker,
        allow: SymbolAllowList,
        journal: Journal | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        resolve_delay_s: float = RESOLVE_DELAY_S,
    ) -> None:
        self.amend = amend
        self.venue = venue
        self.writer = writer
        self.lookup = lookup
        self.market = market
        self.rules_book = rules_book
        self.validation = validation
        self.risk = risk
        self.breaker = breaker
        self.allow = allow
        self.journal = journal
        self.now_ms = now_ms
        self.resolve_delay_s = resolve_delay_s

    async def modify_order(
        self,
        *,
        order_id: str | None = None,
        request_id: str | None = None,
        price: Decimal | None = None,
        quantity: Decimal | None = None,
    ) -> Order:
        order = await self.lookup(order_id=order_id, request_id=request_id)
        self.allow.check_symbol(order.symbol)
        terms = amended_terms(order, price, quantity)
        if terms.price == order.price and terms.quantity == order.quantity:
            return order  # already so: nothing to send (the venue would answer -5027)
        context = await self.market.context_for(terms, self.now_ms())
        context = attrs.evolve(context, open_orders=max(0, context.open_orders - 1))
        self.validation.check(terms, self.rules_book.get(terms.symbol), context)
        await self.risk.check(OrderIntent(request_id=order.request_id, terms=terms), context)
        venue_order = await self._send(order, terms, bypass=is_reducing(terms, context))
        now = self.now_ms()
        stored, _ = await self.writer.update(
            order, lambda o: apply_amendment(o, venue_order, now), reason="amend"
        )
        return stored

    async def _send(self, order: Order, terms: OrderTerms, *, bypass: bool) -> VenueOrder:
        price, quantity = terms.price, terms.quantity
        assert price is not None  # a LIMIT order's terms always carry one
        self._journal(
            order, "request", price=format_decimal(price), quantity=format_decimal(quantity)
        )
        try:
            answer: VenueOrder = await self.breaker.call(
                lambda: self.amend.modify_order(
                    order.symbol,
                    order.side,
                    quantity,
                    price,
                    client_order_id=order.client_order_id,
                ),
                bypass=bypass,
            )
        except VenueUnknownOutcomeError as exc:
            self._journal(order, "error", code=exc.code.value, message=exc.message)
            return await self._resolve(order, terms)
        except OexecError as exc:
            self._journal(order, "error", code=exc.code.value, message=exc.message)
            raise
        self._journal(order, "response", raw=answer.raw)
        return answer

    async def _resolve(self, order: Order, terms: OrderTerms) -> VenueOrder:
        """Read the order back: the venue's view shows whether the amend landed."""
        seen: VenueOrder | None = None
        for attempt in range(RESOLVE_ATTEMPTS):
            await asyncio.sleep(self.resolve_delay_s * (attempt + 1))
            try:
                seen = await self.venue.query_order(
                    order.symbol, client_order_id=order.client_order_id
                )
            except VenueError as exc:
                log.warning("amend of %s: read-back failed: %s", order.id, exc.message)
                continue
            if seen.price == terms.price and seen.quantity == terms.quantity:
                return seen
        if seen is not None:  # the venue's truth is stored either way
            now, last = self.now_ms(), seen
            await self.writer.update(
                order, lambda o: apply_amendment(o, last, now), reason="amend read-back"
            )
        raise VenueUnknownOutcomeError(
            "amend outcome unknown: the venue does not show the new terms yet "
            "(get the order later; amending again is safe)",
            details={"order_id": order.id, "client_order_id": order.client_order_id},
        )

    def _journal(self, order: Order, kind: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.record(order.client_order_id, kind, op="modify_order", **fields)
