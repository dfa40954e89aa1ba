"""The live dashboard: snapshot content, SSE stream on a real socket, packaged assets."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from oexec.models.enums import OrderState
from oexec.ops.account_panel import account_panel
from oexec.ops.dashboard import STATIC_FILES, _static
from oexec.ops.http import FEED_KEY, build_ops_app, start_ops_server
from oexec.ops.metrics import Liquidity, Metrics, RateWindow
from oexec.ops.order_metrics import ACTIVE_ROWS, OrderBook
from oexec.ops.snapshot import LatencyWindow, SnapshotBuilder, bucket_quantile

from .factories import order

PANEL_IDS = (
    "panel-orders",
    "panel-latency",
    "panel-breaker",
    "panel-fills",
    "panel-rejections",
    "panel-limits",
    "panel-health",
    "panel-positions",
    "panel-balances",
)


def test_bucket_quantile_interpolates_like_promql() -> None:
    bounds = [0.001, 0.01, 0.1, float("inf")]
    assert bucket_quantile(0.5, bounds, [0, 10, 10, 10]) == pytest.approx(0.0055)
    assert bucket_quantile(0.99, bounds, [5, 5, 10, 10]) == pytest.approx(0.0982)
    assert bucket_quantile(0.5, bounds, [0, 0, 0, 4]) == 0.1  # all above the last bound
    assert bucket_quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert bucket_quantile(0.5, [], []) is None


def test_latency_window_forgets_old_observations() -> None:
    m = Metrics()
    window = LatencyWindow(window_s=10)
    for _ in range(10):
        m.submission_latency("BTCUSDT", 0.5)
    first = window.update(m.order_submission_duration, now=100.0)["binance_usdm"]
    assert first["p50"] is not None and 0.25 < first["p50"] <= 0.5
    for _ in range(10):
        m.submission_latency("ETHUSDT", 0.002)
    later = window.update(m.order_submission_duration, now=105.0)["binance_usdm"]
    assert later["count"] == 10  # only what happened since the oldest kept snapshot
    assert later["p99"] is not None and later["p99"] <= 0.0025


def drive(m: Metrics) -> None:
    """One of everything the seven panels show."""
    m.order_change(None, order(OrderState.SUBMITTING, "a"))
    m.order_change(order(OrderState.SUBMITTING, "a"), order(OrderState.NEW, "a"))
    m.order_change(None, order(OrderState.REJECTED, "b", error_code="MIN_NOTIONAL"))
    m.submission_latency("BTCUSDT", 0.004)
    m.breaker_transition("closed", "open")
    m.set_breaker_failures(5)
    m.record_fill(
        "BTCUSDT", Liquidity.MAKER, notional=Decimal(100), fee=Decimal("0.02"), fee_asset="USDT"
    )
    m.set_rate_limit(RateWindow.ORDERS_10S, 12, 240)
    m.rate_limit_hit("orders")
    m.venue_request("/fapi/v1/order", 200, 0.004)
    m.venue_error(-2019)
    m.request("place", "ok", 0.004)
    m.request("place", "MIN_NOTIONAL", 0.0001)
    m.set_user_stream_connected(True)


def test_snapshot_has_every_panel() -> None:
    m = Metrics(started_at=time.time() - 10)
    drive(m)
    snap = SnapshotBuilder(m).build()
    assert snap["active_orders"]["open"] == 1
    assert snap["active_orders"]["by_state"] == {"NEW": 1}
    assert snap["active_orders"]["placed_total"] == 1
    assert [(o["id"], o["state"]) for o in snap["active_orders"]["orders"]] == [("a", "NEW")]
    assert [(o["id"], o["state"]) for o in snap["active_orders"]["recent_activity"]] == [
        ("b", "REJECTED")
    ]
    assert snap["latency"]["binance_usdm"]["p50"] is not None
    assert snap["breaker"]["state"] == {"venue": 2}
    assert snap["breaker"]["failures"] == {"venue": 5}
    assert snap["breaker"]["transitions"][0]["to"] == "open"
    assert snap["fills"]["count"] == {"maker": 1}
    assert snap["fills"]["fees"] == {"USDT/maker": pytest.approx(0.02)}
    assert snap["rejections"]["by_reason"] == {"MIN_NOTIONAL": 1}
    assert snap["rate_limits"]["usage"]["orders_10s"] == 12
    assert snap["rate_limits"]["limit"]["orders_10s"] == 240
    assert snap["rate_limits"]["reached"] == {"orders": 1}
    assert snap["rate_limits"]["requests_by_endpoint"] == {"/fapi/v1/order": 1}
    assert snap["health"]["uptime_seconds"] >= 10
    assert snap["health"]["requests_by_code"] == {"ok": 1, "MIN_NOTIONAL": 1}
    assert snap["health"]["venue_errors"] == {"-2019": 1}
    assert snap["health"]["user_stream_connected"] == 1
    json.dumps(snap)  # JSON-safe as is


def test_canceled_order_leaves_the_open_list_for_the_recent_activity() -> None:
    """Today's bug: a canceled order showed as CANCELED and, in a stale row, as NEW."""
    m = Metrics()
    m.order_change(None, order(OrderState.SUBMITTING, "a", version=1))
    m.order_change(order(OrderState.SUBMITTING, "a"), order(OrderState.NEW, "a", version=2))
    m.order_change(None, order(OrderState.NEW, "b", version=2))
    m.order_change(order(OrderState.NEW, "a"), order(OrderState.CANCELED, "a", version=3))
    snap = SnapshotBuilder(m).build()["active_orders"]
    assert [(o["id"], o["state"]) for o in snap["orders"]] == [("b", "NEW")]
    assert [(o["id"], o["state"]) for o in snap["recent_activity"]] == [("a", "CANCELED")]
    assert snap["open"] == 1


