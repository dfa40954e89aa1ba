"""The C healing subscriber (scripts/clients/oexec_heal.c) against a real event log,
PUB socket and request socket: history from seq 0, live events, a restart on the same
port whose first events it cannot hear, and a flagged repeat - every event once, in
order (issue 17: the healing algorithm works outside Python)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from oexec.config import FrontConfig
from oexec.events.logged import LoggedSequenceSink
from oexec.events.store_log import StoreSequenceSink
from oexec.front.router import FrontEnd
from oexec.store import SqliteStore

from ..ports import free_port
from .test_event_log import ReplayService, start_bound

pytestmark = pytest.mark.timeout(60)

SOURCE = Path(__file__).resolve().parents[2] / "scripts" / "clients" / "oexec_heal.c"


@pytest.fixture(scope="module")
def c_heal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    if not Path("/usr/include/zmq.h").exists() and not Path("/usr/local/include/zmq.h").exists():
        pytest.skip("libzmq headers missing: apt-get install libzmq3-dev")
    binary = tmp_path_factory.mktemp("cheal") / "oexec_heal"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE), "-lzmq"],
        check=True,
        timeout=60,
    )
    return binary


async def _publish(sink: LoggedSequenceSink, first: int, count: int) -> None:
    for n in range(first, first + count):
        await sink.publish("order.updated", {"order": {"id": f"o{n}", "version": 1}, "n": n})
    await sink.flush()


async def test_c_subscriber_heals_history_restart_and_repeats(c_heal: Path, tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "events.sqlite"))
    await store.start()
    pub = f"tcp://127.0.0.1:{free_port()}"
    service = ReplayService()
    sink = StoreSequenceSink([pub], store=store)
    await sink.start()
    service.sink = sink
    front = FrontEnd(service, FrontConfig(listen=(f"tcp://127.0.0.1:{free_port()}",)))
    await front.start()
    proc = None
    try:
        await _publish(sink, 0, 30)  # history: before the subscriber exists
        total = 30 + 10 + 15 + 5
        proc = await asyncio.create_subprocess_exec(
            str(c_heal), front.endpoints[0], pub, "0", str(total),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.sleep(1.0)
        await _publish(sink, 30, 10)  # live
        await sink.publish(
            "order.updated", {"order": {"id": "o3", "version": 1}, "redelivered": True}
        )
        await sink.close()
        sink = StoreSequenceSink([pub], store=store)  # a restart on the same port
        await start_bound(sink)
        service.sink = sink
        await _publish(sink, 40, 15)  # before the subscriber has reconnected: unheard
        await asyncio.sleep(1.0)
        await _publish(sink, 55, 5)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
        await sink.close()
        await front.stop()
        await store.close()
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    repeat_seq = 41  # the flagged repeat of o3, dropped by its key
    assert [e["seq"] for e in lines] == [s for s in range(1, total + 2) if s != repeat_seq]
    assert all(e["replayed"] == 1 for e in lines[:30])  # the history came from replay
    assert any(e["replayed"] == 1 for e in lines[40:])  # the restart's unheard events too
