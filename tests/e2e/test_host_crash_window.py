"""After a host crash the embedded store may have lost claims whose orders reached the
venue (issue 14, oexec/store/claim_log.py): until the window closes, a request id the
store does not know is looked up at the venue by client order id before it is sent."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from oexec.client import AsyncClient
from oexec.config import StoreConfig, VenueConfig
from oexec.models import OrderTerms, OrderType, Side, TimeInForce
from oexec.service.client_ids import client_order_id_for
from oexec.service.ports import VenueOrderRequest
from oexec.sim.app import SimServer
from oexec.store.claim_log import ClaimLog
from oexec.venue.binance.adapter import BinanceUsdmVenue

from .conftest import DaemonFactory, SimControl, endpoint


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_a_request_sent_before_a_host_crash_is_found_not_sent_again(
    sim: SimServer, control: SimControl, make_daemon: DaemonFactory, tmp_path: Path
) -> None:
    path = tmp_path / "crashed.sqlite"
    log = ClaimLog(str(path) + ".claims", boot_id=lambda: "a-boot-before-the-crash")
    log.open()
    log.begin()  # what a daemon of an earlier boot left: its last claims may be lost
    log.close(clean=False)
    lost = f"lost-{uuid.uuid4().hex[:8]}"
    venue = BinanceUsdmVenue(
        VenueConfig(base_url=sim.base_url, api_key=sim.api_key, api_secret=sim.api_secret)
    )
    await venue.start()
    try:  # the order the lost claim sent, as the venue has it
        terms = OrderTerms(
            symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT, quantity=Decimal("0.010"),
            price=Decimal("49000.0"), time_in_force=TimeInForce.GTC,
        )  # fmt: skip
        sent = await venue.place_order(VenueOrderRequest(client_order_id_for(lost), terms))
    finally:
        await venue.close()

    daemon = await make_daemon(store=StoreConfig(sqlite_path=str(path)))
    async with AsyncClient(endpoint(daemon)) as client:
        base = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010")
        retried = await client.place_order(
            **base, price="49000.0", time_in_force="GTC", request_id=lost
        )
        fresh = await client.place_order(
            **base, price="48000.0", time_in_force="GTC", request_id=f"new-{lost}"
        )
    assert retried.client_order_id == client_order_id_for(lost)
    assert retried.exchange_order_id == sent.exchange_order_id
    coids = [o["clientOrderId"] for o in await control.orders()]
    assert coids.count(client_order_id_for(lost)) == 1  # found, not sent again
    assert coids.count(fresh.client_order_id) == 1  # an unknown one is still sent
