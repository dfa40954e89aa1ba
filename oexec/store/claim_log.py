"""The claim log: what makes an in-memory idempotency claim crash-safe before it is stored.

Why it exists (issue 14). The embedded store used to commit every claim (with an fsync)
on its worker thread *before* the order was sent: a thread hop plus ~300 µs of fsync on
every submit's path. Now the claim is decided on the event loop (the claims still in
flight plus one indexed read of the file) and its store write overlaps the venue
round trip; the reply still waits for that write. What covers the gap between "sent" and
"stored" is this log: one ``os.write`` of the claim (a few µs, no fsync) before the
submit. A write() that returned is in the kernel's page cache, so it survives any crash
of the daemon process - SIGKILL at any instant included. At the next start the store
replays every logged claim it does not hold (the claim is idempotent for the same order
id), and the resolver settles those orders by client order id, never resending.

What the log cannot cover is a crash of the *host* (power loss, kernel panic): page-cache
writes may be gone. The header records the kernel's boot id; a log left by an earlier
boot means the host went down with the daemon, and the store reports that window
(``ClaimLog.recovered.host_restarted``) so the service checks unknown request ids
against the venue by client order id until it closes (docs/architecture.md).

The file is also the single-writer lock of the store: the fast claim is only correct
when one process claims in a given file, so the log is held with ``flock`` and a second
daemon on the same file fails at start. A clean stop (every claim stored) removes it;
its presence at start therefore means the previous run did not stop cleanly.

Format: records of ``<u32 length><u32 crc32><msgpack body>``; the first is the header
``["oexec-claims/1", boot_id, pid]``, then one ``[ttl_s, order_json, events|None]`` per
claim. A torn or corrupt tail (a host crash mid-write) ends the replay there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Callable, Iterator

import attrs
import msgpack

from oexec.errors import ErrorCode, StoreError

MAGIC = "oexec-claims/1"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_FRAME = struct.Struct("<II")
#: Once nothing is waiting to be stored, a log larger than this is cut back to its header.
TRUNCATE_AT_BYTES = 1 << 20


def read_boot_id() -> str:
    """The kernel's id of this boot ("" where the platform has none: then every unclean
    stop is treated as a host crash, the cautious reading)."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


@attrs.frozen
class LoggedClaim:
    """One claim as logged: the order's stored JSON, its claim TTL and its events."""

    order: bytes
    ttl_s: int
    events: bytes | None


@attrs.frozen
class Recovered:
    """What an earlier run left behind."""

    unclean: bool = False  # the log was there: that run did not stop cleanly
    host_restarted: bool = False  # ... and the host went down too (boot id changed)
    claims: tuple[LoggedClaim, ...] = ()


def frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def read_frames(data: bytes) -> Iterator[bytes]:
    """The intact records of ``data``, stopping at the first torn or corrupt one."""
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        body = data[start : start + length]
        if len(body) != length or zlib.crc32(body) != crc:
            return
        yield body
        offset = start + length


def parse(data: bytes, boot_id: str) -> Recovered:
    """Read a log left by an earlier run (pure: tests feed it bytes)."""
    frames = read_frames(data)
    header = next(frames, None)
    if header is None:  # created but nothing (durable) written: treat as a host crash
        return Recovered(unclean=True, host_restarted=True)
    try:
        magic, logged_boot, _pid = msgpack.unpackb(header)
    except (ValueError, TypeError, msgpack.UnpackException):
        return Recovered(unclean=True, host_restarted=True)
    if magic != MAGIC:
        raise StoreError(f"not an oexec claim log (header {magic!r})", code=ErrorCode.INTERNAL)
    claims = []
    for body in frames:
        ttl_s, order, events = msgpack.unpackb(body)
        claims.append(LoggedClaim(order=order, ttl_s=int(ttl_s), events=events))
    return Recovered(
        unclean=True,
        host_restarted=not boot_id or logged_boot != boot_id,
        claims=tuple(claims),
    )


class ClaimLog:
    """The append-only claim log of one SQLite store file (``<db>.claims``).

    ``open`` locks the file and reads what an earlier run left (``recovered``); the owner
    stores those claims, then calls ``begin`` to start a fresh log. All other calls come
    from the event loop's thread, so no lock is needed between them.
    """

    def __init__(self, path: str, *, boot_id: Callable[[], str] = read_boot_id) -> None:
        self.path = path
        self._boot_id = boot_id
        self._fd: int | None = None
        self._header_bytes = 0
        self._size = 0
        self._pending = 0
        self.recovered = Recovered()

    def open(self) -> Recovered:
        """Lock the log (StoreError if another process holds it) and read what is there."""
        existed = os.path.exists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                "another oexec daemon is using this SQLite store "
                f"(its claim log {self.path} is locked); one daemon per SQLite file - "
                "share a Redis store to run several",
                code=ErrorCode.STORE_UNAVAILABLE,
            ) from None
        self._fd = fd
        if existed:
            with open(self.path, "rb") as handle:
                self.recovered = parse(handle.read(), self._boot_id())
        return self.recovered

    def begin(self) -> None:
        """Start a fresh log (the recovered claims are stored by now): header, fsync'd
        with its directory entry, so a host crash cannot make it look like a clean stop."""
        fd = self._require()
        os.ftruncate(fd, 0)
        header = frame(msgpack.packb([MAGIC, self._boot_id(), os.getpid()]))
        os.write(fd, header)
        os.fsync(fd)
        _fsync_dir(self.path)
        self._header_bytes = self._size = len(header)
        self._pending = 0

    def append(self, order: bytes, ttl_s: int, events: bytes | None) -> None:
        """Log one claim before its order is sent (raises OSError if the disk refuses)."""
        record = frame(msgpack.packb([ttl_s, order, events]))
        written = os.write(self._require(), record)
        if written != len(record):  # a full disk: the record is torn, do not send
            raise OSError(f"claim log: short write ({written} of {len(record)} bytes)")
        self._size += written
        self._pending += 1

    def stored(self) -> None:
        """One logged claim is now in the store; cut the log back once none is waiting."""
        self._pending = max(0, self._pending - 1)
        if self._pending == 0 and self._size >= TRUNCATE_AT_BYTES and self._fd is not None:
            os.ftruncate(self._fd, self._header_bytes)
            self._size = self._header_bytes

    @property
    def pending(self) -> int:
        return self._pending

    def close(self, *, clean: bool) -> None:
        """Release the lock; ``clean`` (every claim stored) removes the log, which is what
        tells the next start that this run stopped cleanly."""
        if self._fd is None:
            return
        if clean and self._pending == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            _fsync_dir(self.path)
        os.close(self._fd)
        self._fd = None

    def _require(self) -> int:
        if self._fd is None:
            raise StoreError("claim log is not open", code=ErrorCode.STORE_UNAVAILABLE)
        return self._fd


def _fsync_dir(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
