"""The adapter's account endpoints against the simulator: positionRisk (v2), account
balances, leverage and margin type, and the ACCOUNT_UPDATE fields the view reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from oexec.config import VenueConfig
from oexec.errors import VenueRejectedError
from oexec.models import OrderTerms, OrderType, PositionSide, Side
from oexec.models.venue import AccountUpdate
from oexec.service.ports import VenueOrderRequest
from oexec.sim.app import SimServer
from oexec.venue.binance import BinanceUsdmVenue, BinanceUserStream


@pytest.fixture
async def sim_and_venue() -> AsyncIterator[tuple[SimServer, BinanceUsdmVenue]]:
    async with SimServer() as sim:
        config = VenueConfig(
            base_url=sim.base_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            time_sync_interval_s=0,
        )
        venue = BinanceUsdmVenue(config)
        await venue.start()
        yield sim, venue
        await venue.close()


def market_buy(cid: str, qty: str) -> VenueOrderRequest:
    terms = OrderTerms(
        symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=Decimal(qty)
    )
    return VenueOrderRequest(client_order_id=cid, terms=terms)


async def test_positions_balances_and_settings(
    sim_and_venue: tuple[SimServer, BinanceUsdmVenue],
) -> None:
    sim, venue = sim_and_venue
    (usdt,) = await venue.account_balances()
    truth = sim.exchange.balance(sim.config.accounts[0].account_id, 2)[0]
    assert usdt.asset == "USDT" and usdt.wallet_balance == Decimal(truth["balance"])
    assert usdt.available_balance == Decimal(truth["availableBalance"])
    flat = {p.symbol: p for p in await venue.position_risk()}
    assert flat["BTCUSDT"].amount == 0 and flat["BTCUSDT"].margin_type == "cross"
    assert flat["BTCUSDT"].leverage > 0

    change = await venue.set_leverage("BTCUSDT", 7)
    assert (change.symbol, change.leverage) == ("BTCUSDT", 7)
    assert (await venue.set_margin_type("BTCUSDT", "isolated")).margin_type == "isolated"
    again = await venue.set_margin_type("BTCUSDT", "ISOLATED")  # -4046 is not an error
    assert again.margin_type == "isolated"
    with pytest.raises(VenueRejectedError):
        await venue.set_margin_type("BTCUSDT", "sideways")
    with pytest.raises(VenueRejectedError):
        await venue.set_leverage("BTCUSDT", 1000)

    stream = BinanceUserStream(venue)
    events = stream.events()
    await asyncio.wait_for(anext(events), 5)  # the first-connect gap
    await venue.place_order(market_buy("acct-1", "0.010"))
    async with asyncio.timeout(5):
        update = await anext(events)
        while not isinstance(update, AccountUpdate):
            update = await anext(events)
    await stream.close()
    (leg,) = [p for p in update.positions if p.symbol == "BTCUSDT"]
    (btc,) = await venue.position_risk("BTCUSDT")
    assert btc.position_side is PositionSide.BOTH and leg.amount == btc.amount == Decimal("0.010")
    assert (btc.leverage, btc.margin_type) == (7, "isolated")
    assert leg.entry_price == btc.entry_price and leg.break_even_price == btc.break_even_price
    assert leg.margin_type == "isolated"
