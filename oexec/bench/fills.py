"""Fill event latency: from the simulator's user stream to the daemon's PUB subscriber.

The simulator pushes an execution to every WebSocket on the account's listen key at
once, so this process opens its own connection next to the daemon's and timestamps the
first frame naming the order's trade (TRADE_LITE or ORDER_TRADE_UPDATE x=TRADE). A SUB
socket on the daemon timestamps the ``fill`` event of the same client order id; the row
records the difference. Both clocks are this process's, both readers share its loop.

Each round rests one limit order through oexec, then moves the simulator's price through
it (``/_sim/price``) so the fill can only arrive by the user stream, then moves the price
back. Sides alternate, so the position stays flat.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import msgpack
import orjson
import zmq
import zmq.asyncio

from oexec.bench.hist import record_us
from oexec.bench.job import Job, Progress, Result
from oexec.bench.mix import QUANTITY, SYMBOL
from oexec.client import AsyncClient

STEP = Decimal("100")
SLOW_JOINER_S = 0.3
WAIT_S = 5.0  # for each arrival; a missing one counts as TIMEOUT, the row goes on


class Arrivals:
    """First arrival time per client order id, for one source; waiters wake on arrival."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self._waiters: dict[str, asyncio.Future[float]] = {}

    def mark(self, client_order_id: str) -> None:
        if client_order_id in self.seen:
            return
        now = time.perf_counter()
        self.seen[client_order_id] = now
        waiter = self._waiters.pop(client_order_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def wait(self, client_order_id: str, timeout_s: float) -> float:
        if client_order_id in self.seen:
            return self.seen.pop(client_order_id)
        future = self._waiters[client_order_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._waiters.pop(client_order_id, None)
            self.seen.pop(client_order_id, None)


def traded_client_id(message: dict[str, Any]) -> str | None:
    """The client order id a user-stream frame reports a trade for, else None."""
    kind = message.get("e")
    if kind == "TRADE_LITE":
        return str(message.get("c"))
    body = message.get("o")
    if kind == "ORDER_TRADE_UPDATE" and isinstance(body, dict) and body.get("x") == "TRADE":
        return str(body.get("c"))
    return None


async def _read_ws(ws: aiohttp.ClientWebSocketResponse, arrivals: Arrivals) -> None:
    async for frame in ws:
        if frame.type is not aiohttp.WSMsgType.TEXT:
            continue
        data = orjson.loads(frame.data)
        client_id = traded_client_id(data.get("data", data))
        if client_id is not None:
            arrivals.mark(client_id)


async def _read_sub(sock: zmq.asyncio.Socket, arrivals: Arrivals) -> None:
    while True:
        _topic, body = await sock.recv_multipart()
        fill = msgpack.unpackb(body).get("fill") or {}
        client_id = fill.get("client_order_id")
        if client_id:
            arrivals.mark(str(client_id))


async def fill_row(job: Job, progress: Progress) -> Result:
    result = Result()
    mark = Decimal(job.mark)
    context = zmq.asyncio.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"fill")
    sub.connect(job.events_endpoint)
    headers = {"X-MBX-APIKEY": job.api_key}
    ws_seen, pub_seen = Arrivals(), Arrivals()
    async with aiohttp.ClientSession() as session, AsyncClient(job.endpoint) as client:
        async with session.post(f"{job.sim_url}/fapi/v1/listenKey", headers=headers) as resp:
            listen_key = (await resp.json())["listenKey"]
        ws = await session.ws_connect(f"{job.ws_url}/ws/{listen_key}")
        readers = [
            asyncio.create_task(_read_ws(ws, ws_seen)),
            asyncio.create_task(_read_sub(sub, pub_seen)),
        ]
        await asyncio.sleep(SLOW_JOINER_S)

        async def set_price(price: Decimal) -> None:
            body = {"symbol": SYMBOL, "price": str(price)}
            async with session.post(f"{job.sim_url}/_sim/price", json=body) as resp:
                await resp.read()

        async def round_trip(i: int) -> str:
            buy = i % 2 == 0
            limit = mark - STEP if buy else mark + STEP
            order = await client.place_order(
                symbol=SYMBOL,
                side="BUY" if buy else "SELL",
                type="LIMIT",
                quantity=QUANTITY,
                price=limit,
                time_in_force="GTC",
            )
            await set_price(mark - 2 * STEP if buy else mark + 2 * STEP)
            try:
                sent = await ws_seen.wait(order.client_order_id, WAIT_S)
                published = await pub_seen.wait(order.client_order_id, WAIT_S)
            except TimeoutError:
                return "TIMEOUT"
            finally:
                await set_price(mark)
            if i >= job.warmup:
                record_us(result.histogram(), max(0.0, published - sent))
            return "ok"

        try:
            started = time.perf_counter()
            for i in range(job.warmup + job.count):
                outcome = await round_trip(i)
                if i >= job.warmup:
                    result.count(outcome)
                    if (i - job.warmup + 1) % 20 == 0:
                        progress(i - job.warmup + 1)
            result.wall_s = time.perf_counter() - started
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await ws.close()
            sub.close(linger=0)
    progress(job.count)
    return result
