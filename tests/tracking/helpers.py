"""Shared pieces of the tracking tests: order fields, event collection, convergence,
the config of an ``oexec run`` process against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from oexec.app import Daemon
from oexec.client import Subscriber
from oexec.config import StoreConfig
from oexec.service.reconcile import Difference, compare
from oexec.sim.app import SimServer

from ..ports import free_port


def limit(request_id: str, price: str, side: str = "BUY", qty: str = "0.010") -> dict[str, Any]:
    return dict(
        symbol="BTCUSDT",
        side=side,
        type="LIMIT",
        quantity=qty,
        price=price,
        time_in_force="GTC",
        request_id=request_id,
    )


async def wait_for(predicate: Callable[[], Awaitable[Any]], within_s: float = 15.0) -> Any:
    async with asyncio.timeout(within_s):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.1)


@attrs.define
class EventLog:
    """Every event from a daemon's PUB socket, counted by fill trade id and order id."""

    events: list[Any] = attrs.field(factory=list)
    gaps: int = 0

    def fills_by_trade(self) -> Counter[tuple[str, int]]:
        return Counter(
            (e.data["fill"]["symbol"], int(e.data["fill"]["trade_id"]))
            for e in self.events
            if e.topic == "fill"
        )

    def topic_by_order(self, topic: str) -> Counter[str]:
        return Counter(e.data["order"]["id"] for e in self.events if e.topic == topic)

    async def collect(self, endpoint: str) -> None:
        async with Subscriber(endpoint, topics=[""]) as sub:
            async for event in sub:
                self.gaps += event.gap is not None
                self.events.append(event)


async def converged(daemon: Daemon, history: int = 5000) -> list[Difference]:
    """Wait until the store agrees with the venue; returns the last differences."""
    last: list[Difference] = []

    async def agree() -> bool:
        nonlocal last
        last = await compare(daemon.store, daemon.venue, history_limit=history)
        return not last

    with contextlib.suppress(TimeoutError):
        await wait_for(agree, within_s=60)
    return last


@attrs.frozen
class RunConfig:
    """An ``oexec run`` config file and what a test needs to reach that daemon."""

    path: Path  # for ``oexec run --config``
    front: str
    pub: str
    store: StoreConfig  # the daemon's SQLite file, for the test's own look at the store


def run_config(sim: SimServer, tmp_path: Path, tuning: str) -> RunConfig:
    """Free front/PUB ports, an SQLite store in ``tmp_path``, the sim as venue, errors-only
    logs; ``tuning`` is the test's own TOML sections (what differs between tests)."""
    front, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    store = StoreConfig(sqlite_path=str(tmp_path / "store.sqlite"))
    path = tmp_path / "oexec.toml"
    path.write_text(
        f"""
[front]
listen = ["{front}"]
[events]
publish = ["{pub}"]
[http]
port = 0
[store]
sqlite_path = "{store.sqlite_path}"
[venue]
base_url = "{sim.base_url}"
[logging]
level = "ERROR"
{tuning}"""
    )
    return RunConfig(path, front, pub, store)
