"""Early claims on the embedded store: a claim decided on the loop and written while its
order travels to the venue (issue 14).

``SqliteStore.claim(early=True)`` asks ``EarlyClaims.try_claim``: a request id that is new -
not among the claims in flight in this process, not in the file (one indexed read on the
store's connection, between its batches) - is claimed at once. The claim is appended to
the claim log (oexec/store/claim_log.py: one ``os.write``, which survives any crash of
the daemon), its store write is queued (it commits at the end of this loop turn, behind
every earlier job of the store, so a later claim, read or save of the same order always
sees it), and the caller gets ``ClaimResult.durable``, which that write resolves.
Anything else - a known request id, a claim still in flight - returns None: the store's
batch path answers it (a lost claim, with the first order).

A write that fails leaves its request id refused (``refuse_unstored``) and is retried
every second; the log keeps the claim for the next start either way. So a request can
never be claimed, and sent, a second time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

from oexec.errors import ErrorCode, StoreError
from oexec.models import Order
from oexec.service.ports import ClaimResult
from oexec.store import codec
from oexec.store.claim_log import ClaimLog

#: How long after a host crash (the claim log from an earlier boot) request ids the store
#: does not know are checked at the venue by client order id before a submit: a client
#: retrying a request it got no reply for retries within this (docs/architecture.md).
UNCERTAIN_AFTER_HOST_CRASH_MS = 15 * 60 * 1000
RETRY_WRITE_S = 1.0

#: Queues the store write of a claim (the order, its TTL, its events, the order's bytes as
#: logged: the store keeps the same bytes, encoded once); its future settles when the
#: write has landed.
WriteClaim = Callable[[Order, int, bytes | None, bytes], "asyncio.Future[ClaimResult]"]
#: Whether a request id holds a live claim in the file (raises if the file cannot tell).
Claimed = Callable[[str], bool]
#: The store's own (batch path) claim, for the claims an unclean stop left in the log.
StoreClaim = Callable[[Order, int, bytes | None], Awaitable[ClaimResult]]


class EarlyClaims:
    def __init__(
        self, db_path: str, *, clock: Callable[[], float], write: WriteClaim, claimed: Claimed
    ) -> None:
        self.log = ClaimLog(db_path + ".claims")
        self._clock = clock
        self._write = write
        self._claimed = claimed
        #: claims decided here whose store write has not landed yet, by request id
        self._claiming: dict[str, Order] = {}
        self._unstored: set[str] = set()  # ... of which the write failed (being retried)
        self._begun = False  # the log is begun: early claims may be made
        self._closed = False
        #: After an unclean stop: claims stored from the log, and until when (ms) a
        #: request id the store does not know may still have reached the venue (the host
        #: went down with the daemon, so the log may have lost its last claims).
        self.recovered_claims = 0
        self.uncertain_until_ms = 0

    async def open(self, store_claim: StoreClaim) -> None:
        """Take the file's lock, store what an unclean stop left in the log and start a
        fresh log. Raises StoreError, OSError."""
        recovered = self.log.open()
        for logged in recovered.claims:
            await store_claim(codec.decode_order(logged.order), logged.ttl_s, logged.events)
        self.recovered_claims = len(recovered.claims)
        if recovered.host_restarted:
            now_ms = int(self._clock() * 1000)
            self.uncertain_until_ms = now_ms + UNCERTAIN_AFTER_HOST_CRASH_MS
        self.log.begin()
        self._begun = True

    def refuse_unstored(self, request_id: str) -> None:
        """StoreError when an early claim of ``request_id`` could not be written yet."""
        if request_id in self._unstored:
            raise StoreError(
                f"request {request_id!r} was claimed but its claim is not stored yet "
                "(the store failed); it is retried, and stored at the next start at the latest",
                details={"order_id": self._claiming[request_id].id},
            )

    def try_claim(self, order: Order, ttl_s: int, events: bytes | None) -> ClaimResult | None:
        """The early claim of a new request id, or None (take the batch path)."""
        if not self._is_new(order.request_id):
            return None
        body = codec.encode_order(order)
        try:
            self.log.append(body, ttl_s, events)
        except OSError as exc:
            raise StoreError(f"claim log write failed: {exc}") from exc
        self._claiming[order.request_id] = order
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        durable.add_done_callback(_quiet)
        self._queue_write(order, ttl_s, events, body, durable)
        return ClaimResult(claimed=True, order=order, durable=durable)

    def _is_new(self, request_id: str) -> bool:
        if request_id in self._claiming or not self._begun or self._closed:
            return False
        try:
            return not self._claimed(request_id)
        except (sqlite3.Error, StoreError):
            return False  # the batch path will say what is wrong

    def _queue_write(
        self,
        order: Order,
        ttl_s: int,
        events: bytes | None,
        body: bytes,
        durable: asyncio.Future[None],
    ) -> None:
        if self._closed:
            return
        request_id = order.request_id

        def landed(future: asyncio.Future[ClaimResult]) -> None:
            error = future.exception() if not future.cancelled() else StoreError("cancelled")
            if error is None:
                result = future.result()
                if not result.claimed or result.order.id != order.id:
                    # Impossible while the log's lock holds (one claimer per file).
                    error = StoreError(
                        f"early claim of {request_id!r} lost to order {result.order.id}",
                        code=ErrorCode.INTERNAL,
                    )
            if error is None:
                self._claiming.pop(request_id, None)
                self._unstored.discard(request_id)
                self.log.stored()
                if not durable.done():
                    durable.set_result(None)
                return
            self._unstored.add(request_id)
            if not durable.done():
                durable.set_exception(error)
            if not self._closed:
                asyncio.get_running_loop().call_later(
                    RETRY_WRITE_S, self._queue_write, order, ttl_s, events, body, durable
                )

        self._write(order, ttl_s, events, body).add_done_callback(landed)

    def close(self) -> None:
        """Release the lock; the log goes only when every claim in it is stored."""
        self._closed = True
        self.log.close(clean=not self._claiming)


def _quiet(future: asyncio.Future[None]) -> None:
    """Mark a durability future's error as seen: its waiter may be gone (a cancelled
    request); the error itself is the retry's and the next start's to handle."""
    if not future.cancelled():
        future.exception()
