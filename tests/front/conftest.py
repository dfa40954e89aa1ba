from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService

from .helpers import Recorder

RECV_TIMEOUT_MS = 5000


@pytest.fixture
def service() -> InMemoryOrderService:
    return InMemoryOrderService()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def front_config() -> FrontConfig:
    return FrontConfig(listen=("tcp://127.0.0.1:*",), workers=4, queue_size=8, max_frame_bytes=4096)


@pytest.fixture
async def front(
    service: InMemoryOrderService, front_config: FrontConfig, recorder: Recorder
) -> AsyncIterator[FrontEnd]:
    fe = FrontEnd(service, front_config, on_metrics=recorder)
    await fe.start()
    yield fe
    if service.gate is not None:
        service.gate.set()
    await fe.stop(drain_timeout_s=2)


@pytest.fixture
def connect() -> AsyncIterator[Callable[..., zmq.asyncio.Socket]]:
    ctx = zmq.asyncio.Context()
    sockets: list[zmq.asyncio.Socket] = []

    def make(endpoint: str, kind: int = zmq.DEALER) -> zmq.asyncio.Socket:
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
        sock.connect(endpoint)
        sockets.append(sock)
        return sock

    yield make  # type: ignore[misc]
    for sock in sockets:
        sock.close(linger=0)
    ctx.term()
