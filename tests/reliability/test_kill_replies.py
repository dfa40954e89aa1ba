"""Issue 14's crash test: the daemon SIGKILLed at random instants during a burst with
submit faults that leave the outcome unknown (timeout and reset after the venue accepted),
on both stores, then restarted: no duplicate venue order, none lost, and every reply a
client got matches what the store holds.

The early claim (oexec/store/claim_log.py) sends an order before its claim is written on
SQLite; these kills land anywhere in that window too. Every request that got no answer
is retried with its request_id after the last restart - the retry must find the first
attempt's order, never place a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from oexec.client import AsyncClient, ClientError
from oexec.config import StoreConfig
from oexec.service.client_ids import CLIENT_ORDER_ID_PREFIX
from oexec.store import open_store

from .procs import DaemonProc, RedisServer, SimHost, wait_until

FAULTS = (
    {"kind": "timeout_after_accept", "probability": 0.05, "path": "/fapi/v1/order"},
    {"kind": "reset_after_accept", "probability": 0.05, "path": "/fapi/v1/order"},
)
MID = 50_000
ROUNDS = 2
CLIENTS = 4


def order_fields(rng: random.Random, request_id: str) -> dict[str, Any]:
    """Resting limits (most) and orders that fill at once (some): both outcomes matter."""
    side = rng.choice(["BUY", "SELL"])
    if rng.random() < 0.3:
        return dict(symbol="BTCUSDT", side=side, type="MARKET", quantity="0.003",
                    request_id=request_id)  # fmt: skip
    offset = rng.randint(5, 50) * 10
    price = MID - offset if side == "BUY" else MID + offset
    return dict(symbol="BTCUSDT", side=side, type="LIMIT", quantity="0.003",
                price=f"{price}.0", time_in_force="GTC", request_id=request_id)  # fmt: skip


async def burst(
    endpoint: str, seed: int, sent: dict[str, dict[str, Any]], replies: dict[str, Any]
) -> None:
    """Place orders until cancelled; every request is remembered, every reply too."""
    rng = random.Random(seed)
    async with AsyncClient(endpoint, timeout_s=2.0, retries=0) as client:
        n = 0
        while True:
            n += 1
            request_id = f"kill-{seed}-{n}"
            fields = order_fields(rng, request_id)
            sent[request_id] = fields
            with contextlib.suppress(ClientError, TimeoutError):
                replies[request_id] = await client.place_order(**fields)


async def run_round(
    endpoint: str, round_no: int, kill_after_s: float, kill: Any, sent: dict[str, Any],
    replies: dict[str, Any],
) -> None:  # fmt: skip
    tasks = [
        asyncio.create_task(burst(endpoint, round_no * 100 + c, sent, replies))
        for c in range(CLIENTS)
    ]
    await asyncio.sleep(kill_after_s)
    await asyncio.to_thread(kill)  # SIGKILL with requests in flight
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def retry_unanswered(
    endpoint: str, sent: dict[str, dict[str, Any]], replies: dict[str, Any],
    errors: dict[str, str],
) -> None:  # fmt: skip
    async with AsyncClient(endpoint, timeout_s=10.0, retries=3) as client:
        for request_id, fields in sent.items():
            if request_id in replies:
                continue
            try:
                replies[request_id] = await client.place_order(**fields)
            except ClientError as exc:
                errors[request_id] = f"{type(exc).__name__}: {exc}"


async def audit(
    store_config: StoreConfig, sim: SimHost, replies: dict[str, Any], errors: dict[str, str]
) -> None:
    venue = [o for o in sim.orders() if o["clientOrderId"].startswith(CLIENT_ORDER_ID_PREFIX)]
    coids = [o["clientOrderId"] for o in venue]
    assert len(coids) == len(set(coids)), "a request reached the venue twice"
    store = open_store(store_config)
    await store.start()
    try:
        for coid in coids:  # nothing the venue has is unknown to the store
            assert await store.get_by_client_order_id(coid) is not None, coid
        for request_id, reply in replies.items():
            stored = await store.get_by_request_id(request_id)
            assert stored is not None, request_id
            assert (stored.id, stored.client_order_id) == (reply.id, reply.client_order_id)
            assert stored.filled_quantity >= reply.filled_quantity
            assert stored.version >= reply.version
        for request_id in errors:  # an error answer: never an order the venue has
            stored = await store.get_by_request_id(request_id)
            assert stored is None or stored.client_order_id not in coids, (request_id, stored)
    finally:
        await store.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "redis"])
def test_sigkill_at_random_instants_keeps_one_order_per_request(
    tmp_path: Path, store_kind: str
) -> None:
    rng = random.Random(14)
    sim = SimHost(tmp_path, rate_limits=False)
    sim.start()
    redis = RedisServer(tmp_path) if store_kind == "redis" else None
    try:
        if redis is not None:
            redis.start()
        daemon = DaemonProc(
            tmp_path, sim, store=redis.url if redis else "", log_level="WARNING",
            extra_env={"OEXEC_BREAKER_FAILURE_THRESHOLD": "100000"},
        )  # fmt: skip
        store_config = (
            StoreConfig(url=redis.url)
            if redis
            else StoreConfig(sqlite_path=str(daemon.sqlite_path))
        )
        sim.control("POST", "price", {"symbol": "BTCUSDT", "price": f"{MID}.0"})
        for fault in FAULTS:
            sim.control("POST", "faults", fault)
        sent: dict[str, dict[str, Any]] = {}
        replies: dict[str, Any] = {}
        try:
            for round_no in range(ROUNDS):
                daemon.start()
                asyncio.run(
                    run_round(
                        daemon.endpoint, round_no, rng.uniform(0.5, 2.0), daemon.kill, sent,
                        replies,
                    )
                )  # fmt: skip
            sim.control("DELETE", "faults")
            daemon.start()
            errors: dict[str, str] = {}
            asyncio.run(retry_unanswered(daemon.endpoint, sent, replies, errors))
            wait_until(lambda: not _unsettled(daemon), 30, "unknown outcomes resolved")
            # every request has an answer now: its order, or a final error (e.g. a submit
            # proven never placed, whose claim stays: the retry gets that outcome again)
            assert len(sent) >= 20 and set(sent) == set(replies) | set(errors)
            asyncio.run(audit(store_config, sim, replies, errors))
        finally:
            daemon.stop()
    finally:
        if redis is not None:
            redis.stop()
        sim.stop()


def _unsettled(daemon: DaemonProc) -> bool:
    """Whether the daemon still holds orders in SUBMITTING/UNKNOWN (being resolved)."""

    async def check() -> bool:
        async with AsyncClient(daemon.endpoint, timeout_s=5.0) as client:
            return any(
                o.state.value in ("SUBMITTING", "UNKNOWN") for o in await client.open_orders()
            )

    return asyncio.run(check())
