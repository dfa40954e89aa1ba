"""Issue 14: a daemon killed after the venue accepted an order and before that order's
claim reached the store. The claim was only in the claim log (oexec/store/claim_log.py);
after a restart the request is known, the order is settled from the venue by client
order id, and a retry of the same request_id gets that order - never a second one."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from oexec.client import AsyncClient
from oexec.service.client_ids import client_order_id_for

from .procs import DaemonProc, SimHost, wait_until

ROOT = Path(__file__).resolve().parents[2]
REQUEST = "held-claim-1"

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from decimal import Decimal
    sys.path.insert(0, {root!r})
    from oexec.app import Daemon
    from oexec.config import (Config, EventsConfig, FrontConfig, HttpConfig, LoggingConfig,
                              StoreConfig, VenueConfig)
    from oexec.models import OrderIntent, OrderTerms, OrderType, Side, TimeInForce

    async def main():
        config = Config(
            front=FrontConfig(listen=("tcp://127.0.0.1:*",)),
            events=EventsConfig(publish=("tcp://127.0.0.1:*",)),
            http=HttpConfig(port=0),
            store=StoreConfig(sqlite_path={path!r}),
            venue=VenueConfig(base_url={url!r}, api_key={key!r}, api_secret={secret!r}),
            logging=LoggingConfig(level="ERROR"),
        )
        daemon = Daemon(config)
        await daemon.start()
        loop = asyncio.get_running_loop()
        # the claim's store write never lands: only the claim log has it
        daemon.store.inner._early._write = lambda *_claim: loop.create_future()
        terms = OrderTerms(symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT,
                           quantity=Decimal("0.010"), price=Decimal("49000.0"),
                           time_in_force=TimeInForce.GTC)
        asyncio.ensure_future(daemon.pipeline.place_order(OrderIntent({request!r}, terms)))
        print("placing", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_killed_between_the_venues_accept_and_the_claims_write(tmp_path: Path) -> None:
    sim = SimHost(tmp_path, rate_limits=False)
    sim.start()
    daemon = DaemonProc(tmp_path, sim, log_level="WARNING")
    coid = client_order_id_for(REQUEST)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(
            root=str(ROOT), path=str(daemon.sqlite_path), url=sim.base_url,
            key=sim.api_key, secret=sim.api_secret, request=REQUEST,
        )],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "placing"
        wait_until(
            lambda: any(o["clientOrderId"] == coid for o in sim.orders()), 15, "venue accepts"
        )
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        with sqlite3.connect(daemon.sqlite_path) as db:  # the store never got the claim
            stored = db.execute("SELECT 1 FROM claims WHERE request_id = ?", (REQUEST,))
            assert stored.fetchone() is None
        daemon.start()
        retried = asyncio.run(_retry(daemon.endpoint))
        venue = [o for o in sim.orders() if o["clientOrderId"] == coid]
        assert len(venue) == 1, venue  # found, not sent a second time
        assert retried.client_order_id == coid
        assert retried.exchange_order_id == str(venue[0]["orderId"])
    finally:
        if child.poll() is None:
            child.kill()
        daemon.stop()
        sim.stop()


async def _retry(endpoint: str):  # type: ignore[no-untyped-def]
    async with AsyncClient(endpoint, timeout_s=10.0, retries=3) as client:
        deadline = time.monotonic() + 20
        while True:  # the restarted daemon resolves the logged SUBMITTING order first
            order = await client.place_order(
                symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010",
                price="49000.0", time_in_force="GTC", request_id=REQUEST,
            )  # fmt: skip
            if order.exchange_order_id is not None or time.monotonic() > deadline:
                return order
            await asyncio.sleep(0.2)
