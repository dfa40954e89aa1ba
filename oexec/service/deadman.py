"""The dead-man's switch: resting orders die at the venue if this daemon dies.

A venue that has one (``VenueKit.dead_man``) cancels every open order of a symbol when
its timer runs out; each call re-arms the timer and a timer of 0 ms disarms it. With
``tracking.dead_man_switch_s`` > 0 the daemon keeps the timer armed for every symbol it
has open orders in, re-arming every third of the window (so two missed heartbeats still
leave time), and disarms a symbol once it has no open orders left. A symbol that gets
its first open order (or an armed one that may have lost its last) wakes the loop at
once instead of waiting for the next beat.

A graceful stop leaves the timers armed on purpose: a stopped daemon is not watching
its orders either. Restart within the window and the switch is simply re-armed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from oexec.errors import OexecError
from oexec.models import Order
from oexec.service.ports import OrderStore

log = logging.getLogger("oexec.deadman")

MIN_BEAT_GAP_S = 0.2
Arm = Callable[[str, int], Awaitable[None]]  # (symbol, timer ms; 0 disarms)


def plan(armed: set[str], wanted: set[str]) -> tuple[list[str], list[str]]:
    """Which symbols to (re-)arm and which to disarm this beat."""
    return sorted(wanted), sorted(armed - wanted)


class DeadManSwitch:
    def __init__(self, store: OrderStore, arm: Arm, window_s: float) -> None:
        self.store = store
        self.arm = arm
        self.window_ms = int(window_s * 1000)
        self.interval_s = window_s / 3
        self.armed: set[str] = set()
        self.beats = 0
        self._wake = asyncio.Event()

    def on_order_change(self, before: Order | None, after: Order) -> None:
        """Writer listener: a first open order arms its symbol now; a last one may disarm."""
        armed = after.symbol in self.armed
        if after.is_terminal == armed:
            self._wake.set()

    async def beat(self) -> None:
        """Arm every symbol with open orders, disarm those without."""
        wanted = {order.symbol for order in await self.store.open_orders(None)}
        to_arm, to_disarm = plan(self.armed, wanted)
        for symbol in to_arm:
            try:
                await self.arm(symbol, self.window_ms)
                self.armed.add(symbol)
            except OexecError as exc:
                log.warning("dead-man switch: arming %s failed: %s", symbol, exc.message)
        for symbol in to_disarm:
            try:
                await self.arm(symbol, 0)
                self.armed.discard(symbol)
            except OexecError as exc:
                log.warning("dead-man switch: disarming %s failed: %s", symbol, exc.message)
        self.beats += 1

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except OexecError as exc:
                log.warning("dead-man switch beat failed: %s", exc.message)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            await asyncio.sleep(MIN_BEAT_GAP_S)  # a burst of changes costs one beat
