"""What the pre-trade rules may know besides the order and the symbol's filters.

The pipeline fills it from its in-memory market state (oexec/service/market.py) just
before the checks; the rules themselves do no I/O. All of it is advisory: a missing
mark price makes the price-dependent venue filters defer to the venue, while the risk
rules fail closed.
"""

from __future__ import annotations

from decimal import Decimal

import attrs


@attrs.frozen(slots=True)
class MarketContext:
    """Market and account facts for one symbol at one instant.

    ``open_orders`` counts the symbol's open plain (LIMIT/MARKET) orders and
    ``open_algo_orders`` its open conditional ones; the venue's MAX_NUM_ORDERS limits
    their sum, MAX_NUM_ALGO_ORDERS the latter.
    ``position`` is the signed net base quantity (negative = short); zero also means
    "not known", so rules never reject a reduce-only order on a zero position.
    ``now_ms`` is the venue-aligned time in ms (0 = unknown: time rules are skipped).
    """

    mark_price: Decimal | None
    open_orders: int = 0
    open_algo_orders: int = 0
    position: Decimal = Decimal(0)  # signed base qty on this symbol
    dual_side_position: bool = False  # hedge mode (LONG/SHORT legs)
    now_ms: int = 0
