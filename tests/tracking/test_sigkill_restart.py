"""Done-when: SIGKILL ``oexec run`` mid-burst, change things at the venue while it is
down, start it again: the store converges to the venue's truth and the restarted
daemon announces what changed while it was down (order events and each missed fill)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from oexec.client import AsyncClient, ClientError
from oexec.config import VenueConfig
from oexec.service.client_ids import CLIENT_ORDER_ID_PREFIX
from oexec.service.ports import OrderStore
from oexec.service.reconcile import compare
from oexec.sim.app import SimServer
from oexec.store import SqliteStore, open_store
from oexec.venue.binance.adapter import BinanceUsdmVenue

from ..e2e.conftest import SimControl
from .burst import FAULTS, MID
from .helpers import run_config, wait_for
from .test_truth_under_faults import ROOMY

ROOT = Path(__file__).resolve().parents[2]


#: Sweeps often and lets the burst's faults through the breaker.
TUNING = """
[breaker]
failure_threshold = 10000
[tracking]
poll_interval_s = 0.5
sweep_interval_s = 2.0
"""


@contextlib.asynccontextmanager
async def daemon_process(
    config: Path, sim: SimServer, order_transport: str = "rest"
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = dict(os.environ, OEXEC_API_KEY=sim.api_key, OEXEC_API_SECRET=sim.api_secret)
    env["OEXEC_VENUE_ORDER_TRANSPORT"] = order_transport
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oexec.cli.main", "run", "--config", str(config),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"listening" not in await proc.stdout.readline():
                assert proc.returncode is None, "oexec run exited"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class Events:
    """A raw SUB socket that retries its connect every 5 ms (catches start-up events)."""

    def __init__(self, endpoint: str) -> None:
        self.sock = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 5)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.items: list[tuple[str, dict[str, Any]]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            topic, body = await self.sock.recv_multipart()
            self.items.append((topic.decode(), msgpack.unpackb(body)))

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sock.close(linger=0)

    def fills(self, *, redelivered: bool | None = None) -> list[tuple[str, int]]:
        """Fill keys published; ``redelivered`` True/False: only those (un)flagged."""
        fills = [
            d["fill"]
            for t, d in self.items
            if t == "fill" and (redelivered is None or bool(d.get("redelivered")) is redelivered)
        ]
        return [(f["symbol"], int(f["trade_id"])) for f in fills]

    def orders(self, topic: str) -> list[str]:
        return [d["order"]["client_order_id"] for t, d in self.items if t == topic]


async def _burst(front: str, stop: asyncio.Event, placed: list[str], seed: int) -> None:
    rng = random.Random(seed)
    async with AsyncClient(front, timeout_s=2.0, retries=0) as client:
        n = 0
        while not stop.is_set():
            n += 1
            side = rng.choice(["BUY", "SELL"])
            offset = rng.randint(1, 40) * 10
            price = MID - offset if side == "BUY" else MID + offset
            with contextlib.suppress(ClientError, TimeoutError):
                order = await client.place_order(
                    symbol="BTCUSDT", side=side, type="LIMIT", quantity="0.003",
                    price=f"{price}.0", time_in_force="GTC", request_id=f"k-{seed}-{n}",
                )  # fmt: skip
                placed.append(order.client_order_id)


async def _venue_truth(control: SimControl) -> dict[str, dict[str, Any]]:
    return {
        o["clientOrderId"]: o
        for o in await control.orders()
        if o["clientOrderId"].startswith(CLIENT_ORDER_ID_PREFIX)
    }


@pytest.mark.sim_config(rate_limits=ROOMY, seed=3)
@pytest.mark.parametrize("order_transport", ["rest", "ws"])
async def test_sigkill_mid_burst_then_restart_converges_with_events(
    sim: SimServer, control: SimControl, tmp_path: Path, order_transport: str
) -> None:
    """With "ws" the killed daemon's in-flight submits were WebSocket API requests."""
    run = run_config(sim, tmp_path, TUNING)
    await control.price("BTCUSDT", f"{MID}.0")
    first = Events(run.pub)
    async with daemon_process(run.path, sim, order_transport) as proc:
        for kind, probability, path, params in FAULTS:
            await control.fault(kind, probability=probability, path=path, params=params)
        stop, placed = asyncio.Event(), []
        clients = [asyncio.create_task(_burst(run.front, stop, placed, s)) for s in range(6)]
        await wait_for(lambda: asyncio.sleep(0, len(placed) >= 60), within_s=30)
        proc.send_signal(signal.SIGKILL)  # mid-burst: requests in flight
        await proc.wait()
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
    await first.close()
    await control.clear_faults()

    # While it is down: fills and cancels it cannot see.
    before = await _venue_truth(control)
    await control.price("BTCUSDT", f"{MID - 200}.0")  # BUYs at >= MID-200 fill
    await _cancel_open_sells(sim, before)
    after = await _venue_truth(control)
    changed = {c for c, o in after.items() if o["status"] != before[c]["status"]}
    assert changed, "the test must change something while the daemon is down"
    ws_places = sim.state.stats.requests_by_path["/ws-fapi/v1 order.place"]
    assert (ws_places > 0) is (order_transport == "ws")

    # the sequence continues across the restart (issue 17): from what the log holds
    log_store = SqliteStore(run.store.sqlite_path)
    logged_before, _ = await log_store.events_open()
    await log_store.close()
    second = Events(run.pub)
    async with daemon_process(run.path, sim, order_transport):
        store = open_store(run.store)
        await store.start()
        venue = BinanceUsdmVenue(
            VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
        )
        await venue.start()
        try:
            await wait_for(lambda: _agree(store, venue), within_s=30)
            stored_fills: set[tuple[str, int]] = set()
            for coid in after:
                order = await store.get_by_client_order_id(coid)
                assert order is not None, coid
                stored_fills |= {(f.symbol, f.trade_id) for f in await store.fills(order.id)}
        finally:
            await venue.close()
            await store.close()
        await asyncio.sleep(0.5)
    await second.close()

    # nothing missed at start: the first event heard is the new run's first
    assert second.items and second.items[0][1]["seq"] == logged_before + 1
    announced = set(second.orders("order.filled")) | set(second.orders("order.canceled"))
    assert changed <= announced
    fills_while_down = {
        (o["symbol"], int(f["tradeId"]))
        for c, o in after.items()
        for f in o["fills"]
        if c in changed
    }
    assert fills_while_down <= set(second.fills())
    # Each fill published once; a repeat is allowed only as a flagged redelivery of an
    # event the killed daemon published without its outbox acknowledgement landing.
    originals = first.fills(redelivered=False) + second.fills(redelivered=False)
    assert len(originals) == len(set(originals)), "a fill published twice, unflagged"
    everything = first.fills() + second.fills()
    # the outbox: every fill the store holds was published by one of the two runs
    assert stored_fills <= set(everything), stored_fills - set(everything)
    truth_fills = {(o["symbol"], int(f["tradeId"])) for o in after.values() for f in o["fills"]}
    assert set(everything) <= truth_fills


async def _agree(store: OrderStore, venue: BinanceUsdmVenue) -> bool:
    return not await compare(store, venue, history_limit=1000)


async def _cancel_open_sells(sim: SimServer, truth: dict[str, dict[str, Any]]) -> None:
    venue = BinanceUsdmVenue(
        VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
    )
    await venue.start()
    try:
        for coid, order in truth.items():
            if order["status"] == "NEW" and order["side"] == "SELL":
                await venue.cancel_order("BTCUSDT", client_order_id=coid)
    finally:
        await venue.close()