def test_open_rows_one_per_order_newest_change_first_and_bounded() -> None:
    book = OrderBook()
    book.apply(order(OrderState.NEW, "a", version=2))
    book.apply(order(OrderState.NEW, "b", version=2))
    book.apply(order(OrderState.PARTIALLY_FILLED, "a", version=3, filled_quantity=Decimal(1)))
    assert [(r["id"], r["state"], r["filled"]) for r in book.open_rows(10)] == [
        ("a", "PARTIALLY_FILLED", "1"),
        ("b", "NEW", "0"),
    ]
    book.apply(order(OrderState.NEW, "a", version=2))  # an older change reported late
    assert book.open_rows(1)[0]["state"] == "PARTIALLY_FILLED"
    book.apply(order(OrderState.FILLED, "a", version=4))
    book.apply(order(OrderState.FILLED, "a", version=4))  # reported twice: one row
    assert [r["id"] for r in book.finished] == ["a"]
    for i in range(ACTIVE_ROWS + 5):
        book.apply(order(OrderState.NEW, f"n{i}", version=1))
    assert len(book.active) == ACTIVE_ROWS  # memory bounded; the count stays exact
    assert book.open_count() == ACTIVE_ROWS + 6
    assert book.open_rows(2)[0]["id"] == f"n{ACTIVE_ROWS + 4}"


@attrs.frozen
class Leg:
    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal = Decimal(1)
    break_even_price: Decimal = Decimal(1)
    unrealized_pnl: Decimal = Decimal("-0.5")
    liquidation_price: Decimal = Decimal(0)
    mark_price: Decimal = Decimal(1)
    leverage: int = 5
    margin_type: str = "isolated"


@attrs.frozen
class Asset:
    asset: str
    wallet_balance: Decimal
    available_balance: Decimal = Decimal(0)
    margin_balance: Decimal = Decimal(0)
    unrealized_pnl: Decimal = Decimal(0)


@attrs.frozen
class Account:
    positions: dict[tuple[str, str], Leg]
    balances: dict[str, Asset]
    stale: bool = True
    refreshed_at: int = 0


