"""The claim log and the SQLite store's early claim (issue 14): a claim decided on the
loop, logged, written while the order is at the venue - and never lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from oexec.errors import StoreError
from oexec.models import OrderState
from oexec.store import SqliteStore
from oexec.store.claim_log import ClaimLog, frame, parse

from .helpers import make_order

ROOT = Path(__file__).resolve().parents[2]


# --- the log on its own --------------------------------------------------------------------
def test_parse_stops_at_a_torn_tail_and_tells_a_host_restart(tmp_path: Path) -> None:
    log = ClaimLog(str(tmp_path / "x.claims"), boot_id=lambda: "boot-a")
    log.open()
    log.begin()
    log.append(b'{"a":1}', 60, None)
    log.append(b'{"b":2}', 60, b"ev")
    data = (tmp_path / "x.claims").read_bytes()
    log.close(clean=False)

    same = parse(data, "boot-a")
    assert same.unclean and not same.host_restarted
    assert [(c.order, c.events) for c in same.claims] == [(b'{"a":1}', None), (b'{"b":2}', b"ev")]
    torn = parse(data[:-3], "boot-a")  # the last record cut short by a host crash
    assert [c.order for c in torn.claims] == [b'{"a":1}']
    corrupt = data[:-1] + bytes([data[-1] ^ 0xFF])
    assert len(parse(corrupt, "boot-a").claims) == 1
    assert parse(data, "boot-b").host_restarted
    assert parse(b"", "boot-a").host_restarted  # created, header never durable
    with pytest.raises(StoreError, match="not an oexec claim log"):  # someone else's file
        parse(frame(b"\x93\xa1x\xa1y\x01"), "boot-a")


def test_the_log_is_one_daemons_lock_and_a_clean_stop_removes_it(tmp_path: Path) -> None:
    path = str(tmp_path / "db.claims")
    first = ClaimLog(path)
    assert not first.open().unclean
    first.begin()
    with pytest.raises(StoreError, match="another oexec daemon"):
        ClaimLog(path).open()
    first.append(b"{}", 1, None)
    first.close(clean=True)  # a claim not stored yet: not clean, the log stays
    assert os.path.exists(path)
    again = ClaimLog(path)
    assert again.open().unclean
    again.begin()
    again.close(clean=True)
    assert not os.path.exists(path)


def test_the_log_is_cut_back_once_nothing_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("oexec.store.claim_log.TRUNCATE_AT_BYTES", 200)
    path = tmp_path / "db.claims"
    log = ClaimLog(str(path))
    log.open()
    log.begin()
    header = path.stat().st_size
    for _ in range(10):
        log.append(b"x" * 40, 1, None)
    log.stored()  # 9 still waiting: kept
    assert path.stat().st_size > 200
    for _ in range(9):
        log.stored()
    assert path.stat().st_size == header and log.pending == 0
    log.close(clean=True)


# --- the store's early claim ---------------------------------------------------------------
async def test_early_claim_answers_before_its_write_and_the_write_follows(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.sqlite"), claim_log=True)
    await store.start()
    try:
        first = make_order(request_id="r-1")
        result = await store.claim(first, 60, early=True)  # no await inside: not written
        assert result.claimed and result.durable is not None and not result.durable.done()
        # the same request meanwhile takes the batch path, behind the write: it loses
        duplicate = await store.claim(make_order(request_id="r-1"), 60, early=True)
        assert not duplicate.claimed and duplicate.order.id == first.id
        await result.durable
        assert (await store.get_by_request_id("r-1")) == first
        # a request id already stored is known to the loop's read: batch path, lost claim
        again = await store.claim(make_order(request_id="r-1"), 60, early=True)
        assert not again.claimed and again.durable is None
    finally:
        await store.close()
    assert not (tmp_path / "s.sqlite.claims").exists()  # clean stop


async def test_a_second_daemon_on_the_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    first = SqliteStore(path, claim_log=True)
    await first.start()
    second = SqliteStore(path, claim_log=True)
    try:
        with pytest.raises(StoreError, match="one daemon per SQLite file"):
            await second.start()
        reader = SqliteStore(path)  # a tool reading the store needs no lock
        await reader.start()
        await reader.close()
    finally:
        await second.close()
        await first.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, {root!r})
    from tests.store.helpers import make_order
    from oexec.store import SqliteStore

    async def main():
        store = SqliteStore({path!r}, claim_log=True)
        await store.start()
        result = await store.claim(make_order(request_id="killed-1"), 60, early=True)
        assert result.claimed and not result.durable.done()
        print("claimed", result.order.id, flush=True)
        time.sleep(60)  # the loop never gets to write it: killed before the batch runs

    asyncio.run(main())
    """
)


def test_sigkill_before_the_claims_write_loses_nothing(tmp_path: Path) -> None:
    """The order was (as far as the store knows) sent; the process dies before the claim
    is written: the next start stores it from the log, so the request is known (a retry
    is a duplicate, never a second venue order) and the resolver can settle it."""
    path = str(tmp_path / "s.sqlite")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[0] == "claimed", line
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    asyncio.run(_restart_finds(path, line[1]))


async def _restart_finds(path: str, order_id: str) -> None:
    restarted = SqliteStore(path, claim_log=True)
    await restarted.start()
    try:
        assert restarted.recovered_claims == 1
        assert restarted.uncertain_until_ms == 0  # same boot: the log is complete
        stored = await restarted.get_by_request_id("killed-1")
        assert stored is not None and stored.id == order_id
        assert stored.state is OrderState.SUBMITTING  # the resolver's to settle
        retry = await restarted.claim(make_order(request_id="killed-1"), 60, early=True)
        assert not retry.claimed and retry.order.id == order_id
    finally:
        await restarted.close()


async def test_a_log_from_another_boot_opens_the_uncertain_window(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    log = ClaimLog(path + ".claims", boot_id=lambda: "an-earlier-boot")
    log.open()
    log.begin()
    log.close(clean=False)
    store = SqliteStore(path, claim_log=True)
    await store.start()
    try:
        assert store.uncertain_until_ms > time.time() * 1000
    finally:
        await store.close()


async def test_a_failed_claim_write_refuses_the_request_until_it_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oexec.store.sqlite_db import SqliteDb

    store = SqliteStore(str(tmp_path / "s.sqlite"), claim_log=True)
    await store.start()
    real = SqliteDb.claim
    failures = [1]

    def flaky(self: SqliteDb, *args: object, **kwargs: object) -> object:
        if failures:
            failures.pop()
            raise OSError("disk I/O error")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteDb, "claim", flaky)
    try:
        result = await store.claim(make_order(request_id="f-1"), 60, early=True)
        assert result.durable is not None
        with pytest.raises(StoreError):
            await result.durable
        with pytest.raises(StoreError, match="not stored yet"):
            await store.claim(make_order(request_id="f-1"), 60, early=True)
        deadline = time.monotonic() + 5
        while True:  # retried a second later; refused until that write has landed, i.e.
            # also fsynced (a read may see the row before: it is answered at the COMMIT)
            try:
                lost = await store.claim(make_order(request_id="f-1"), 60, early=True)
                break
            except StoreError as exc:
                assert "not stored yet" in str(exc) and time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert not lost.claimed and lost.order.id == result.order.id
    finally:
        await store.close()
