"""sd_notify and the watchdog, for ``Type=notify`` units (systemd/oexec.service).

The protocol is one AF_UNIX datagram of ``KEY=VALUE`` lines to ``$NOTIFY_SOCKET``
(``@name`` = abstract namespace). Outside systemd the variable is unset and every call
is a no-op returning False, so the daemon runs the same way under a terminal, Docker
or tests. The watchdog pings from an asyncio task: if the event loop stalls, pings stop
and systemd restarts the daemon, which is the point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

from oexec.tasks import cancel_and_wait

log = logging.getLogger(__name__)

READY = "READY=1"
STOPPING = "STOPPING=1"
RELOADING = "RELOADING=1"
WATCHDOG = "WATCHDOG=1"


def _address(env: Mapping[str, str]) -> str | None:
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    return "\0" + path[1:] if path.startswith("@") else path


def notify(*states: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``states`` (e.g. ``READY=1``, ``STATUS=...``) in one datagram.

    Returns True when sent, False when not under systemd or the send failed (logged;
    a notification failure must never take the daemon down).
    """
    address = _address(os.environ if env is None else env)
    if address is None or not states:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
        return False
    return True


def status(text: str) -> str:
    """A ``STATUS=`` line (shown by ``systemctl status``); newlines are not allowed."""
    return "STATUS=" + text.replace("\n", " ")


def extend_timeout(seconds: float) -> str:
    """An ``EXTEND_TIMEOUT_USEC=`` line: a slow drain asks for more stop time."""
    return f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}"


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``$WATCHDOG_USEC``), or None when not requested.

    ``$WATCHDOG_PID``, when set, must be this process: a child must not ping for us.
    """
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


async def watchdog_loop(
    interval_s: float,
    *,
    alive: Callable[[], bool] | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Ping every ``interval_s`` while ``alive()`` holds (a stuck daemon stops pinging)."""
    while True:
        if alive is None or alive():
            notify(WATCHDOG, env=env)
        await asyncio.sleep(interval_s)


def start_watchdog(
    *,
    alive: Callable[[], bool] | None = None,
    env: Mapping[str, str] | None = None,
) -> asyncio.Task[None] | None:
    """Start the ping task when systemd asked for a watchdog; cancel it at shutdown."""
    interval = watchdog_interval(env)
    if interval is None or _address(os.environ if env is None else env) is None:
        return None
    return asyncio.create_task(watchdog_loop(interval, alive=alive, env=env), name="sd-watchdog")


async def stop_watchdog(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    await cancel_and_wait([task])
