"""The live dashboard of a REAL daemon in headless Chromium: all seven panels show the
orders the test drives through the daemon (fills as maker and taker, rejections,
cancels, a breaker trip and recovery), canceled orders leave the open list for the
recent activity, the position and balances from the daemon's account view show, and no
request of the page fails; the screenshot is kept as
``artifacts/dashboard-daemon.png``. Skipped when Debian's ``chromium`` is missing
(scripts/test installs it)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from oexec.app import Daemon
from oexec.client import AsyncClient, ClientError
from oexec.config import BreakerConfig

from ..e2e.conftest import DaemonFactory, SimControl, endpoint
from ..ops.cdp import open_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOT = ARTIFACTS / "dashboard-daemon.png"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


@pytest.fixture
def store_kind() -> str:
    return "sqlite"


def order(rid: str, price: str | None = "49000.0", quantity: str = "0.010") -> dict[str, Any]:
    fields: dict[str, Any] = dict(symbol="BTCUSDT", side="BUY", quantity=quantity, request_id=rid)
    if price is None:
        return fields | {"type": "MARKET"}
    return fields | {"type": "LIMIT", "price": price, "time_in_force": "GTC"}


async def attempt(client: AsyncClient, rid: str, **kw: Any) -> None:
    with contextlib.suppress(ClientError):
        await client.place_order(**order(rid, **kw))


async def traffic(daemon: Daemon, control: SimControl) -> None:
    """Orders of every kind through the daemon, then a steady trickle."""
    async with AsyncClient(endpoint(daemon)) as client:
        resting = [await client.place_order(**order(f"d-rest{i}")) for i in range(3)]
        await client.cancel_order(order_id=resting[0].id)
        await attempt(client, "d-tick", price="49000.05")  # PRICE_TICK
        await attempt(client, "d-step", quantity="0.0101")  # QTY_STEP
        await attempt(client, "d-take", price=None)  # a market order: taker fill
        await control.price("BTCUSDT", "48900.0")  # the resting ones fill: maker
        await control.fault("error_5xx", count=2, path="/fapi/v1/order")
        await attempt(client, "d-brk0", price="47000.0")
        await attempt(client, "d-brk1", price="47000.0")  # breaker opens
        await attempt(client, "d-brk2", price="47000.0")  # refused: BREAKER_OPEN
        await asyncio.sleep(1.2)
        await attempt(client, "d-brk3", price="47000.0")  # half-open probe closes it
        for i in range(1000):
            placed = await client.place_order(**order(f"d-trickle{i}", price="47000.0"))
            if i % 2 == 0:
                await client.cancel_order(order_id=placed.id)
            if i % 5 == 0:
                await attempt(client, f"d-bad{i}", price="47000.01")
            await asyncio.sleep(0.25)


async def test_dashboard_of_a_real_daemon_shows_all_seven_panels(
    make_daemon: DaemonFactory, control: SimControl
) -> None:
    assert CHROMIUM is not None
    daemon = await make_daemon(
        breaker=BreakerConfig(failure_threshold=2, recovery_timeout_s=1.0, success_threshold=1)
    )
    driver = asyncio.create_task(traffic(daemon, control))
    try:
        async with open_page(CHROMIUM, f"{daemon.http_url}/dashboard") as page:
            await page.wait_for(
                "Number(document.body?.dataset.snapshots || 0) >= 8"
                " && document.getElementById('breaker-history').textContent.includes('open')"
                " && Number(document.getElementById('maker-count').textContent) > 0",
                timeout_s=30,
            )
            await page.wait_for(
                "document.getElementById('recent-activity').textContent.includes('CANCELED')"
                " && document.getElementById('positions').textContent.includes('BTCUSDT')"
            )
            t = await page.texts_by_id()
            open_ids = await page.evaluate(
                "[...document.querySelectorAll('#open-orders tr')].map(tr => tr.dataset.key)"
            )
            activity = await page.evaluate(
                "[...document.querySelectorAll('#recent-activity tr')]"
                ".map(tr => [tr.dataset.key, tr.children[3].textContent])"
            )
            failed = await page.failed_requests()
            ARTIFACTS.mkdir(exist_ok=True)
            SCREENSHOT.write_bytes(await page.screenshot())
    finally:
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
    assert not failed, failed  # the page's every request succeeded (favicon included)
    # 8./9. the account view: long from the market and maker fills, the USDT wallet
    assert "BTCUSDT" in t["positions"] and "BOTH" in t["positions"]
    assert "USDT" in t["balances"] and t["account-state"] in ("current", "refreshing")
    assert int(t["open-count"]) > 0 and "NEW" in t["states"]  # 1. active orders
    assert "BTCUSDT" in t["open-orders"] and "CANCELED" not in t["open-orders"]
    assert len(open_ids) == len(set(open_ids))  # one row per order
    canceled = {oid for oid, state in activity if state == "CANCELED"}
    assert canceled and not canceled & set(open_ids)  # final orders left the open list
    assert "ms binance_usdm" in t["latency-kpis"]  # 2. submission latency
    assert any(ch.isdigit() for ch in t["latency-kpis"])
    assert "closed → open" in t["breaker-history"]  # 3. breaker with history
    assert "failures" in t["breaker-states"]
    assert int(t["maker-count"]) > 0 and int(t["taker-count"]) > 0  # 4. maker/taker
    assert t["maker-ratio"].endswith("%") and "USDT" in t["fees"]
    assert int(t["reject-total"]) > 0 and "PRICE_TICK" in t["reject-reasons"]  # 5.
    assert "QTY_STEP" in t["reject-reasons"]
    assert re.search(r"orders_10s: [1-9]\d* / \d+", t["limit-bars"])  # 6. usage vs limits
    assert "/fapi/v1/order" in t["limit-endpoints"]
    assert t["uptime"] and "healthy" in t["dependencies"]  # 7. system health
    assert "store" in t["dependencies"] and "venue" in t["dependencies"]
    assert "BREAKER_OPEN" in t["errors"]  # refusals before an order exists: error codes
    assert t["conn"] == "live"
    assert SCREENSHOT.stat().st_size > 20_000  # a rendered page
