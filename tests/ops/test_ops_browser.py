"""The dashboard in headless Chromium: every panel shows live data; keeps a screenshot.

Orders flow through the daemon's metric hooks while the page is open; the page is
driven over the DevTools protocol (tests/ops/cdp.py), which also records every request
the page makes: none may fail (the favicon included). Open orders are one row each,
updated in place; a canceled order leaves them for the recent activity. Skipped when
Debian's ``chromium`` is not installed (``apt-get install -y chromium``). The
screenshot goes to ``artifacts/dashboard.png`` (git-ignored, kept by CI).
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

import attrs
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
    keep = order(OrderState.NEW, "keep", version=1)
    m.order_change(None, keep)
    for i in itertools.count():
        oid = f"o{i}"
        m.order_change(None, order(OrderState.SUBMITTING, oid, version=1))
        m.order_change(order(OrderState.SUBMITTING, oid), order(OrderState.NEW, oid, version=2))
        if i % 2:  # every other one is canceled: it must leave the open list
            m.order_change(order(OrderState.NEW, oid), order(OrderState.CANCELED, oid, version=3))
        # one order that stays open and fills a little more each time: its row changes
        part = attrs.evolve(
            keep,
            state=OrderState.PARTIALLY_FILLED,
            filled_quantity=Decimal("0.0001") * (i % 90 + 1),
            version=i + 2,
        )
        m.order_change(keep, part)
        keep = part
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


@attrs.frozen
class Leg:
    """A position as the account view holds it (oexec/ops/account_panel.py's interface)."""

    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal = Decimal("50000")
    break_even_price: Decimal = Decimal("50020")
    unrealized_pnl: Decimal = Decimal("-1.25")
    liquidation_price: Decimal = Decimal("41000")
    mark_price: Decimal = Decimal("49875")
    leverage: int = 20
    margin_type: str = "cross"


@attrs.frozen
class Asset:
    asset: str
    wallet_balance: Decimal
    available_balance: Decimal = Decimal("9000")
    margin_balance: Decimal = Decimal("9998.75")
    unrealized_pnl: Decimal = Decimal("-1.25")


@attrs.frozen
class Account:
    positions: dict[tuple[str, str], Leg]
    balances: dict[str, Asset]
    stale: bool = False
    refreshed_at: int = 1


ACCOUNT = Account(
    positions={
        ("BTCUSDT", "BOTH"): Leg("BTCUSDT", "BOTH", Decimal("0.010")),
        ("ETHUSDT", "BOTH"): Leg("ETHUSDT", "BOTH", Decimal(0)),  # flat: not listed
    },
    balances={
        "USDT": Asset("USDT", Decimal("10000")),
        "BNB": Asset("BNB", Decimal(0), Decimal(0), Decimal(0)),
    },
)


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
        account_source=lambda: ACCOUNT,
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
        # mark the open order's row: it must be the same element after more snapshots
        keep_row = "document.querySelector('#open-orders tr[data-key=\"keep\"]')"
        await page.wait_for(f"!!{keep_row}")
        await page.evaluate(f"{keep_row}.dataset.mark = {keep_row}.children[6].textContent")
        await page.wait_for("Number(document.body?.dataset.snapshots || 0) >= 12")
        await page.wait_for(f"{keep_row}.children[6].textContent !== {keep_row}.dataset.mark")
        same_row = await page.evaluate(f"{keep_row}.dataset.mark !== undefined")  # not rebuilt
        t = await page.texts_by_id()
        open_ids = await page.evaluate(
            "[...document.querySelectorAll('#open-orders tr')].map(tr => tr.dataset.key)"
        )
        activity = await page.evaluate(
            "[...document.querySelectorAll('#recent-activity tr')]"
            ".map(tr => [tr.dataset.key, tr.children[3].textContent])"
        )
        failed = await page.failed_requests()
        requested = page.requested()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard.png").write_bytes(await page.screenshot())
    assert not failed, failed  # every request of the page succeeded
    assert same_row  # the open order's row was updated in place
    assert any(url.endswith("/dashboard/static/favicon.svg") for url in requested)
    assert int(t["open-count"]) > 0  # 1. active orders: open ones only, one row each
    assert "NEW" in t["states"] and "BTCUSDT" in t["open-orders"]
    assert "CANCELED" not in t["open-orders"] and len(open_ids) == len(set(open_ids))
    canceled = {oid for oid, state in activity if state == "CANCELED"}
    assert canceled and not canceled & set(open_ids)  # a canceled order left the list
    assert all(int(oid[1:]) % 2 for oid in canceled)
    assert "BTCUSDT" in t["positions"] and "0.010" in t["positions"]  # 8. positions
    assert "ETHUSDT" not in t["positions"] and "20x" in t["positions"]
    assert "USDT" in t["balances"] and "BNB" not in t["balances"]  # 9. balances
    assert t["account-state"] == "current"
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
