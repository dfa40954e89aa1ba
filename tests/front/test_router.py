"""FrontEnd over real ZeroMQ sockets: REQ and DEALER, errors, BUSY, stop()."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.errors import NotFoundError
from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService

from .helpers import Recorder, place_fields, req

Connect = Callable[..., zmq.asyncio.Socket]


async def dealer_call(sock: zmq.asyncio.Socket, body: bytes) -> dict[str, Any]:
    await sock.send(body)
    frames = await sock.recv_multipart()
    assert len(frames) == 1
    return msgpack.unpackb(frames[0])


async def test_req_client_place_and_get(
    front: FrontEnd, connect: Connect, service: InMemoryOrderService
) -> None:
    sock = connect(front.endpoints[0], zmq.REQ)
    await sock.send(req("place_order", id="a", **place_fields()))
    reply = msgpack.unpackb(await sock.recv())
    assert reply["v"] == 1 and reply["id"] == "a" and reply["ok"] is True
    order = reply["result"]["order"]
    assert order["quantity"] == "0.010" and order["state"] == "NEW" and order["version"] == 1
    await sock.send(req("get_order", id=2, order_id=order["id"]))
    got = msgpack.unpackb(await sock.recv())
    assert got["ok"] and got["result"]["order"]["id"] == order["id"]
    assert service.calls == ["place_order", "get_order"]


async def test_dealer_many_in_flight(front: FrontEnd, connect: Connect) -> None:
    sock = connect(front.endpoints[0])
    n = 40
    for i in range(n):
        await sock.send(req("place_order", id=i, **place_fields(f"r{i}")))
    replies = [msgpack.unpackb(await sock.recv()) for _ in range(n)]
    ok = [r for r in replies if r["ok"]]
    busy = [r for r in replies if not r["ok"]]
    assert all(r["error"]["code"] == "BUSY" for r in busy)
    assert sorted(r["id"] for r in replies) == list(range(n))
    assert all(r["result"]["order"]["request_id"] == f"r{r['id']}" for r in ok)


async def test_dealer_with_delimiter_gets_delimiter_back(front: FrontEnd, connect: Connect) -> None:
    sock = connect(front.endpoints[0])
    await sock.send_multipart([b"", req("health")])
    frames = await sock.recv_multipart()
    assert frames[0] == b"" and len(frames) == 2
    assert msgpack.unpackb(frames[1])["result"]["status"] == "ok"


async def test_all_ops(front: FrontEnd, connect: Connect) -> None:
    sock = connect(front.endpoints[0])
    first = await dealer_call(sock, req("place_order", **place_fields("a")))
    await dealer_call(sock, req("place_order", **place_fields("b", symbol="ETHUSDT")))
    opened = await dealer_call(sock, req("open_orders", symbol="BTCUSDT"))
    assert [o["request_id"] for o in opened["result"]["orders"]] == ["a"]
    canceled = await dealer_call(sock, req("cancel_order", request_id="a"))
    assert canceled["result"]["order"]["state"] == "CANCELED"
    assert canceled["result"]["order"]["id"] == first["result"]["order"]["id"]
    again = await dealer_call(sock, req("cancel_order", request_id="a"))
    assert again["error"]["code"] == "ORDER_NOT_CANCELABLE"
    everything = await dealer_call(sock, req("cancel_all", symbol="ETHUSDT"))
    assert [o["symbol"] for o in everything["result"]["orders"]] == ["ETHUSDT"]
    history = await dealer_call(sock, req("order_history", limit=1))
    assert len(history["result"]["orders"]) == 1
    halted = await dealer_call(sock, req("halt", cancel_all=True))
    assert halted["result"]["halted"] is True
    resumed = await dealer_call(sock, req("resume"))
    assert resumed["result"] == {"halted": False}


# --- malformed input: typed error, service never called ---------------------------------
MALFORMED: list[tuple[bytes, str]] = [
    (b"\xc1garbage", "BAD_FRAME"),
    (msgpack.packb([1, 2, 3]), "BAD_FRAME"),
    (msgpack.packb("text"), "BAD_FRAME"),
    (msgpack.packb({"v": 1, "id": 1, "op": "place_order"}), "BAD_REQUEST"),
    (req("place_order", **place_fields(quantity=0.01)), "BAD_REQUEST"),
    (req("place_order", **place_fields(quantity="NaN")), "BAD_REQUEST"),
    (req("place_order", **place_fields(quantity="Infinity")), "BAD_REQUEST"),
    (req("place_order", **place_fields(quantity="-1")), "BAD_REQUEST"),
    (req("place_order", **place_fields(price="1.0000000000000000001")), "BAD_REQUEST"),
    (req("place_order", **place_fields(side=3)), "BAD_REQUEST"),
    (req("place_order", **place_fields(symbol="ＢＴＣ")), "BAD_REQUEST"),
    (req("place_order", **place_fields(request_id="é" * 3)), "BAD_REQUEST"),
    (req("place_order", **place_fields(request_id="r" * 65)), "BAD_REQUEST"),
    (req("self_destruct"), "UNKNOWN_OP"),
    (msgpack.packb({"v": 99, "id": 1, "op": "health"}), "UNSUPPORTED_VERSION"),
    (req("health", padding="x" * 5000), "TOO_LARGE"),
]


@pytest.mark.parametrize(("body", "code"), MALFORMED)
async def test_malformed_gets_typed_error(
    front: FrontEnd,
    connect: Connect,
    service: InMemoryOrderService,
    recorder: Recorder,
    body: bytes,
    code: str,
) -> None:
    sock = connect(front.endpoints[0], zmq.REQ)
    await sock.send(body)
    reply = msgpack.unpackb(await sock.recv())
    assert reply["ok"] is False and reply["error"]["code"] == code
    assert isinstance(reply["error"]["message"], str)
    assert service.calls == [] and service.orders == {}
    assert recorder.requests[-1][1] == code
    # and the front end still serves
    await sock.send(req("health"))
    assert msgpack.unpackb(await sock.recv())["ok"] is True


async def test_bad_frame_count(front: FrontEnd, connect: Connect) -> None:
    sock = connect(front.endpoints[0])
    await sock.send_multipart([req("health"), req("health")])
    reply = msgpack.unpackb((await sock.recv_multipart())[0])
    assert reply["error"]["code"] == "BAD_FRAME" and reply["id"] is None


async def test_frame_beyond_hard_limit_drops_peer_only(front: FrontEnd, connect: Connect) -> None:
    rogue = connect(front.endpoints[0])
    await rogue.send(b"x" * (4 * 4096 + 10))
    sock = connect(front.endpoints[0])
    assert (await dealer_call(sock, req("health")))["ok"] is True


async def test_service_errors_are_typed(
    front: FrontEnd, connect: Connect, service: InMemoryOrderService
) -> None:
    sock = connect(front.endpoints[0])
    missing = await dealer_call(sock, req("get_order", order_id="nope"))
    assert missing["error"]["code"] == "NOT_FOUND"
    assert missing["error"]["details"] == {"order_id": "nope"}
    service.fail_with = RuntimeError("bug with secret=abc")
    crashed = await dealer_call(sock, req("health", id="x"))
    assert crashed["id"] == "x"
    assert crashed["error"] == {"code": "INTERNAL", "message": "internal error", "details": {}}
    service.fail_with = NotFoundError("gone")
    assert (await dealer_call(sock, req("health")))["error"]["code"] == "NOT_FOUND"


async def test_unpackable_result_is_internal(
    front: FrontEnd, connect: Connect, service: InMemoryOrderService, monkeypatch: Any
) -> None:
    async def weird_health() -> dict[str, Any]:
        return {"thing": object()}

    monkeypatch.setattr(service, "health", weird_health)
    sock = connect(front.endpoints[0])
    assert (await dealer_call(sock, req("health")))["error"]["code"] == "INTERNAL"


async def test_busy_when_saturated(
    front: FrontEnd,
    connect: Connect,
    service: InMemoryOrderService,
    front_config: FrontConfig,
    recorder: Recorder,
) -> None:
    service.gate = asyncio.Event()
    sock = connect(front.endpoints[0])
    n = 30
    for i in range(n):
        await sock.send(req("health", id=i))
    capacity = front_config.workers + front_config.queue_size
    busy = [msgpack.unpackb(await sock.recv()) for _ in range(n - capacity)]
    assert {r["error"]["code"] for r in busy} == {"BUSY"}
    assert recorder.busy_count == n - capacity
    service.gate.set()
    rest = [msgpack.unpackb(await sock.recv()) for _ in range(capacity)]
    assert all(r["ok"] for r in rest)
    assert max(recorder.inflight_seen) == front_config.workers


async def test_stop_refuses_new_and_drains_inflight(
    front: FrontEnd, connect: Connect, service: InMemoryOrderService
) -> None:
    service.gate = asyncio.Event()
    sock = connect(front.endpoints[0])
    await sock.send(req("place_order", id="inflight", **place_fields()))
    await service.entered.wait()
    stopping = asyncio.create_task(front.stop(drain_timeout_s=10))
    await asyncio.sleep(0.05)
    await sock.send(req("health", id="late"))
    late = msgpack.unpackb(await sock.recv())
    assert late["id"] == "late" and late["error"]["code"] == "SHUTTING_DOWN"
    assert not stopping.done()
    service.gate.set()
    done = msgpack.unpackb(await sock.recv())
    assert done["id"] == "inflight" and done["ok"] is True
    await stopping


async def test_stop_timeout_answers_queued(service: InMemoryOrderService, connect: Connect) -> None:
    config = FrontConfig(listen=("tcp://127.0.0.1:*",), workers=1, queue_size=4)
    front = FrontEnd(service, config)
    await front.start()
    service.gate = asyncio.Event()
    sock = connect(front.endpoints[0])
    await sock.send(req("health", id="first"))
    await sock.send(req("health", id="queued"))
    await service.entered.wait()
    await front.stop(drain_timeout_s=0.1)
    reply = msgpack.unpackb(await sock.recv())
    assert reply["id"] == "queued" and reply["error"]["code"] == "SHUTTING_DOWN"
    await front.stop()  # idempotent


async def test_ipc_and_tcp_together(
    service: InMemoryOrderService, connect: Connect, tmp_path: Path
) -> None:
    ipc = f"ipc://{tmp_path}/front.sock"
    config = FrontConfig(listen=("tcp://127.0.0.1:*", ipc))
    front = FrontEnd(service, config)
    await front.start()
    try:
        assert front.endpoints[1] == ipc
        for endpoint in front.endpoints:
            sock = connect(endpoint, zmq.REQ)
            await sock.send(req("health"))
            assert msgpack.unpackb(await sock.recv())["ok"] is True
    finally:
        await front.stop()


async def test_bind_failure_raises(service: InMemoryOrderService) -> None:
    front = FrontEnd(service, FrontConfig(listen=("bogus://nowhere",)))
    with pytest.raises(zmq.ZMQError):
        await front.start()


async def test_curve(service: InMemoryOrderService, connect: Connect, tmp_path: Path) -> None:
    import zmq.auth

    server_pub, server_secret = zmq.auth.create_certificates(str(tmp_path), "server")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    _, client_secret_file = zmq.auth.create_certificates(str(allowed), "client")
    config = FrontConfig(
        listen=("tcp://127.0.0.1:*",),
        curve_secret_key_file=server_secret,
        curve_allowed_clients_dir=str(allowed),
    )
    front = FrontEnd(service, config)
    await front.start()
    try:
        server_key, _ = zmq.auth.load_certificate(server_pub)
        client_pub, client_secret = zmq.auth.load_certificate(client_secret_file)
        ctx = zmq.asyncio.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.curve_serverkey = server_key
        sock.curve_publickey = client_pub
        sock.curve_secretkey = client_secret
        sock.connect(front.endpoints[0])
        try:
            assert (await dealer_call(sock, req("health")))["ok"] is True
        finally:
            sock.close(linger=0)
    finally:
        await front.stop()
