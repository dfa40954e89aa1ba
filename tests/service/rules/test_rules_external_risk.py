"""The external risk hook against a real ZeroMQ REP service on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from oexec.config import RiskConfig
from oexec.errors import ErrorCode, RiskError
from oexec.models.enums import Side
from oexec.service.rules.external_risk import ExternalRiskClient, judge_reply
from oexec.service.rules.risk import RiskManager

from .helpers import ctx, limit

Reply = Callable[[dict[str, Any]], Any]  # request -> reply map, bytes, or None (no reply)


class RiskService:
    """A REP socket answering with ``policy``; records what it was asked."""

    def __init__(self, context: zmq.asyncio.Context, policy: Reply) -> None:
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.policy = policy
        self.seen: list[dict[str, Any]] = []
        self.delay_first_s = 0.0

    async def serve(self) -> None:
        while True:
            request = msgpack.unpackb(await self.socket.recv(), raw=False)
            self.seen.append(request)
            if self.delay_first_s and len(self.seen) == 1:
                await asyncio.sleep(self.delay_first_s)
            reply = self.policy(request)
            body = reply if isinstance(reply, bytes) else msgpack.packb(reply)
            await self.socket.send(body)


@pytest.fixture
async def zctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)


@contextlib.asynccontextmanager
async def service(context: zmq.asyncio.Context, policy: Reply) -> AsyncIterator[RiskService]:
    svc = RiskService(context, policy)
    task = asyncio.create_task(svc.serve())
    try:
        yield svc
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        svc.socket.close(linger=0)


def approve_small(request: dict[str, Any]) -> dict[str, Any]:
    qty = Decimal(request["intent"]["quantity"])
    return {"ok": qty <= 1, "reason": "too big" if qty > 1 else ""}


async def test_approves_and_rejects_with_the_service_reason(zctx: zmq.asyncio.Context) -> None:
    async with service(zctx, approve_small) as svc:
        client = ExternalRiskClient(svc.endpoint, timeout_ms=2000, context=zctx)
        try:
            await client.check(limit(quantity=Decimal("0.5")))
            with pytest.raises(RiskError) as caught:
                await client.check(limit(quantity=Decimal("2")))
        finally:
            await client.close()
    assert caught.value.code is ErrorCode.RISK_EXTERNAL_REJECT
    assert caught.value.details == {"reason": "too big"}
    sent = svc.seen[0]["intent"]
    assert sent["quantity"] == "0.5" and sent["side"] == "BUY" and sent["price"] == "50000.0"


async def test_no_answer_in_time_fails_closed(zctx: zmq.asyncio.Context) -> None:
    async with service(zctx, approve_small) as svc:
        svc.delay_first_s = 0.5
        client = ExternalRiskClient(svc.endpoint, timeout_ms=50, context=zctx)
        try:
            with pytest.raises(RiskError) as caught:
                await client.check(limit())
            assert caught.value.code is ErrorCode.RISK_EXTERNAL_TIMEOUT
            # the late reply to the first request must not answer the second one
            with pytest.raises(RiskError) as second:
                await client.check(limit(quantity=Decimal("5")))
            await asyncio.sleep(0.6)
            with pytest.raises(RiskError) as third:
                await client.check(limit(quantity=Decimal("5")))
        finally:
            await client.close()
    assert second.value.code is ErrorCode.RISK_EXTERNAL_TIMEOUT
    assert third.value.code is ErrorCode.RISK_EXTERNAL_REJECT


async def test_concurrent_checks_get_their_own_answers(zctx: zmq.asyncio.Context) -> None:
    async with service(zctx, approve_small) as svc:
        client = ExternalRiskClient(svc.endpoint, timeout_ms=5000, context=zctx)
        try:
            quantities = [Decimal("0.5"), Decimal("3"), Decimal("1"), Decimal("7")]
            results = await asyncio.gather(
                *(client.check(limit(quantity=q)) for q in quantities), return_exceptions=True
            )
        finally:
            await client.close()
    assert [r is None for r in results] == [True, False, True, False]


async def test_nobody_listening_times_out(zctx: zmq.asyncio.Context) -> None:
    probe = zctx.socket(zmq.REP)
    port = probe.bind_to_random_port("tcp://127.0.0.1")
    probe.close(linger=0)  # a free port with nothing behind it
    client = ExternalRiskClient(f"tcp://127.0.0.1:{port}", timeout_ms=50, context=zctx)
    try:
        with pytest.raises(RiskError) as caught:
            await client.check(limit())
    finally:
        await client.close()
    assert caught.value.code is ErrorCode.RISK_EXTERNAL_TIMEOUT


@pytest.mark.parametrize(
    "body",
    [b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"ok": "yes"}), msgpack.packb({"reason": 1})],
)
def test_unreadable_replies_reject(body: bytes) -> None:
    with pytest.raises(RiskError) as caught:
        judge_reply(body)
    assert caught.value.code is ErrorCode.RISK_EXTERNAL_REJECT


async def test_risk_manager_builds_and_uses_the_client_from_config(
    zctx: zmq.asyncio.Context,
) -> None:
    async with service(zctx, lambda _req: {"ok": False, "reason": "desk closed"}) as svc:
        risk = RiskManager(RiskConfig(external_endpoint=svc.endpoint, external_timeout_ms=2000))
        try:
            with pytest.raises(RiskError) as caught:
                await risk.check(limit(), ctx())
            # reducing orders do not depend on the external service
            await risk.check(limit(side=Side.SELL, reduce_only=True), ctx(position=Decimal(1)))
        finally:
            await risk.close()
    assert caught.value.code is ErrorCode.RISK_EXTERNAL_REJECT
    assert len(svc.seen) == 1
