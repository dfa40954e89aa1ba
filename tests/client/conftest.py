from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator

import msgpack
import pytest
import zmq

from oexec.config import FrontConfig
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService

from .helpers import Responder


@pytest.fixture
def service() -> InMemoryOrderService:
    return InMemoryOrderService()


@pytest.fixture
async def front(service: InMemoryOrderService) -> AsyncIterator[FrontEnd]:
    config = FrontConfig(listen=("tcp://127.0.0.1:*",), workers=8, queue_size=128)
    fe = FrontEnd(service, config)
    await fe.start()
    yield fe
    if service.gate is not None:
        service.gate.set()
    await fe.stop(drain_timeout_s=2)


@pytest.fixture
def scripted_router() -> Iterator[Callable[[Responder], str]]:
    """A raw ROUTER in a thread answering each request with ``respond(request)``
    (None: no answer). For replies a real daemon never sends."""
    ctx = zmq.Context()
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(respond: Responder) -> str:
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        port = sock.bind_to_random_port("tcp://127.0.0.1")

        def serve() -> None:
            while not stop.is_set():
                if not sock.poll(20):
                    continue
                *route, body = sock.recv_multipart()
                answer = respond(msgpack.unpackb(body))
                if answer is not None:
                    sock.send_multipart([*route, answer])
            sock.close(linger=0)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"tcp://127.0.0.1:{port}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)
    ctx.term()
