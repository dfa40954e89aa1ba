"""Rows through oexec (sync and async client, overload) and the raw ZeroMQ floor.

The clients are used exactly as a strategy would use them: ``Client.place_order`` and
``AsyncClient.place_order`` with the order fields; every reply is a stored, published
order. Errors are counted by their wire code, never retried by the row itself.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from typing import Any

import zmq
import zmq.asyncio

from oexec.bench.hist import record_us
from oexec.bench.job import Call, Job, Progress, Result, run_closed_loop
from oexec.bench.mix import OrderSpec, oexec_fields, order_mix
from oexec.client import AsyncClient, Client, ClientError
from oexec.client.aio import BUSY_BACKOFF_S
from oexec.client.requests import place_order_fields
from oexec.errors import ErrorCode
from oexec.wire import ErrorReply, decode_reply, encode_request

LAG_PROBE_S = 0.005


def _code(exc: ClientError) -> str:
    return str(getattr(exc, "code", type(exc).__name__))


def run_sync_loop(call: Any, job: Job, progress: Progress) -> Result:
    """One request at a time on this thread: warmup, then ``job.count`` measured calls."""
    result = Result()
    for i in range(job.warmup):
        call(i)
    started = time.perf_counter()
    for i in range(job.count):
        t0 = time.perf_counter()
        outcome = call(i)
        record_us(
            result.histogram("main" if outcome == "ok" else outcome), time.perf_counter() - t0
        )
        result.count(outcome)
        if (i + 1) % 100 == 0:
            progress(i + 1)
    result.wall_s = time.perf_counter() - started
    progress(job.count)
    return result


def oexec_sync_row(job: Job, progress: Progress) -> Result:
    """``Client.place_order``: one in flight, as a simple strategy loop would do."""
    mix = [oexec_fields(spec) for spec in order_mix(Decimal(job.mark))]
    with Client(job.endpoint, timeout_s=job.timeout_s, retries=0) as client:

        def call(i: int) -> str:
            try:
                client.place_order(**mix[i % len(mix)])
            except ClientError as exc:
                return _code(exc)
            return "ok"

        return run_sync_loop(call, job, progress)


def async_caller(client: AsyncClient, job: Job) -> Call:
    """``call(i)``: ``AsyncClient.place_order`` of the mix's i-th order; the outcome."""
    mix = [oexec_fields(spec) for spec in order_mix(Decimal(job.mark))]

    async def call(i: int) -> str:
        try:
            await client.place_order(**mix[i % len(mix)])
        except ClientError as exc:
            return _code(exc)
        return "ok"

    return call


async def oexec_async_row(job: Job, progress: Progress) -> Result:
    """``AsyncClient.place_order`` with ``job.inflight`` concurrent tasks on one client."""
    async with AsyncClient(job.endpoint, timeout_s=job.timeout_s, retries=0) as client:
        return await run_closed_loop(async_caller(client, job), job, progress)


def zmq_floor_row(job: Job, progress: Progress) -> Result:
    """DEALER → echo ROUTER → DEALER with a request-sized frame: the hop oexec adds."""
    frame = encode_request("floor-1", "place_order", _wire_fields(order_mix(Decimal(job.mark))[0]))
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(job.endpoint)
    timeout_ms = int(job.timeout_s * 1000)
    try:

        def call(_i: int) -> str:
            sock.send(frame)
            if not sock.poll(timeout_ms, zmq.POLLIN):
                return "TIMEOUT"
            sock.recv_multipart()
            return "ok"

        return run_sync_loop(call, job, progress)
    finally:
        sock.close(linger=0)


def _wire_fields(spec: OrderSpec) -> dict[str, Any]:
    """The ``place_order`` wire fields the client library would send for ``spec``."""
    fields = oexec_fields(spec)
    return place_order_fields(
        symbol=fields["symbol"],
        side=fields["side"],
        type=fields["type"],
        quantity=fields["quantity"],
        price=fields.get("price"),
        time_in_force=fields.get("time_in_force"),
        stop_price=None,
        reduce_only=False,
        request_id=None,
        options={},
    )


