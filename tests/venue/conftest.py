"""Shared helpers for the venue tests: fixtures from tests/fixtures/binance, a recording gate."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from aiohttp import web

from oexec.config import VenueConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
BASE = "http://127.0.0.1:9"
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class RecordingGate:
    """A RequestGate that records every call (the real one belongs to the limits package)."""

    def __init__(self) -> None:
        self.acquired: list[tuple[int, int, float | None]] = []
        self.observed: list[tuple[int | None, int | None, int | None]] = []
        self.ages: list[Mapping[tuple[str, int], float] | None] = []  # window ages told
        self.paused: list[float] = []

    async def acquire(self, *, weight: int, orders: int, deadline_s: float | None) -> None:
        self.acquired.append((weight, orders, deadline_s))

    def observe(
        self,
        used: Mapping[tuple[str, int], int],
        window_age_s: Mapping[tuple[str, int], float] | None = None,
    ) -> None:
        """Recorded as (weight 1m, orders 10 s, orders 1m), None where not reported."""
        windows = (("REQUEST_WEIGHT", 60), ("ORDERS", 10), ("ORDERS", 60))
        weight, o10s, o1m = (used.get(window) for window in windows)
        self.observed.append((weight, o10s, o1m))
        self.ages.append(window_age_s)

    def pause(self, retry_after_s: float) -> None:
        self.paused.append(retry_after_s)


@pytest.fixture
def config() -> VenueConfig:
    return VenueConfig(
        base_url=BASE,
        api_key=API_KEY,
        api_secret=SECRET,
        time_sync_interval_s=0,
        retry_base_s=0.001,
        retry_max_s=0.002,
        read_retries=2,
    )


@pytest.fixture
def gate() -> RecordingGate:
    return RecordingGate()


# --- a scripted local venue (aioresponses does not support this aiohttp version) ---------
@attrs.frozen
class Recorded:
    method: str
    path: str
    query: str  # raw, exactly as sent
    body: str
    headers: dict[str, str]

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.body or self.query, keep_blank_values=True))

    def signed_part(self) -> str:
        """The raw bytes the signature must cover (everything before ``&signature=``)."""
        return (self.query + self.body).rsplit("&signature=", 1)[0]


@attrs.frozen
class Scripted:
    status: int = 200
    payload: Any = None
    body: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    action: str = ""  # "hang": never answer in time; "reset": drop the connection


class ScriptedVenue:
    """A real HTTP server on 127.0.0.1 answering each (method, path) from a script queue."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], deque[Scripted]] = defaultdict(deque)
        self.recorded: list[Recorded] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.ws_handler: Any = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    def add(self, method: str, path: str, **kwargs: Any) -> None:
        self.script[(method, path)].append(Scripted(**kwargs))

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.recorded if r.method == method and r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/ws/") and self.ws_handler is not None:
            result: web.StreamResponse = await self.ws_handler(request)
            return result
        body = (await request.read()).decode()
        self.recorded.append(
            Recorded(
                request.method,
                request.path,
                request.raw_path.partition("?")[2],
                body,
                dict(request.headers),
            )
        )
        queue = self.script.get((request.method, request.path))
        if not queue:
            return web.json_response({"code": -1099, "msg": "not scripted"}, status=404)
        item = queue.popleft()
        if item.action == "hang":
            await asyncio.sleep(5)
        if item.action == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError
        if item.body is not None:
            return web.Response(status=item.status, text=item.body, headers=item.headers)
        return web.json_response(item.payload, status=item.status, headers=item.headers)

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self.url

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedVenue]:
    srv = ScriptedVenue()
    await srv.start()
    yield srv
    await srv.close()
