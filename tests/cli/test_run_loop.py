"""``oexec run`` serves on uvloop when it is installed, on asyncio's loop otherwise."""

from __future__ import annotations

import asyncio

import pytest

from oexec.cli.run import run_on_fast_loop


def test_the_daemon_coroutine_runs_on_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> int:
        return 7 if isinstance(asyncio.get_running_loop(), uvloop.Loop) else 0

    assert run_on_fast_loop(main()) == 7
