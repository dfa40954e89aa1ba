"""``oexec run`` as a systemd ``Type=notify`` service: READY, WATCHDOG, RELOADING and
STOPPING on a real notify socket; SIGHUP reloads what is safe; SIGTERM exits 0."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from oexec.client import AsyncClient, ClientError
from oexec.models import OrderState
from oexec.sim.app import SimServer

from .proc import STOP_TIMEOUT_S, NotifySocket, OexecRun, poll_until


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def order(rid: str, qty: str = "0.010") -> dict[str, str]:
    return dict(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity=qty,
        price="48000.0",
        time_in_force="GTC",
        request_id=rid,
    )


async def test_notify_ready_watchdog_stopping_and_clean_exit(
    sim: SimServer, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    daemon = OexecRun(sim, tmp_path, notify=notify_socket, watchdog_usec=400_000)
    daemon.spawn()
    try:
        await notify_socket.wait_for("READY=1")
        await daemon.wait_ready()
        await notify_socket.wait_for("WATCHDOG=1", count=3, within_s=5)  # every 0.2 s
        assert notify_socket.lines().index("READY=1") < notify_socket.lines().index("WATCHDOG=1")
        code, seconds = await daemon.terminate()
    finally:
        daemon.kill()
    lines = notify_socket.lines()
    assert "STOPPING=1" in lines and lines.index("STOPPING=1") > lines.index("READY=1")
    assert code == 0 and seconds < STOP_TIMEOUT_S, daemon.log_text()
    assert "Traceback" not in daemon.log_text()


CONFIG = """
[logging]
level = "{level}"
json = false

[risk]
max_order_notional = "{notional}"

[validation.overrides.BTCUSDT]
{override}
"""


def write_config(path: Path, *, level: str, notional: str, override: str = "") -> Path:
    path.write_text(CONFIG.format(level=level, notional=notional, override=override))
    return path


async def refusal(client: AsyncClient, rid: str, qty: str = "0.010") -> str | None:
    """The error code of a place, or None when the order was accepted."""
    try:
        placed = await client.place_order(**order(rid, qty))
    except ClientError as exc:
        return str(getattr(exc.code, "value", exc.code))
    assert placed.state is OrderState.NEW
    return None


async def test_sighup_reloads_risk_limits_overrides_and_log_level(
    sim: SimServer, tmp_path: Path, notify_socket: NotifySocket
) -> None:
    config = write_config(tmp_path / "oexec.toml", level="WARNING", notional="100000")
    daemon = OexecRun(sim, tmp_path, notify=notify_socket, config=config)
    daemon.spawn()
    try:
        await daemon.wait_ready()
        async with AsyncClient(daemon.endpoint) as client:
            assert await refusal(client, "hup-1") is None  # 480 USDT < 100000

            write_config(config, level="INFO", notional="100", override='max_qty = "0.005"')
            daemon.signal(signal.SIGHUP)
            await notify_socket.wait_for("RELOADING=1", within_s=10)
            await notify_socket.wait_for("READY=1", count=2, within_s=10)
            assert await refusal(client, "hup-2", qty="0.004") == "RISK_MAX_NOTIONAL"
            write_config(config, level="INFO", notional="100000", override='max_qty = "0.005"')
            daemon.signal(signal.SIGHUP)
            await notify_socket.wait_for("READY=1", count=3, within_s=10)
            assert await refusal(client, "hup-3") == "QTY_ABOVE_MAX"  # the override applies
            assert await refusal(client, "hup-4", qty="0.005") is None

            config.write_text('[risk]\nmax_order_notional = "lots"\n')  # bad: not a number
            daemon.signal(signal.SIGHUP)
            await until_log(daemon, "reload refused")
            assert await refusal(client, "hup-5", qty="0.005") is None  # nothing changed
        code, _ = await daemon.terminate()
    finally:
        daemon.kill()
    log = daemon.log_text()
    assert "reload: applied log level INFO" in log
    assert code == 0, log


async def until_log(daemon: OexecRun, text: str, within_s: float = 10.0) -> None:
    await poll_until(lambda: text in daemon.log_text(), within_s)
