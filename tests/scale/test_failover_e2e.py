"""SIGKILL of the daemon that owns the user stream, mid-burst: three ``oexec run``
processes on one Redis and one simulator. The stream moves to another daemon, and in
the end the store equals the venue's ``/_sim/orders``, every fill recorded once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from oexec.client import AsyncClient, ClientError
from oexec.models import OrderState
from oexec.sim.app import SimServer
from oexec.store import RedisStore

from ..e2e.conftest import REDIS_URL, SimControl
from ..ports import free_port
from .conftest import eventually

DAEMONS = 3
READY_TIMEOUT_S = 30.0


def config_text(sim: SimServer, prefix: str, name: str, listen: str, publish: str) -> str:
    return f"""
[front]
listen = ["{listen}"]
[events]
publish = ["{publish}"]
[http]
port = 0
[store]
url = "{REDIS_URL}"
[venue]
base_url = "{sim.base_url}"
recv_window_ms = 1000
[tracking]
poll_interval_s = 0.5
[cluster]
key_prefix = "{prefix}"
instance_id = "{name}"
lease_ttl_s = 1.5
lease_renew_s = 0.3
[logging]
level = "WARNING"
"""


class DaemonProcess:
    def __init__(self, name: str, proc: asyncio.subprocess.Process, endpoint: str) -> None:
        self.name = name
        self.proc = proc
        self.endpoint = endpoint


async def start_daemon(sim: SimServer, tmp: Path, prefix: str, name: str) -> DaemonProcess:
    listen = f"tcp://127.0.0.1:{free_port()}"
    path = tmp / f"{name}.toml"
    path.write_text(config_text(sim, prefix, name, listen, f"tcp://127.0.0.1:{free_port()}"))
    env = {**os.environ, "OEXEC_API_KEY": sim.api_key, "OEXEC_API_SECRET": sim.api_secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oexec.cli.main",
        "run",
        "--config",
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
    assert line.startswith(b"oexec: listening"), line
    return DaemonProcess(name, proc, listen)


@pytest.fixture
async def cluster(sim: SimServer, tmp_path: Path) -> AsyncIterator[tuple[str, list[DaemonProcess]]]:
    prefix = f"oexec-test-{uuid.uuid4().hex[:10]}:"
    procs: list[DaemonProcess] = []
    try:
        procs = list(
            await asyncio.gather(
                *(start_daemon(sim, tmp_path, prefix, f"d{n}") for n in range(DAEMONS))
            )
        )
        yield prefix, procs
    finally:
        for daemon in procs:
            if daemon.proc.returncode is None:
                daemon.proc.send_signal(signal.SIGTERM)
        for daemon in procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(daemon.proc.wait(), 15)
            if daemon.proc.returncode is None:
                daemon.proc.kill()
                await daemon.proc.wait()
        client = aioredis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def lease_holder(redis: aioredis.Redis, prefix: str) -> tuple[str, int] | None:
    value = await redis.get(f"{prefix}userstream:lease")
    if value is None:
        return None
    owner, _, token = value.decode().rpartition("|")
    return owner, int(token)


def order_args(n: int) -> dict[str, Any]:
    if n % 2:  # market: fills at once, its fills come through the user stream
        return dict(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
    # resting until the price moves through it
    return dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity="0.010",
        price="45000.0",
        time_in_force="GTC",
    )


@pytest.mark.timeout(120)
async def test_sigkill_of_the_stream_owner_mid_burst(
    cluster: tuple[str, list[DaemonProcess]], control: SimControl
) -> None:
    prefix, procs = cluster
    redis = aioredis.from_url(REDIS_URL)
    store = RedisStore.from_url(REDIS_URL, prefix=prefix)
    await store.start()
    try:
        await eventually(lambda: _held(redis, prefix), timeout_s=10, what="a user-stream owner")
        first = await lease_holder(redis, prefix)
        assert first is not None
        owner = next(p for p in procs if p.name == first[0])
        outcomes: dict[str, str] = {}

        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(AsyncClient(p.endpoint, timeout_s=3.0))
                for p in procs
            ]

            async def one(n: int) -> None:
                await asyncio.sleep(0.02 * n)  # a burst spread over ~1.2 s
                try:
                    await clients[n % DAEMONS].place_order(**order_args(n), request_id=f"fo-{n}")
                    outcomes[f"fo-{n}"] = "ok"
                except ClientError as exc:
                    outcomes[f"fo-{n}"] = str(exc.code)

            async def kill_mid_burst() -> None:
                await asyncio.sleep(0.6)
                owner.proc.send_signal(signal.SIGKILL)

            await asyncio.gather(*(one(n) for n in range(60)), kill_mid_burst())
        await owner.proc.wait()

        async def moved() -> bool:
            holder = await lease_holder(redis, prefix)
            return holder is not None and holder[0] != first[0] and holder[1] > first[1]

        await eventually(moved, timeout_s=10, what="the stream to move to another daemon")
        assert await _stream_connections(control) == 1

        await control.price("BTCUSDT", "44000")  # the resting buys fill now
        with contextlib.suppress(AssertionError):
            await eventually(
                lambda: _store_matches_venue(store, control), timeout_s=30, what="store == venue"
            )
        assert await differences(store, control) == []
        assert sum(v == "ok" for v in outcomes.values()) >= 20, outcomes
    finally:
        await store.close()
        await redis.aclose()


async def _held(redis: aioredis.Redis, prefix: str) -> bool:
    return await lease_holder(redis, prefix) is not None


async def _stream_connections(control: SimControl) -> int:
    return int((await control.stats())["stream_connections"])


async def _store_matches_venue(store: RedisStore, control: SimControl) -> bool:
    return not await differences(store, control)


async def differences(store: RedisStore, control: SimControl) -> list[str]:
    """Every venue order is in the store with the venue's state, quantity and fills
    (each trade once); every other stored order provably never reached the venue."""
    truth = {o["clientOrderId"]: o for o in await control.orders()}
    stored = await store.history(None, limit=1000)
    by_coid = {o.client_order_id: o for o in stored}
    problems = [f"{coid}: not in the store" for coid in set(truth) - set(by_coid)]
    for coid, venue in truth.items():
        order = by_coid.get(coid)
        if order is None:
            continue
        trade_ids = sorted(f.trade_id for f in await store.fills(order.id))
        venue_ids = sorted(int(f["tradeId"]) for f in venue["fills"])
        mine = (order.state.value, order.filled_quantity, trade_ids)
        theirs = (venue["status"], Decimal(venue["executedQty"]), venue_ids)
        if mine != theirs:
            problems.append(f"{order.request_id}: store {mine} venue {theirs}")
    for coid, order in by_coid.items():
        if coid not in truth and order.state is not OrderState.REJECTED:
            problems.append(f"{order.request_id}: {order.state.value}, not at the venue")
    return problems
