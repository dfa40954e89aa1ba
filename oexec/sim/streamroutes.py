"""The WebSocket routes of the public streams and of the ``/private`` user-stream forms.

``/public`` and ``/market`` in ws mode (``/<path>/ws[/<s1>/<s2>...]``) and stream mode
(``/<path>/stream?streams=...``) go to ``MarketStreams``; ``/private/ws?listenKey=<k>
[&events=A/B]`` and ``/private/stream?listenKey=...`` to the user streams. Registered by
app.py before the venue's catch-all route.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from oexec.sim.marketstreams import MarketStreams
    from oexec.sim.state import SimState


def add_routes(app: web.Application, state_key: web.AppKey[Any]) -> None:
    """``/public`` and ``/market`` (ws and stream mode) and the ``/private`` query forms of
    the user stream. Must be added before the venue's catch-all route."""

    def handler(path: str, mode: str) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.StreamResponse:
            state = request.app[state_key]
            state.stats.requests_by_path[f"/{path}/{mode}"] += 1
            if mode == "ws":
                names = request.match_info.get("streams", "").split("/")
            else:
                names = request.query.get("streams", "").split("/")
            streams: MarketStreams = state.market_streams
            return await streams.websocket(request, path, names, combined=mode == "stream")

        return serve

    for path in ("public", "market"):
        app.router.add_get(f"/{path}/ws", handler(path, "ws"))
        app.router.add_get(f"/{path}/ws/{{streams:.+}}", handler(path, "ws"))
        app.router.add_get(f"/{path}/stream", handler(path, "stream"))

    async def private(request: web.Request) -> web.StreamResponse:
        """``/private/ws?listenKey=<k>[&events=A/B]`` and ``/private/stream?listenKey=...``."""
        state: SimState = request.app[state_key]
        state.stats.requests_by_path[request.path] += 1
        key = request.query.get("listenKey") or request.query.get("streams", "").split("/")[0]
        if not key and request.path.endswith("/stream"):
            return await state.streams.subscribable(request)  # keys come by SUBSCRIBE
        events = request.query.get("events")
        wanted = frozenset(events.split("/")) if events else None
        combined = request.path.endswith("/stream")
        return await state.streams.websocket(request, key, combined=combined, events=wanted)

    app.router.add_get("/private/ws", private)
    app.router.add_get("/private/stream", private)

    async def background(app: web.Application) -> AsyncIterator[None]:
        streams: MarketStreams = app[state_key].market_streams
        task = asyncio.create_task(streams.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await streams.shutdown()

    async def close(app: web.Application) -> None:
        await app[state_key].market_streams.shutdown()

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(close)
