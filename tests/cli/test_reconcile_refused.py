"""``oexec reconcile --check`` after orders our own checks refused (found as a new user:
one order refused as SYMBOL_UNKNOWN made every later check fail with the venue's
"-1121 Invalid symbol", exit 2). Such orders were never sent: nothing to compare."""

from __future__ import annotations

import asyncio

import pytest

from oexec.app import Daemon
from oexec.cli.main import main
from oexec.client import AsyncClient, ClientError
from oexec.sim.app import SimServer

from ..e2e.conftest import endpoint


def order(request_id: str, symbol: str, price: str) -> dict[str, str]:
    return dict(
        symbol=symbol, side="BUY", type="LIMIT", quantity="0.010", price=price,
        time_in_force="GTC", request_id=request_id,
    )  # fmt: skip


async def test_orders_refused_before_the_venue_are_not_compared(
    daemon: Daemon,
    sim: SimServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OEXEC_API_KEY", sim.api_key)
    monkeypatch.setenv("OEXEC_API_SECRET", sim.api_secret)
    async with AsyncClient(endpoint(daemon)) as client:
        await client.place_order(**order("ok-1", "BTCUSDT", "49000.0"))
        for request_id, symbol, price in [
            ("bad-symbol", "NOPEUSDT", "49000.0"),
            ("bad-tick", "BTCUSDT", "49000.05"),
        ]:
            with pytest.raises(ClientError):
                await client.place_order(**order(request_id, symbol, price))
    argv = ["reconcile", "--check", "--venue", sim.base_url]
    argv += ["--store", f"sqlite:///{daemon.config.store.sqlite_path}"]
    capsys.readouterr()
    assert await asyncio.to_thread(main, argv) == 0
    assert "agree" in capsys.readouterr().out
