"""The ZeroMQ ROUTER intake: receive, decode, enqueue, work, reply (docs/wire.md).

One receiver task reads frames, splits and decodes them and answers every bad request
itself; good ones go to a bounded queue served by a fixed set of worker coroutines. A
full queue is answered with BUSY at once: saturation never grows memory. The receiver
and the workers share one socket, which is safe because they share one event loop.
Nothing a client sends can stop the loop: unexpected exceptions become INTERNAL replies.

Replies are sent directly and without blocking on a sync shadow of the socket: pyzmq's
awaited send costs a future, a flags enum and poller bookkeeping per reply (issue 10).
The ROUTER has ROUTER_MANDATORY=0, so a send drops rather than blocks; only a
``zmq.Again`` falls back to the awaited send. A send can process the socket's pending
commands and so consume the edge of its file descriptor that announces a new request;
while the receiver is waiting, every direct send is therefore followed by reading
``EVENTS`` through the asyncio socket, which makes pyzmq wake its waiting receive when
a message is ready (what its own send does). ``tests/front/test_router_stress.py``
shows the receiver never stalls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import attrs
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.errors import BusyError, ErrorCode, OexecError, ShuttingDownError
from oexec.front.curve import enable_curve
from oexec.front.dispatch import dispatch
from oexec.front.metrics import FrontMetrics
from oexec.ops.logging import log_context
from oexec.service.ports import OrderService
from oexec.tasks import cancel_and_wait
from oexec.wire import (
    CorrelationId,
    Envelope,
    RequestError,
    Route,
    decode_request,
    encode_error,
    encode_exception,
    encode_ok,
    split_frames,
)
from oexec.wire.framing import FramingError

#: Requests taken off the socket per loop turn beyond the first.
RECEIVE_BURST = 64

log = logging.getLogger(__name__)

#: libzmq drops a peer that sends a frame above MAXMSGSIZE without a reply; frames
#: between max_frame_bytes and this multiple of it get a typed TOO_LARGE reply instead.
HARD_LIMIT_FACTOR = 4
LINGER_MS = 1000
MIN_HWM = 1000


@attrs.frozen(slots=True)
class _Job:
    route: Route
    envelope: Envelope
    started: float


class FrontEnd:
    """Serves ``service`` on every endpoint of ``config.listen``.

    ``start()`` binds (tcp://, ipc://; port 0 or ``*`` for an OS-assigned one, see
    ``endpoints``); ``stop()`` stops intake, drains, then closes.
    """

    def __init__(
        self,
        service: OrderService,
        config: FrontConfig,
        *,
        on_metrics: FrontMetrics | None = None,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self._service = service
        self._config = config
        self._metrics = on_metrics
        self._context = context or zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None
        self._direct: zmq.Socket[bytes] | None = None  # sync shadow of _socket
        self._receiving = False  # the receiver awaits a message (see _send)
        self._awaited_sends = 0  # fallback sends in flight; direct ones wait behind them
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(config.queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._receiver: asyncio.Task[None] | None = None
        self._accepting = False
        self._inflight = 0
        self._waiting_workers = 0  # workers parked on an empty queue
        self._endpoints: list[str] = []
        self._curve_auth: object | None = None

    @property
    def queued(self) -> int:
        """Requests accepted and waiting for a worker (the ``requests_queued`` gauge)."""
        return self._queue.qsize()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints actually bound (OS-assigned ports resolved)."""
        return tuple(self._endpoints)

    async def start(self) -> None:
        sock = self._context.socket(zmq.ROUTER)
        try:
            self._configure(sock)
            self._curve_auth = await enable_curve(self._context, sock, self._config)
            for endpoint in self._config.listen:
                sock.bind(endpoint)
                self._endpoints.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
        except BaseException:
            sock.close(linger=0)
            raise
        self._socket = sock
        self._direct = zmq.Socket.shadow(sock.underlying)
        self._accepting = True
        self._receiver = asyncio.create_task(self._receive_loop(), name="front-receiver")
        self._tasks = [
            asyncio.create_task(self._work(), name=f"front-worker-{n}")
            for n in range(self._config.workers)
        ]
        log.info("front end listening", extra={"endpoints": self._endpoints})

    def _configure(self, sock: zmq.asyncio.Socket) -> None:
        hwm = max(MIN_HWM, 4 * self._config.queue_size)
        sock.setsockopt(zmq.MAXMSGSIZE, HARD_LIMIT_FACTOR * self._config.max_frame_bytes)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.LINGER, LINGER_MS)

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Refuse new requests (SHUTTING_DOWN), let in-flight ones finish for up to
        ``drain_timeout_s``, answer what is still queued, cancel the rest, close."""
        if self._socket is None:
            return
        self._accepting = False
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout_s)
        except TimeoutError:
            log.warning(
                "front end drain timed out",
                extra={"inflight": self._inflight, "queued": self._queue.qsize()},
            )
        await self._refuse_queued()
        await _cancel_all(self._tasks)
        if self._receiver is not None:
            await _cancel_all([self._receiver])
        self._direct = None
        self._socket.close(linger=LINGER_MS)
        self._socket = None
        stop_auth = getattr(self._curve_auth, "stop", None)
        if stop_auth is not None:
            stop_auth()
        log.info("front end stopped")

    async def _refuse_queued(self) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            self._queue.task_done()
            body = encode_error(job.envelope.id, ErrorCode.SHUTTING_DOWN, "daemon is stopping")
            await self._send(job.route, body)

    # --- intake ---------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        assert self._socket is not None
        while True:
            try:
                self._receiving = True
                try:
                    frames = await self._socket.recv_multipart()
                finally:
                    self._receiving = False
                await self._accept(frames, time.monotonic())
                # Take what else has arrived before yielding (a burst is sorted into
                # work and BUSY in one go, not one request per loop turn: under
                # saturation a turn lasts milliseconds), then let workers run.
                for _ in range(RECEIVE_BURST):
                    try:
                        frames = await self._socket.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    await self._accept(frames, time.monotonic())
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except zmq.ContextTerminated:
                return
            except Exception:
                log.exception("front end intake error (request dropped)")

    async def _accept(self, frames: Sequence[bytes], started: float) -> None:
        t0 = time.perf_counter()
        try:
            route, body = split_frames(frames)
        except FramingError as exc:
            if exc.route is not None:
                await self._refuse(exc.route, None, exc, started)
            return
        try:
            envelope = decode_request(body, max_bytes=self._config.max_frame_bytes)
        except RequestError as exc:
            await self._refuse(route, exc.correlation_id, exc, started)
            return
        if self._metrics is not None:
            self._metrics.stage("decode", time.perf_counter() - t0)
        if not self._accepting:
            stopping = ShuttingDownError("daemon is stopping")
            await self._refuse(route, envelope, stopping, started)
            return
        job = _Job(route, envelope, started)
        if self._queue.full() and self._waiting_workers:
            # Workers are woken but have not taken their jobs yet (the receiver took
            # a burst in one turn): let them, the daemon is not saturated.
            await asyncio.sleep(0)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            if self._metrics is not None:
                self._metrics.busy()
            busy = BusyError("all workers busy; retry with the same request_id")
            await self._refuse(route, envelope, busy, started)

    async def _refuse(
        self,
        route: Route,
        request: Envelope | CorrelationId | None,
        exc: OexecError,
        started: float,
    ) -> None:
        """Answer a request that no worker will see (invalid, busy, stopping)."""
        correlation_id = request.id if isinstance(request, Envelope) else request
        op = request.op if isinstance(request, Envelope) else "invalid"
        await self._send(route, encode_exception(correlation_id, exc))
        self._count(op, exc.code.value, started)

    # --- work -----------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            self._waiting_workers += 1
            try:
                job = await self._queue.get()
            finally:
                self._waiting_workers -= 1
            self._inflight += 1
            if self._metrics is not None:
                self._metrics.inflight(self._inflight)
            try:
                body, outcome, encode_s = await self._serve(job.envelope)
                t0 = time.perf_counter()
                await self._send(job.route, body)
                if self._metrics is not None:
                    self._metrics.stage("reply", encode_s + time.perf_counter() - t0)
                self._count(job.envelope.op, outcome, job.started)
            finally:
                self._inflight -= 1
                if self._metrics is not None:
                    self._metrics.inflight(self._inflight)
                self._queue.task_done()

    async def _serve(self, envelope: Envelope) -> tuple[bytes, str, float]:
        """Run one request; returns the reply body, the outcome label and the seconds
        spent encoding the reply (part of the ``reply`` stage)."""
        request = envelope.request
        try:
            with log_context(
                correlation=str(envelope.id),
                request=getattr(request, "request_id", None),
                order=getattr(request, "order_id", None),
            ):
                result = await dispatch(self._service, request)
            t0 = time.perf_counter()
            body = encode_ok(envelope.id, result)
            return body, "ok", time.perf_counter() - t0
        except OexecError as exc:
            t0 = time.perf_counter()
            body = encode_exception(envelope.id, exc)
            return body, exc.code.value, time.perf_counter() - t0
        except Exception:
            log.exception(
                "request failed unexpectedly",
                extra={"op": envelope.op, "correlation_id": envelope.id},
            )
            body = encode_error(envelope.id, ErrorCode.INTERNAL, "internal error")
            return body, ErrorCode.INTERNAL.value, 0.0

    # --- output ---------------------------------------------------------------------------
    async def _send(self, route: Route, body: bytes) -> None:
        sock, direct = self._socket, self._direct
        if sock is None or direct is None:
            return
        frames = [*route.prefix, body]
        if not self._awaited_sends:  # keep FIFO behind a fallback send still waiting
            try:
                direct.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                pass  # the peer's queue is full: wait for room below
            except zmq.ZMQError as exc:
                log.warning("reply not sent", extra={"error": str(exc)})
                return
            else:
                if self._receiving:
                    sock.get(zmq.EVENTS)  # re-arms the waiting receive (module docstring)
                return
        self._awaited_sends += 1
        try:
            await sock.send_multipart(frames)
        except zmq.ZMQError as exc:
            log.warning("reply not sent", extra={"error": str(exc)})
        finally:
            self._awaited_sends -= 1

    def _count(self, op: str, outcome: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.request(op, outcome, time.monotonic() - started)


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    await cancel_and_wait(tasks)
