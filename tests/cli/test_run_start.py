"""``oexec run`` that cannot start says why in one line and exits 1 - no traceback.

A new user's first daemon met a traceback for ``--store sqlite:///tmp/x.sqlite`` (a
relative path: ``tmp/x.sqlite`` under the working directory), a dead venue URL or a port
in use. Real processes: the exit code and stderr are what the user sees.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

from oexec.sim.app import SimServer

from ..ports import free_port


def run_daemon(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OEXEC_API_KEY="test-key-1", OEXEC_API_SECRET="test-secret-1")
    return subprocess.run(
        [sys.executable, "-m", "oexec.cli.main", "run", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def loopback_flags() -> list[str]:
    return [
        "--listen",
        f"tcp://127.0.0.1:{free_port()}",
        "--publish",
        f"tcp://127.0.0.1:{free_port()}",
        "--http",
        f"127.0.0.1:{free_port()}",
    ]


def test_a_store_that_cannot_open_is_named_with_the_url_rule(tmp_path: Path) -> None:
    done = run_daemon(
        tmp_path,
        "--venue",
        f"http://127.0.0.1:{free_port()}",
        "--store",
        "sqlite:///no-such-dir/x.sqlite",
        *loopback_flags(),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "oexec run: cannot start:" in done.stderr
    assert "'no-such-dir/x.sqlite'" in done.stderr
    assert "sqlite:////abs.db absolute" in done.stderr


def test_an_unreachable_venue_is_named(tmp_path: Path) -> None:
    venue = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_daemon(
        tmp_path, "--venue", venue, "--store", f"sqlite:///{tmp_path}/x.sqlite", *loopback_flags()
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "oexec run: cannot start: venue unreachable" in done.stderr
    assert f"(venue {venue})" in done.stderr


async def test_a_request_port_in_use_is_named(sim: SimServer, tmp_path: Path) -> None:
    """Against a live simulator, so the daemon gets as far as binding its sockets."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = loopback_flags()
        flags[1] = f"tcp://127.0.0.1:{port}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "oexec.cli.main",
            "run",
            "--venue",
            sim.base_url,
            "--store",
            f"sqlite:///{tmp_path}/x.sqlite",
            *flags,
            cwd=tmp_path,
            env=dict(os.environ, OEXEC_API_KEY=sim.api_key, OEXEC_API_SECRET=sim.api_secret),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert (
        f"oexec run: cannot start: Address already in use (addr='tcp://127.0.0.1:{port}')" in stderr
    )


def test_a_redis_password_is_not_shown(tmp_path: Path) -> None:
    done = run_daemon(
        tmp_path,
        "--venue",
        f"http://127.0.0.1:{free_port()}",
        "--store",
        f"redis://:hunter2-secret@127.0.0.1:{free_port()}/15",
        *loopback_flags(),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "oexec run: cannot start:" in done.stderr
    assert "hunter2-secret" not in done.stderr