def test_account_panel_lists_open_legs_and_funded_assets_as_strings() -> None:
    assert account_panel(None) is None
    panel = account_panel(
        Account(
            positions={
                ("ETHUSDT", "SHORT"): Leg("ETHUSDT", "SHORT", Decimal("-2.5")),
                ("BTCUSDT", "BOTH"): Leg("BTCUSDT", "BOTH", Decimal(0)),
            },
            balances={"USDT": Asset("USDT", Decimal("10.10")), "BNB": Asset("BNB", Decimal(0))},
        )
    )
    assert panel is not None
    assert [(p["symbol"], p["amount"], p["leverage"]) for p in panel["positions"]] == [
        ("ETHUSDT", "-2.5", 5)
    ]
    assert panel["balances"] == [
        {
            "asset": "USDT",
            "wallet_balance": "10.10",
            "available_balance": "0",
            "margin_balance": "0",
            "unrealized_pnl": "0",
        }
    ]
    assert panel["stale"] is True
    json.dumps(panel)


def test_page_has_seven_panels_and_no_external_assets() -> None:
    html = _static("dashboard.html").decode()
    for panel in PANEL_IDS:
        assert f'id="{panel}"' in html
    for name in ("dashboard.html", *STATIC_FILES):
        text = _static(name).decode()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), name
    # every element id the script writes to exists in the page
    script = _static("dashboard.js").decode()
    for element in set(re.findall(r'\$\("([\w-]+)"\)', script)):
        assert f'id="{element}"' in html, element


@pytest.fixture
async def server() -> AsyncIterator[tuple[web.Application, str, Metrics]]:
    metrics = Metrics()

    async def store() -> None:
        return None

    app = build_ops_app(
        metrics=metrics,
        checks={"store": store},
        readiness=None,
        bearer_token="tok",
        started_at=time.time(),
        snapshot_provider=lambda: {"halted": False},
        dashboard_interval_s=0.05,
    )
    runner, port = await start_ops_server(app)
    yield app, f"http://127.0.0.1:{port}", metrics
    await runner.cleanup()


async def read_events(resp: aiohttp.ClientResponse, n: int) -> list[dict[str, Any]]:
    events = []
    async for line in resp.content:
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
            if len(events) == n:
                break
    return events


async def test_stream_pushes_live_snapshots(
    server: tuple[web.Application, str, Metrics],
) -> None:
    _, base, metrics = server
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(base + "/dashboard/stream") as resp:
            assert resp.status == 401
        async with http.get(base + "/dashboard/stream?access_token=tok") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            (first,) = await read_events(resp, 1)
            assert first["active_orders"]["open"] == 0
            assert first["health"]["checks"] == {"store": "healthy"}
            assert first["extra"] == {"halted": False}
            assert first["account"] is None  # no account view given
            drive(metrics)
            later = await read_events(resp, 2)
        assert later[-1]["active_orders"]["open"] == 1
        assert later[-1]["breaker"]["state"] == {"venue": 2}


async def test_page_and_assets_are_served(server: tuple[web.Application, str, Metrics]) -> None:
    _, base, _ = server
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(base + "/dashboard") as resp:
            assert resp.status == 401
        async with http.get(base + "/dashboard", headers={"Authorization": "Bearer tok"}) as resp:
            assert resp.status == 200
            assert "panel-health" in await resp.text()
        async with http.get(base + "/dashboard/static/dashboard.js") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/javascript"
        async with http.get(base + "/dashboard/static/favicon.svg") as resp:
            assert resp.status == 200  # open, like the other assets: no failed request
            assert resp.content_type == "image/svg+xml"
        async with http.get(base + "/dashboard/static/secrets.env") as resp:
            assert resp.status == 404


async def test_shutdown_ends_open_streams(server: tuple[web.Application, str, Metrics]) -> None:
    app, base, _ = server
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(base + "/dashboard/stream?access_token=tok") as resp:
            await read_events(resp, 1)
            await app[FEED_KEY].close()
            rest = await asyncio.wait_for(resp.content.read(), 5)  # stream ends by itself
    assert rest.count(b"data: ") <= 1
