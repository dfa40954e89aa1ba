"""Admission: may this order go, decided before anything is recorded.

Validation and risk run in memory (no I/O but a cached mark price). Their refusal is a
verdict, not an exception: the order is then claimed as REJECTED, so a retry with the
same request_id gets the same answer. Transient refusals (the breaker is open, the venue
banned our traffic) raise at once and record nothing, so a retry is a fresh attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from oexec.errors import BreakerOpenError, ErrorCode, RejectError, ThrottleError
from oexec.models import OrderIntent
from oexec.service.market import MarketState
from oexec.service.rules.risk import RiskManager, is_reducing
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.stages import Breaker, PipelineObserver


@attrs.frozen
class Verdict:
    """``reject``: the rule that refused the order (it is recorded REJECTED), or None.
    ``reducing``: the order can only shrink a position (it passes an open breaker)."""

    reject: RejectError | None
    reducing: bool


class Admission:
    def __init__(
        self,
        *,
        market: MarketState,
        rules_book: SymbolRulesBook,
        validation: ValidationPipeline,
        risk: RiskManager,
        breaker: Breaker,
        is_banned: Callable[[], float],
        observer: PipelineObserver,
    ) -> None:
        self.market = market
        self.rules_book = rules_book
        self.validation = validation
        self.risk = risk
        self.breaker = breaker
        self.is_banned = is_banned
        self.observer = observer

    async def judge(self, intent: OrderIntent, now_ms: int) -> Verdict:
        """The verdict on ``intent``; raises the transient refusals (nothing recorded)."""
        terms = intent.terms
        t0 = time.perf_counter()
        context = await self.market.context_for(terms, now_ms)
        reducing = is_reducing(terms, context)
        try:
            self.validation.check(terms, self.rules_book.get(terms.symbol), context)
            t1 = time.perf_counter()
            self.observer.stage("validation", t1 - t0)
            await self.risk.check(intent, context)
            self.observer.stage("risk", time.perf_counter() - t1)
        except RejectError as exc:
            self.observer.validation_failure(exc.code.value)
            return Verdict(exc, reducing)
        self._refuse_transient(reducing)
        return Verdict(None, reducing)

    def _refuse_transient(self, reducing: bool) -> None:
        if self.breaker.state == "open" and not reducing:
            raise BreakerOpenError("venue circuit breaker is open; only reduce-only orders pass")
        banned_for = self.is_banned()
        if banned_for > 0:
            raise ThrottleError(
                f"venue traffic paused for {banned_for:.1f}s after a 429/418",
                code=ErrorCode.VENUE_BANNED,
                retry_after_s=banned_for,
            )
