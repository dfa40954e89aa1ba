"""A minimal signed Binance client for tests, and order parameter builders."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
import yarl


@attrs.define
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@attrs.define
class VenueClient:
    """Signs like the venue expects; lets a test put params in the query, the body or both."""

    session: aiohttp.ClientSession
    base_url: str
    key: str | None
    secret: str

    def sign(self, payload: str) -> str:
        return hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = False,
        body: dict[str, Any] | None = None,
        timestamp_ms: int | None = None,
        key: str | None = "",
        signature: str | None = None,
    ) -> Reply:
        query_items = dict(params or {})
        body_items = dict(body or {})
        if signed:
            target = body_items if body is not None else query_items
            target["timestamp"] = timestamp_ms or time.time_ns() // 1_000_000
        query = urlencode(query_items)
        form = urlencode(body_items)
        if signed:
            sig = signature or self.sign(query + form)
            if body is not None:
                form = f"{form}&signature={sig}"
            else:
                query = f"{query}&signature={sig}" if query else f"signature={sig}"
        headers = {}
        api_key = self.key if key == "" else key
        if api_key is not None:
            headers["X-MBX-APIKEY"] = api_key
        if form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        target_url = yarl.URL(url, encoded=True)
        async with self.session.request(
            method, target_url, data=form or None, headers=headers
        ) as resp:
            text = await resp.text()
            parsed: Any = None
            if text:
                import json

                parsed = json.loads(text)
            return Reply(resp.status, dict(resp.headers), parsed)

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        async with self.session.request(method, f"{self.base_url}{path}", json=payload) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"{method} {path}: {resp.status} {data}")
            return data


def limit_order(**extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "49000.0",
    } | extra
