"""Risk rules, the kill switch, and how reducing orders are treated."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from oexec.config import RiskConfig
from oexec.errors import ErrorCode, RiskError
from oexec.models import OrderIntent
from oexec.models.enums import OrderType, PositionSide, Side
from oexec.service.rules.context import MarketContext
from oexec.service.rules.risk import RiskManager, is_reducing

from .helpers import ctx, limit, market

D = Decimal


async def refused(manager: RiskManager, intent: OrderIntent, context: MarketContext) -> RiskError:
    with pytest.raises(RiskError) as caught:
        await manager.check(intent, context)
    return caught.value


def manager(**config: Any) -> RiskManager:
    return RiskManager(RiskConfig(**config))


async def test_defaults_disable_every_rule() -> None:
    await manager().check(limit(quantity=D("1E+6")), ctx(mark_price=None))


async def test_max_order_notional() -> None:
    risk = manager(max_order_notional=D("1000"))
    await risk.check(limit(quantity=D("0.02"), price=D("50000")), ctx())  # exactly 1000
    err = await refused(risk, limit(quantity=D("0.021"), price=D("50000")), ctx())
    assert err.code is ErrorCode.RISK_MAX_NOTIONAL
    assert err.details == {"rule": "max_order_notional", "value": "1050.000", "limit": "1000"}


async def test_max_order_notional_market_uses_mark_and_fails_closed_without_it() -> None:
    risk = manager(max_order_notional=D("1000"))
    err = await refused(risk, market(quantity=D("0.1")), ctx())
    assert err.code is ErrorCode.RISK_MAX_NOTIONAL
    err = await refused(risk, market(quantity=D("0.001")), ctx(mark_price=None))
    assert err.code is ErrorCode.RISK_MAX_NOTIONAL


async def test_max_position() -> None:
    risk = manager(max_position=D("1"))
    await risk.check(limit(quantity=D("1")), ctx())
    await risk.check(limit(quantity=D("0.5")), ctx(position=D("0.5")))
    err = await refused(risk, limit(quantity=D("0.501")), ctx(position=D("0.5")))
    assert err.code is ErrorCode.RISK_MAX_POSITION
    err = await refused(risk, limit(side=Side.SELL, quantity=D("1.5")), ctx(position=D("-0.1")))
    assert err.code is ErrorCode.RISK_MAX_POSITION


async def test_max_position_lets_orders_that_shrink_an_oversized_position() -> None:
    risk = manager(max_position=D("1"))
    await risk.check(limit(side=Side.SELL, quantity=D("1")), ctx(position=D("3")))
    # flipping through zero to a larger opposite position is not shrinking
    err = await refused(risk, limit(side=Side.SELL, quantity=D("5")), ctx(position=D("3")))
    assert err.code is ErrorCode.RISK_MAX_POSITION


async def test_max_open_orders_counts_plain_and_conditional() -> None:
    risk = manager(max_open_orders=3)
    await risk.check(limit(), ctx(open_orders=2))
    err = await refused(risk, limit(), ctx(open_orders=2, open_algo_orders=1))
    assert err.code is ErrorCode.RISK_MAX_OPEN_ORDERS


async def test_price_band() -> None:
    risk = manager(price_band=D("0.05"))
    await risk.check(limit(price=D("52500")), ctx())
    await risk.check(limit(side=Side.SELL, price=D("47500")), ctx())
    err = await refused(risk, limit(price=D("52500.1")), ctx())
    assert err.code is ErrorCode.RISK_PRICE_BAND
    err = await refused(risk, limit(price=D("47499.9")), ctx())
    assert err.code is ErrorCode.RISK_PRICE_BAND
    await risk.check(market(), ctx(mark_price=None))  # no price: no band


async def test_price_band_fails_closed_without_mark() -> None:
    risk = manager(price_band=D("0.05"))
    err = await refused(risk, limit(), ctx(mark_price=None))
    assert err.code is ErrorCode.RISK_PRICE_BAND


async def test_kill_switch_refuses_new_exposure_but_never_reducing_orders() -> None:
    risk = manager()
    assert not risk.halted
    risk.halt()
    risk.halt()
    assert risk.halted
    err = await refused(risk, limit(), ctx())
    assert err.code is ErrorCode.RISK_HALTED
    await risk.check(limit(side=Side.SELL, reduce_only=True), ctx(position=D("1")))
    hedge = ctx(dual_side_position=True)
    await risk.check(limit(side=Side.SELL, position_side=PositionSide.LONG), hedge)
    err = await refused(risk, limit(side=Side.BUY, position_side=PositionSide.LONG), hedge)
    assert err.code is ErrorCode.RISK_HALTED
    risk.resume()
    risk.resume()
    assert not risk.halted
    await risk.check(limit(), ctx())


async def test_reducing_orders_skip_size_limits_but_not_the_price_band() -> None:
    risk = manager(
        max_order_notional=D("1"), max_position=D("0.1"), max_open_orders=1, price_band=D("0.01")
    )
    exit_order = limit(side=Side.SELL, quantity=D("5"), reduce_only=True)
    await risk.check(exit_order, ctx(position=D("5"), open_orders=10))
    fat_finger = limit(side=Side.SELL, quantity=D("5"), reduce_only=True, price=D("10000"))
    err = await refused(risk, fat_finger, ctx(position=D("5")))
    assert err.code is ErrorCode.RISK_PRICE_BAND


@pytest.mark.parametrize(
    ("side", "position_side", "dual", "reduce_only", "expected"),
    [
        (Side.SELL, PositionSide.BOTH, False, True, True),
        (Side.SELL, PositionSide.BOTH, False, False, False),
        (Side.SELL, PositionSide.LONG, True, False, True),
        (Side.BUY, PositionSide.SHORT, True, False, True),
        (Side.BUY, PositionSide.LONG, True, False, False),
        (Side.SELL, PositionSide.SHORT, True, False, False),
    ],
)
def test_is_reducing(
    side: Side, position_side: PositionSide, dual: bool, reduce_only: bool, expected: bool
) -> None:
    intent = limit(side=side, position_side=position_side, reduce_only=reduce_only)
    assert is_reducing(intent.terms, ctx(dual_side_position=dual)) is expected


async def test_conditional_market_notional_uses_stop_price() -> None:
    risk = manager(max_order_notional=D("100"))
    stop = market(type=OrderType.STOP_MARKET, stop_price=D("60000"), quantity=D("0.002"))
    err = await refused(risk, stop, ctx(mark_price=D("1")))
    assert err.details["value"] == "120.000"
