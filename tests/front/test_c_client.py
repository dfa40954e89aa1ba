"""The C example client (scripts/clients/oexec_client.c) against a real FrontEnd."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from oexec.front import FrontEnd
from oexec.front.testing import InMemoryOrderService

SOURCE = Path(__file__).resolve().parents[2] / "scripts" / "clients" / "oexec_client.c"


@pytest.fixture(scope="module")
def c_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    if not Path("/usr/include/zmq.h").exists() and not Path("/usr/local/include/zmq.h").exists():
        pytest.skip("libzmq headers missing: apt-get install libzmq3-dev")
    binary = tmp_path_factory.mktemp("cclient") / "oexec_client"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-Werror", "-o", str(binary), str(SOURCE), "-lzmq"],
        check=True,
        timeout=60,
    )
    return binary


async def test_c_client_places_and_gets(
    c_client: Path, front: FrontEnd, service: InMemoryOrderService
) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(c_client),
        front.endpoints[0],
        "c-req-1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    placed, got, amended = (json.loads(line) for line in stdout.decode().splitlines())
    assert placed["ok"] is True and placed["id"] == 1 and placed["v"] == 1
    assert placed["result"]["order"]["quantity"] == "0.010"
    assert got["id"] == 2 and got["result"]["order"] == placed["result"]["order"]
    assert amended["id"] == 3 and amended["result"]["order"]["price"] == "49900"
    assert amended["result"]["order"]["id"] == placed["result"]["order"]["id"]
    assert service.calls == ["place_order", "get_order", "modify_order"]
    assert list(service.by_request) == ["c-req-1"]


async def test_c_client_reports_error(
    c_client: Path, front: FrontEnd, service: InMemoryOrderService
) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(c_client),
        front.endpoints[0],
        "bad id with spaces",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    reply = json.loads(stdout.decode().splitlines()[0])
    assert (
        reply["error"]["code"] == "BAD_REQUEST"
        and reply["error"]["details"]["field"] == "request_id"
    )
    assert service.calls == []
