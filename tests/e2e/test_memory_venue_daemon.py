"""The daemon on the in-process venue: ``[venue] name = "memory"`` (issue 15). The
composition root opens whatever venue package the config names; the whole daemon
(front end, pipeline, tracking on the venue's stream) runs on it unchanged."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from oexec.app import Daemon
from oexec.client import AsyncClient
from oexec.config import (
    Config,
    EventsConfig,
    FrontConfig,
    HttpConfig,
    LoggingConfig,
    StoreConfig,
    TrackingConfig,
    VenueConfig,
)
from oexec.models import OrderState

from .conftest import endpoint


async def test_the_daemon_runs_on_the_memory_venue(tmp_path: Path) -> None:
    config = Config(
        front=FrontConfig(listen=("tcp://127.0.0.1:*",)),
        events=EventsConfig(publish=("tcp://127.0.0.1:*",)),
        http=HttpConfig(port=0),
        store=StoreConfig(sqlite_path=str(tmp_path / "oexec.sqlite")),
        venue=VenueConfig(name="memory"),
        tracking=TrackingConfig(poll_interval_s=0.2),
        logging=LoggingConfig(level="WARNING"),
    )
    async with Daemon(config) as daemon:
        venue: Any = daemon.venue  # the memory venue's own controls
        async with AsyncClient(endpoint(daemon), timeout_s=10) as client:
            order = await client.place_order(
                request_id="m-1",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                quantity="0.010",
                price="49000.0",
                time_in_force="GTC",
            )
            assert order.state is OrderState.NEW
            venue.fill(order.client_order_id, Decimal("0.010"))
            for _ in range(250):
                current = await client.get_order(order_id=order.id)
                if current.state is OrderState.FILLED:
                    break
                await asyncio.sleep(0.02)
            assert current.state is OrderState.FILLED and current.filled_quantity == Decimal(
                "0.010"
            )
