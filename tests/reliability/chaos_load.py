"""The chaos run's load: many clients placing orders, a price that moves, and what each
client was told.

A client places an order under a fresh ``request_id`` and, like a careful strategy,
retries the SAME ``request_id`` when it has no answer (timeout, BUSY, SHUTTING_DOWN,
store unavailable, internal error) until it gets one or its budget runs out. Whatever
it was told last is recorded in ``Outcome``; the audit (chaos_audit.py) holds the
daemon to it. Some resting orders are cancelled again, also with retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from oexec.client import AsyncClient, ClientError
from oexec.client.errors import (
    ClientTimeoutError,
    ServerError,
    StoreFailureError,
    UnavailableError,
    UnknownOutcomeError,
)
from oexec.models import Order

#: symbol -> (quantity, tick, starting price); small orders, above each min notional.
SYMBOLS: dict[str, tuple[str, Decimal, Decimal]] = {
    "ETHUSDT": ("0.010", Decimal("0.01"), Decimal("3000")),
    "BNBUSDT": ("0.10", Decimal("0.010"), Decimal("600")),
}
#: No answer yet: ask again with the same request_id.
RETRY = (ClientTimeoutError, UnavailableError, StoreFailureError, ServerError)
CLIENT_TIMEOUT_S = 2.0
REQUEST_BUDGET_S = 90.0


@attrs.define
class Outcome:
    """What the client was finally told about one request_id."""

    request_id: str
    symbol: str
    kind: str  # "ok" (an order came back), "refused" (an error code), "no_answer"
    code: str = ""
    order: Order | None = None
    attempts: int = 0
    cancel_requested: bool = False


@attrs.define
class LoadStats:
    requested: int = 0
    attempts: int = 0
    retries: int = 0
    outcomes: dict[str, Outcome] = attrs.field(factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.kind == kind)


def order_shape(rng: random.Random, symbol: str, last: Decimal) -> dict[str, Any]:
    """MARKET (fills now), LIMIT near the price (fills as it moves) or far (rests)."""
    qty, tick, _ = SYMBOLS[symbol]
    side = rng.choice(["BUY", "SELL"])
    roll = rng.random()
    if roll < 0.3:
        return {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}
    offset = Decimal(str(rng.uniform(0.0005, 0.003) if roll < 0.8 else rng.uniform(0.02, 0.04)))
    sign = -1 if side == "BUY" else 1
    price = (last * (1 + sign * offset) / tick).to_integral_value() * tick
    return {
        "symbol": symbol,
        "side": side,
        "type": "LIMIT",
        "quantity": qty,
        "price": str(price),
        "time_in_force": "GTC",
    }


async def _with_retries(
    action: Callable[[], Any], budget_s: float, stats: LoadStats
) -> tuple[Any, int]:
    """Run ``action`` until it answers or raises a final error; returns (result, attempts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    attempts = 0
    while True:
        attempts += 1
        stats.attempts += 1
        try:
            return await action(), attempts
        except RETRY:
            if loop.time() > deadline:
                raise
            stats.retries += 1
            await asyncio.sleep(0.2 + random.random() * 0.3)


class LoadClient:
    """One strategy: its own DEALER connection, orders one after another."""

    def __init__(
        self,
        n: int,
        endpoint: str,
        stats: LoadStats,
        gate: asyncio.Event,
        prices: dict[str, Decimal],
        seed: int,
    ) -> None:
        self.n = n
        self.endpoint = endpoint
        self.stats = stats
        self.gate = gate
        self.prices = prices
        self.rng = random.Random(seed * 1000 + n)
        self.seq = 0

    async def run(self, quota: Callable[[], bool]) -> None:
        """Place orders while ``quota()`` allows; pause whenever the gate is closed."""
        async with AsyncClient(self.endpoint, timeout_s=CLIENT_TIMEOUT_S, retries=0) as client:
            while True:
                await self.gate.wait()
                if not quota():
                    return
                await self.one_order(client)

    async def one_order(self, client: AsyncClient) -> None:
        self.seq += 1
        symbol = self.rng.choice(sorted(SYMBOLS))
        request_id = f"c{self.n}-{self.seq}"
        shape = order_shape(self.rng, symbol, self.prices[symbol])
        outcome = Outcome(request_id, symbol, "no_answer")
        self.stats.requested += 1
        self.stats.outcomes[request_id] = outcome

        async def place() -> Order:
            return await client.place_order(request_id=request_id, **shape)

        try:
            order, outcome.attempts = await _with_retries(place, REQUEST_BUDGET_S, self.stats)
        except UnknownOutcomeError as exc:
            outcome.kind, outcome.code = "ok", str(exc.code)  # the daemon holds the order
            return
        except ClientError as exc:
            outcome.kind = "no_answer" if isinstance(exc, RETRY) else "refused"
            outcome.code = str(exc.code)
            return
        outcome.kind, outcome.order = "ok", order
        if shape["type"] == "LIMIT" and self.rng.random() < 0.3:
            outcome.cancel_requested = True
            await self._cancel(client, request_id)

    async def _cancel(self, client: AsyncClient, request_id: str) -> None:
        async def cancel() -> Order:
            return await client.cancel_order(request_id=request_id)

        # already filled, not cancelable, or no answer: the audit judges the final state
        with contextlib.suppress(ClientError):
            await _with_retries(cancel, 20.0, self.stats)


async def move_prices(
    set_price: Callable[[str, str], None],
    prices: dict[str, Decimal],
    stop: asyncio.Event,
    seed: int,
    period_s: float = 0.2,
) -> None:
    """A bounded random walk (±1 % around the start) so resting orders fill over time."""
    rng = random.Random(seed)
    while not stop.is_set():
        for symbol, (_, tick, start) in SYMBOLS.items():
            step = Decimal(str(rng.uniform(-0.0015, 0.0015)))
            moved = min(
                max(prices[symbol] * (1 + step), start * Decimal("0.99")), start * Decimal("1.01")
            )
            price = (moved / tick).to_integral_value() * tick
            try:
                await asyncio.to_thread(set_price, symbol, str(price))
                prices[symbol] = price
            except OSError:
                pass  # the venue is in an outage: its price stays where it was
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period_s)