def zmq_echo_server(job: Job, progress: Progress) -> Result:
    """The floor's far end: a blocking ROUTER that sends every frame straight back.

    Prints ``READY <endpoint>``; runs until its stdin closes (the bench ends it).
    """
    import sys
    import threading

    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    print(f"READY {sock.getsockopt_string(zmq.LAST_ENDPOINT)}", flush=True)
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    while not stop.is_set():
        if sock.poll(100, zmq.POLLIN):
            sock.send_multipart(sock.recv_multipart())
    sock.close(linger=0)
    return Result()


async def overload_row(job: Job, progress: Progress) -> Result:
    """``job.inflight`` orders kept outstanding on raw DEALERs, far past the daemon's
    workers + queue: BUSY replies must come at once and accepted ones stay bounded.

    Each lane places one order at a time and, on BUSY, pauses as the client library does
    (``BUSY_BACKOFF_S`` times the attempt number) and resends it with the same
    ``request_id``; it moves on when the order is answered otherwise. ``main`` holds the
    latency of the attempt that was accepted, ``BUSY`` every refused attempt's. Resending
    at once instead would measure how fast the load generator spins, not the daemon: with
    ~700 lanes refused, an idle daemon's BUSY took ~100 ms to come back that way. The row
    ends when ``job.count`` orders were answered (orders refused after that are dropped).
    """
    context = zmq.asyncio.Context.instance()
    mix = [_wire_fields(spec) for spec in order_mix(Decimal(job.mark))]
    lanes_per_socket = 64
    sockets = [context.socket(zmq.DEALER) for _ in range(max(1, job.inflight // lanes_per_socket))]
    pending: dict[str, asyncio.Future[str]] = {}
    ids = itertools.count()
    loop = asyncio.get_running_loop()
    result = Result()

    async def reader(sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            reply = decode_reply(frames[-1])
            future = pending.pop(str(reply.id), None)
            if future is not None and not future.done():
                outcome = str(reply.code) if isinstance(reply, ErrorReply) else "ok"
                future.set_result(outcome)

    async def attempt(i: int, body_fields: dict[str, Any]) -> str:
        correlation_id = f"ovl-{next(ids)}"
        future: asyncio.Future[str] = loop.create_future()
        pending[correlation_id] = future
        frame = encode_request(correlation_id, "place_order", body_fields)
        await sockets[i % len(sockets)].send(frame)
        try:
            return await asyncio.wait_for(future, job.timeout_s)
        except TimeoutError:
            pending.pop(correlation_id, None)
            return "TIMEOUT"

    async def phase(count: int, measured: bool) -> None:
        next_order = itertools.count()
        done = 0

        async def lane() -> None:
            nonlocal done
            while done < count:
                i = next(next_order)
                fields = {**mix[i % len(mix)], "request_id": f"ovl-{time.time_ns()}-{i}"}
                tries = 0
                while done < count:
                    started = time.perf_counter()
                    outcome = await attempt(i, fields)
                    seconds = time.perf_counter() - started
                    if measured:
                        name = "main" if outcome == "ok" else outcome
                        record_us(result.histogram(name), seconds)
                        result.count(outcome)
                    if outcome != ErrorCode.BUSY.value:
                        done += 1
                        if measured and done % 100 == 0:
                            progress(done)
                        break
                    tries += 1
                    await asyncio.sleep(BUSY_BACKOFF_S * tries)

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(max(1, job.inflight))))
        if measured:
            result.wall_s = time.perf_counter() - started
            progress(done)

    async def lag_probe() -> None:
        """How late this process's own loop runs a timer: the part of every latency
        above that is the load generator's, not the daemon's."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_PROBE_S)
            if result.measuring:
                record_us(result.histogram("lag"), time.perf_counter() - started - LAG_PROBE_S)

    for sock in sockets:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(job.endpoint)
    readers = [asyncio.create_task(reader(s)) for s in sockets]
    readers.append(asyncio.create_task(lag_probe()))
    try:
        await phase(job.warmup, measured=False)
        result.measuring = True
        await phase(job.count, measured=True)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for sock in sockets:
            sock.close(linger=0)
    result.extra["busy_share"] = result.outcomes.get(ErrorCode.BUSY.value, 0) / max(
        1, sum(result.outcomes.values())
    )
    return result
