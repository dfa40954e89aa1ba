"""The dashboard in headless Chromium: every panel shows live data; keeps a screenshot.

Orders flow through the daemon's metric hooks while the page is open; the page is
driven over the DevTools protocol (tests/ops/cdp.py). Skipped when Debian's
``chromium`` is not installed (``apt-get install -y chromium``). The screenshot goes to
``artifacts/dashboard.png`` (git-ignored, kept by CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from oexec.models.enums import OrderState
from oexec.ops.http import build_ops_app, start_ops_server
from oexec.ops.metrics import Liquidity, Metrics, RateWindow

from .cdp import open_page
from .factories import order

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "dash-token-1"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


async def traffic(m: Metrics) -> None:
    """Orders flowing through the daemon's hooks while the page is open."""
    m.breaker_transition("closed", "open")
    m.breaker_transition("open", "half-opened")
    m.set_breaker_failures(2)
    m.set_user_stream_connected(True)
    for i in itertools.count():
        oid = f"o{i}"
        m.order_change(None, order(OrderState.SUBMITTING, oid))
        m.order_change(order(OrderState.SUBMITTING, oid), order(OrderState.NEW, oid))
        m.submission_latency("BTCUSDT", 0.002 + (i % 5) / 1000)
        m.record_fill(
            "BTCUSDT",
            Liquidity.MAKER if i % 3 else Liquidity.TAKER,
            notional=Decimal(500),
            fee=Decimal("0.1"),
            fee_asset="USDT",
        )
        if i % 4 == 0:
            m.order_change(None, order(OrderState.REJECTED, f"r{i}", error_code="PRICE_TICK"))
            m.request("place", "PRICE_TICK", 0.0001)
        m.request("place", "ok", 0.003)
        m.set_rate_limit(RateWindow.ORDERS_10S, i % 50, 240)
        m.set_rate_limit(RateWindow.WEIGHT_1M, 10 * i, 2400)
        m.venue_request("/fapi/v1/order", 200, 0.003)
        await asyncio.sleep(0.05)


@pytest.fixture
async def live_url() -> AsyncIterator[str]:
    metrics = Metrics(started_at=time.time() - 3725)

    async def store() -> None:
        return None

    app = build_ops_app(
        metrics=metrics,
        checks={"store": store},
        readiness=None,
        bearer_token=TOKEN,
        started_at=metrics.started_at,
        dashboard_interval_s=0.2,
    )
    runner, port = await start_ops_server(app)
    driver = asyncio.create_task(traffic(metrics))
    try:
        yield f"http://127.0.0.1:{port}/dashboard?access_token={TOKEN}"
    finally:
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
        await runner.cleanup()


async def test_panels_show_live_data(live_url: str) -> None:
    assert CHROMIUM is not None
    async with open_page(CHROMIUM, live_url) as page:
        # a few seconds of pushed snapshots, so rates and charts have history
        await page.wait_for("Number(document.body?.dataset.snapshots || 0) >= 12")
        t = await page.texts_by_id()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard.png").write_bytes(await page.screenshot())
    assert int(t["open-count"]) > 0  # 1. active orders
    assert "NEW" in t["states"] and "BTCUSDT" in t["recent-orders"]
    assert "ms binance_usdm" in t["latency-kpis"]  # 2. latency
    assert any(ch.isdigit() for ch in t["latency-kpis"])
    assert "half-open" in t["breaker-states"] and "failures 2" in t["breaker-states"]  # 3.
    assert "open → half_open" in t["breaker-history"]
    assert t["maker-ratio"].endswith("%") and int(t["maker-count"]) > 0  # 4. maker/taker
    assert "USDT" in t["fees"]
    assert int(t["reject-total"]) > 0 and "PRICE_TICK" in t["reject-reasons"]  # 5.
    assert float(t["reject-rate"]) > 0
    assert "orders_10s:" in t["limit-bars"] and "/ 240" in t["limit-bars"]  # 6. limits
    assert "/fapi/v1/order" in t["limit-endpoints"]
    assert t["uptime"].startswith("1h 2m")  # 7. health
    assert "healthy" in t["dependencies"] and "connected" in t["dependencies"]
    assert "PRICE_TICK" in t["errors"]
    assert t["conn"] == "live"
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 20_000  # a rendered page
