"""Dead-man's switch end to end (docs/tracking.md): ``oexec run`` keeps countdownCancelAll
armed for its resting orders; SIGKILLed, it stops re-arming and the venue cancels them
when the countdown runs out; started again, it stores CANCELED for each and publishes
``order.canceled``."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from oexec.client import AsyncClient
from oexec.config import VenueConfig
from oexec.models import OrderState
from oexec.sim.app import SimServer
from oexec.store import open_store
from oexec.venue.binance.adapter import BinanceUsdmVenue

from ..e2e.conftest import SimControl
from .helpers import limit, run_config, wait_for
from .test_sigkill_restart import Events, _agree, daemon_process

WINDOW_S = 4  # re-armed every WINDOW_S / 3 s while the daemon lives
ETH_SELL = dict(limit("dm-eth-1", "3500.00", side="SELL", qty="0.100"), symbol="ETHUSDT")
TUNING = f"""
[tracking]
poll_interval_s = 0.5
dead_man_switch_s = {WINDOW_S}
"""


async def _statuses(control: SimControl, coids: set[str]) -> dict[str, str]:
    truth = await control.orders()
    return {o["clientOrderId"]: o["status"] for o in truth if o["clientOrderId"] in coids}


def _armed(sim: SimServer) -> set[str]:
    return {symbol for _account, symbol in sim.exchange._state.countdowns}


async def test_killed_daemon_orders_are_canceled_by_the_venue_and_announced_after_restart(
    sim: SimServer, control: SimControl, tmp_path: Path
) -> None:
    run = run_config(sim, tmp_path, TUNING)
    async with daemon_process(run.path, sim) as proc:
        async with AsyncClient(run.front, timeout_s=5.0) as client:
            orders = [
                await client.place_order(**limit("dm-btc-1", "49000.0")),
                await client.place_order(**limit("dm-btc-2", "48000.0")),
                await client.place_order(**ETH_SELL),
            ]
        coids = {o.client_order_id for o in orders}
        await wait_for(lambda: asyncio.sleep(0, _armed(sim) == {"BTCUSDT", "ETHUSDT"}))
        # Alive, the daemon keeps re-arming: past one whole window nothing is canceled.
        await asyncio.sleep(WINDOW_S + 1)
        assert set((await _statuses(control, coids)).values()) == {"NEW"}
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    # Dead, nobody re-arms: the venue cancels everything once the countdown runs out,
    # by itself (no price move, no request).
    await wait_for(lambda: _all_canceled(control, coids), within_s=WINDOW_S + 5)
    assert _armed(sim) == set()

    events = Events(run.pub)
    async with daemon_process(run.path, sim):
        store = open_store(run.store)
        await store.start()
        venue = BinanceUsdmVenue(
            VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
        )
        await venue.start()
        try:
            await wait_for(lambda: _agree(store, venue), within_s=20)
            for order in orders:
                stored = await store.get(order.id)
                assert stored is not None and stored.state is OrderState.CANCELED, stored
            await wait_for(
                lambda: asyncio.sleep(0, set(events.orders("order.canceled")) >= coids),
                within_s=10,
            )
            await asyncio.sleep(0.5)  # late duplicates, if any, would arrive now
        finally:
            await venue.close()
            await store.close()
    await events.close()
    assert sorted(events.orders("order.canceled")) == sorted(coids)  # each once
    assert len(await control.orders()) == 3  # nothing re-placed


async def _all_canceled(control: SimControl, coids: set[str]) -> Any:
    statuses = await _statuses(control, coids)
    return len(statuses) == len(coids) and set(statuses.values()) == {"CANCELED"}
