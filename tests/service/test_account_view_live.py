"""AccountView against the simulator: a read at start, a gap re-read at once, account
updates re-read no more often than the throttle, stale until a read succeeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from oexec.config import VenueConfig
from oexec.models import PositionSide
from oexec.models.venue import AccountUpdate, BalanceUpdate, PositionUpdate, StreamGap
from oexec.service.account import AccountView, open_positions
from oexec.sim.app import SimServer
from oexec.venue.binance import BinanceUsdmVenue


@pytest.fixture
async def venue() -> AsyncIterator[BinanceUsdmVenue]:
    async with SimServer() as sim:
        config = VenueConfig(
            base_url=sim.base_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            time_sync_interval_s=0,
        )
        adapter = BinanceUsdmVenue(config)
        await adapter.start()
        yield adapter
        await adapter.close()


async def until(check: Callable[[], bool], within_s: float = 3.0) -> None:
    async with asyncio.timeout(within_s):
        while not check():  # noqa: ASYNC110 (a counter of the view's, no event to wait on)
            await asyncio.sleep(0.01)


async def test_reads_at_start_at_once_after_a_gap_and_throttled_after_updates(
    venue: BinanceUsdmVenue,
) -> None:
    view = AccountView(venue, refresh_after_update_s=0.01, min_interval_s=30.0)
    await view.start()
    try:
        assert view.refreshes == 1 and not view.snapshot.stale
        (usdt,) = view.snapshot.balances.values()
        assert usdt.asset == "USDT" and usdt.wallet_balance > 0
        assert open_positions(view.snapshot) == []

        view.on_stream_event(StreamGap("reconnected", 0))
        assert view.snapshot.stale
        await until(lambda: view.refreshes == 2)  # not held back by the 30 s throttle
        assert not view.snapshot.stale

        now = view.snapshot.updated_at + 10**13  # newer than anything the venue sent
        update = AccountUpdate(
            event_time=now,
            reason="ORDER",
            balances=(BalanceUpdate("USDT", Decimal("123"), Decimal("123")),),
            positions=(
                PositionUpdate(
                    "BTCUSDT", PositionSide.BOTH, Decimal("0.5"), Decimal("1"), Decimal("0")
                ),
            ),
        )
        view.on_stream_event(update)
        (leg,) = open_positions(view.snapshot)  # applied at once, no venue read
        assert leg.amount == Decimal("0.5") and leg.leverage > 0
        assert view.snapshot.balances["USDT"].wallet_balance == Decimal("123")
        await asyncio.sleep(0.3)
        assert view.refreshes == 2  # the update's re-read waits for the throttle
    finally:
        await view.stop()
