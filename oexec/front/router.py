"""The ZeroMQ ROUTER intake: receive, decode, admit, work, reply (docs/wire.md).

One receiver task reads frames, splits and decodes them and answers every bad request
itself; good ones are admitted to a bounded queue served by a fixed set of worker
coroutines, or refused BUSY at once. The receiver and the workers share one socket,
which is safe because they share one event loop. Nothing a client sends can stop the
loop: unexpected exceptions become INTERNAL replies.

Admission (issue 10, "Overload"). A request is refused BUSY when ``queue_size``
requests already wait for a worker, or when it would wait longer than ``queue_wait_ms``:
the oldest waiting one already has, or the queue ahead of it takes that long to drain at
the rate the workers finish (their mean service time over their number). Under sustained
overload the queue so holds only what the workers finish within that time, and accepted
requests stay fast; a burst into an idle daemon is still absorbed up to ``queue_size``.
Workers parked on an empty queue count as room: they are about to take what is queued.

Taking requests between replies. Under overload the loop is saturated by the accepted
work and the socket's reader runs only when the loop gets round to it (BUSY took
~100 ms). So every reply a worker sends is followed by a look at the socket (``EVENTS``),
and what is waiting is taken in the same callback: under load replies go out every few
milliseconds, and each one lets the waiting requests in or answers them BUSY. (An intake
thread was tried and measured worse: every pyzmq send and receive releases the GIL, so a
second thread turns each socket call into a GIL hand-over of up to
``sys.getswitchinterval()``.)

One plain socket, no asyncio wrapper (issue 14). pyzmq's asyncio socket costs a future,
a failed receive (``zmq.Again``) and several ``EVENTS`` reads per request, and a task
wake-up to deliver it. Here the loop watches the socket's file descriptor
(``add_reader``) and ``_pump`` reads requests without blocking while ``EVENTS`` shows
one waiting (at most ``RECEIVE_BURST`` per call; the rest on the next loop turn).
Replies are sent at once and without blocking; the ROUTER has ROUTER_MANDATORY=0, so a
send drops rather than blocks, and a ``zmq.Again`` queues the reply (and those after
it, in order) until ``EVENTS`` shows room. libzmq's descriptor is edge-triggered: it
signals a change of ``EVENTS`` once, and any socket call (a send included) may process
the pending commands and consume that signal. So whatever touched the socket reads
``EVENTS`` last and acts on it: every send is followed by ``_pump``, which returns only
once ``EVENTS`` shows nothing to read (or has scheduled itself again).
``tests/front/test_router_stress.py`` shows the reader never stalls. Socket calls go to
pyzmq's backend methods directly: its ``send_multipart``/``recv_multipart`` wrappers
cost ≈ 2.5 µs per message in type checks and option enums (``front/zmqraw.py``).

Size: slightly over 400 lines: receiving, admission and replying share the socket and
the queue's timing state; the codec and the op table already live apart (wire/,
dispatch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence

import attrs
import zmq
import zmq.asyncio

from oexec.config import FrontConfig
from oexec.errors import BusyError, ErrorCode, OexecError, ShuttingDownError
from oexec.front.curve import enable_curve
from oexec.front.dispatch import dispatch
from oexec.front.metrics import FrontMetrics
from oexec.front.zmqraw import EVENTS, POLLIN, POLLOUT, get_int, recv_message, send_message
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
from oexec.wire.codec import peek_envelope
from oexec.wire.framing import FramingError

#: Requests taken off the socket per ``_pump`` call; more wait for the next loop turn.
RECEIVE_BURST = 256
BUSY_MESSAGE = "all workers busy; retry with the same request_id"
#: A served request moves the mean service time by 1/this of its difference to it.
SERVICE_MEAN_WEIGHT = 16
#: While replies wait for room (zmq.Again), the socket is looked at this often even
#: without a signal from its descriptor.
BACKLOG_RETRY_S = 0.01

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
    started: float  # time.monotonic() when it was taken off the socket


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
        self._queue_wait_s = config.queue_wait_ms / 1000
        self._socket: zmq.Socket[bytes] | None = None
        self._fd = -1  # the socket's descriptor, watched by the loop while serving
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pumping = False  # _pump is running (it sends, and sends pump)
        self._pump_due: asyncio.Handle | None = None  # a _pump scheduled for later
        self._backlog: deque[list[bytes]] = deque()  # replies waiting for room, in order
        self._jobs: deque[_Job] = deque()  # admitted, waiting for a worker
        self._parked: list[asyncio.Future[None]] = []  # workers waiting for a job
        self._service_s = 0.0  # moving mean of a worker's time per request
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._inflight = 0
        self._drained: asyncio.Event | None = None  # stop() waits on it
        self._endpoints: list[str] = []
        self._curve_auth: object | None = None

    @property
    def queued(self) -> int:
        """Requests accepted and waiting for a worker (the ``requests_queued`` gauge)."""
        return len(self._jobs)

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The endpoints actually bound (OS-assigned ports resolved)."""
        return tuple(self._endpoints)

    async def start(self) -> None:
        sock: zmq.Socket[bytes] = zmq.Socket(self._context, zmq.ROUTER)
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
        self._loop = asyncio.get_running_loop()
        self._fd = int(sock.get(zmq.FD))
        self._loop.add_reader(self._fd, self._pump)
        self._accepting = True
        self._tasks = [
            asyncio.create_task(self._work(), name=f"front-worker-{n}")
            for n in range(self._config.workers)
        ]
        self._schedule_pump(0.0)  # requests may have arrived before the reader was added
        log.info("front end listening", extra={"endpoints": self._endpoints})

    def _configure(self, sock: zmq.Socket[bytes]) -> None:
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
        if self._jobs or self._inflight:
            self._drained = asyncio.Event()  # set by the worker that finishes the last job
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain_timeout_s)
        if self._jobs or self._inflight:
            log.warning(
                "front end drain timed out",
                extra={"inflight": self._inflight, "queued": len(self._jobs)},
            )
        await self._refuse_queued()
        await cancel_and_wait(self._tasks)
        self._close_socket()
        stop_auth = getattr(self._curve_auth, "stop", None)
        if stop_auth is not None:
            stop_auth()
        log.info("front end stopped")

    async def _refuse_queued(self) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            body = encode_error(job.envelope.id, ErrorCode.SHUTTING_DOWN, "daemon is stopping")
            self._reply(job.route, body)
        deadline = time.monotonic() + LINGER_MS / 1000
        while self._backlog and time.monotonic() < deadline:  # give them a moment
            await asyncio.sleep(BACKLOG_RETRY_S)
            self._pump()
        if self._backlog:
            log.warning("replies not sent at stop", extra={"count": len(self._backlog)})

    def _close_socket(self) -> None:
        sock, loop = self._socket, self._loop
        if sock is None:
            return
        if self._pump_due is not None:
            self._pump_due.cancel()
            self._pump_due = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)
        self._socket = None
        self._backlog.clear()
        sock.close(linger=LINGER_MS)

    # --- intake ---------------------------------------------------------------------------
    def _pump(self) -> None:
        """Serve the socket until ``EVENTS`` shows nothing to read: send replies that
        waited for room, take up to RECEIVE_BURST requests (the rest on the next loop
        turn). Called by the loop when the descriptor signals and after every send
        (module docstring: the descriptor is edge-triggered)."""
        sock = self._socket
        if sock is None or self._pumping:
            return  # a running _pump reads EVENTS again before it returns
        self._pumping = True
        try:
            now = time.monotonic()
            for _ in range(RECEIVE_BURST):
                events = get_int(sock, EVENTS)
                if self._backlog and events & POLLOUT:
                    self._send_backlog(sock)
                if not events & POLLIN:
                    break
                self._take(recv_message(sock), now)
            else:  # a burst taken, more may wait: one loop turn for the work, then more
                self._schedule_pump(0.0)
            if self._backlog:
                self._schedule_pump(BACKLOG_RETRY_S)
        except zmq.ContextTerminated:
            self._close_socket()
        except Exception:
            log.exception("front end intake error (request dropped)")
            self._schedule_pump(0.0)  # whatever else waits is not stranded
        finally:
            self._pumping = False

    def _schedule_pump(self, delay_s: float) -> None:
        if self._pump_due is not None or self._loop is None:
            return
        self._pump_due = self._loop.call_later(delay_s, self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_due = None
        self._pump()

    def _take(self, frames: Sequence[bytes], started: float) -> None:
        """Sort one request: queued for a worker, or answered here (invalid, BUSY,
        stopping). Never raises for what a client sent."""
        t0 = time.perf_counter()
        try:
            route, body = split_frames(frames)
        except FramingError as exc:
            if exc.route is not None:
                self._refuse(exc.route, None, exc, started)
            return
        busy = self._accepting and self._full()
        if busy:  # the cheap refusal: no need to read the op's fields (module docstring)
            peeked = peek_envelope(body, max_bytes=self._config.max_frame_bytes)
            if peeked is not None:
                self._refuse_busy(route, *peeked, started)
                return
        try:
            envelope = decode_request(body, max_bytes=self._config.max_frame_bytes)
        except RequestError as exc:
            self._refuse(route, exc.correlation_id, exc, started)
            return
        if self._metrics is not None:
            self._metrics.stage("decode", time.perf_counter() - t0)
        if not self._accepting:
            self._refuse(route, envelope, ShuttingDownError("daemon is stopping"), started)
        elif busy:
            self._refuse_busy(route, envelope.id, envelope.op, started)
        else:
            self._jobs.append(_Job(route, envelope, started))
            for future in self._parked:  # wake one parked worker that is not woken yet
                if not future.done():
                    future.set_result(None)
                    break

    def _full(self) -> bool:
        """True when a request taken now is refused BUSY (module docstring, "Admission")."""
        waiting = len(self._jobs) - len(self._parked)
        return waiting >= self._config.queue_size or (waiting > 0 and self._too_slow(waiting))

    def _refuse_busy(
        self, route: Route, correlation_id: CorrelationId, op: str, started: float
    ) -> None:
        if self._metrics is not None:
            self._metrics.busy()
        self._reply(route, encode_exception(correlation_id, BusyError(BUSY_MESSAGE)))
        self._count(op, ErrorCode.BUSY.value, started)

    def _too_slow(self, waiting: int) -> bool:
        """True when a request queued behind ``waiting`` others would wait longer than
        ``queue_wait_ms`` (module docstring, "Admission")."""
        limit = self._queue_wait_s
        if limit <= 0 or not self._jobs:
            return False
        if (waiting + 1) * self._service_s > limit * self._config.workers:
            return True
        return time.monotonic() - self._jobs[0].started > limit

    def _refuse(
        self,
        route: Route,
        request: Envelope | CorrelationId | None,
        exc: OexecError,
        started: float,
    ) -> None:
        """Answer a request that no worker will see (invalid, busy, stopping)."""
        correlation_id = request.id if isinstance(request, Envelope) else request
        op = request.op if isinstance(request, Envelope) else "invalid"
        self._reply(route, encode_exception(correlation_id, exc))
        self._count(op, exc.code.value, started)

    # --- work -----------------------------------------------------------------------------
    async def _next_job(self) -> _Job:
        while not self._jobs:
            future = asyncio.get_running_loop().create_future()
            self._parked.append(future)  # counted as room until this worker runs again
            try:
                await future
            finally:
                self._parked.remove(future)
        return self._jobs.popleft()

    async def _work(self) -> None:
        while True:
            job = await self._next_job()
            self._inflight += 1
            if self._metrics is not None:
                self._metrics.inflight(self._inflight)
            t_start = time.perf_counter()
            try:
                body, outcome, encode_s = await self._serve(job.envelope)
                t0 = time.perf_counter()
                self._learn_service_time(t0 - t_start)
                self._reply(job.route, body)
                if self._metrics is not None:
                    self._metrics.stage("reply", encode_s + time.perf_counter() - t0)
                self._count(job.envelope.op, outcome, job.started)
            finally:
                self._inflight -= 1
                if self._metrics is not None:
                    self._metrics.inflight(self._inflight)
                if self._drained is not None and not self._jobs and not self._inflight:
                    self._drained.set()

    def _learn_service_time(self, seconds: float) -> None:
        if self._service_s == 0.0:
            self._service_s = seconds  # the first one: nothing to average with yet
        else:
            self._service_s += (seconds - self._service_s) / SERVICE_MEAN_WEIGHT

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
    def _reply(self, route: Route, body: bytes) -> None:
        """Send a reply now (or queue it behind replies waiting for room); then serve
        the socket, since the send may have consumed its descriptor's signal."""
        sock = self._socket
        if sock is None:
            return
        frames = [*route.prefix, body]
        if self._backlog:  # keep FIFO behind a reply still waiting for room
            self._backlog.append(frames)
        else:
            try:
                send_message(sock, frames)
            except zmq.Again:
                self._backlog.append(frames)  # the peer's queue is full: wait for room
            except zmq.ZMQError as exc:
                log.warning("reply not sent", extra={"error": str(exc)})
        self._pump()

    def _send_backlog(self, sock: zmq.Socket[bytes]) -> None:
        """Send queued replies in order while there is room."""
        backlog = self._backlog
        while backlog:
            try:
                send_message(sock, backlog[0])
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                log.warning("reply not sent", extra={"error": str(exc)})
            backlog.popleft()

    def _count(self, op: str, outcome: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.request(op, outcome, time.monotonic() - started)
