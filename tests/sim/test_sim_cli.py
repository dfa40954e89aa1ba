"""``oexec sim`` as a user runs it: a real process, banner, a request, Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

import aiohttp

from oexec.sim import cli
from oexec.sim.config import SimConfig

from ..ports import free_port


async def test_oexec_sim_process_serves_and_stops_on_sigint() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oexec.cli.main",
        "sim",
        "--port",
        str(port),
        "--seed",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while len(lines) < 4:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, "process ended early"
            lines.append(line.decode())
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text and "oexec-sim-key" in text
        assert "oexec-sim-secret" in text and "/ws/<listenKey>" in text
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/fapi/v1/ping") as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_config_file_exits_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oexec.cli.main",
        "sim",
        "--config",
        "/nonexistent.toml",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2 and b"cannot read" in err


async def test_serve_in_process_until_stopped(capsys: object) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(cli.serve(SimConfig(port=0), stop))
    await asyncio.sleep(0.2)
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0


def test_port_in_use_exits_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        args = argparse.Namespace(
            host=None,
            port=port,
            seed=None,
            api_key=None,
            api_secret=None,
            config=None,
            tick_ms=None,
            no_rate_limits=False,
        )
        assert cli.run(args) == 2


async def test_tick_interval_moves_prices() -> None:
    from oexec.sim.app import SimServer

    async with SimServer(SimConfig(tick_interval_ms=10, seed=2)) as sim:

        def price() -> object:
            ticker = sim.exchange.ticker_price("BTCUSDT")
            assert isinstance(ticker, dict)
            return ticker["price"]

        before = price()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if price() != before:
                break
        assert price() != before
