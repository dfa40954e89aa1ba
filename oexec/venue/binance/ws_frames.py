"""The WebSocket API's frames, as pure functions: where it is, what a request signs, what
a reply says about rate limits (addendum §2). ``ws_transport.py`` does the I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

#: REST hosts whose WebSocket API host differs (addendum §2.1).
KNOWN_WS_API_URLS = {
    "fapi.binance.com": "wss://ws-fapi.binance.com/ws-fapi/v1",
    "testnet.binancefuture.com": "wss://testnet.binancefuture.com/ws-fapi/v1",
}


def ws_api_url_for(base_url: str) -> str:
    """Known Binance hosts -> their ws-fapi URL; ``http://host:port`` -> ``ws://host:port``."""
    parts = urlsplit(base_url)
    known = KNOWN_WS_API_URLS.get(parts.hostname or "")
    if known is not None:
        return known
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/ws-fapi/v1"


def signing_payload(params: Mapping[str, str]) -> bytes:
    """All params but ``signature``, sorted by name, ``key=value`` joined with ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature").encode()


def rate_limit_usage(rows: Any) -> tuple[int | None, int | None, int | None]:
    """``(weight 1m, orders 10s, orders 1m)`` from a reply's ``rateLimits``."""
    weight = o10s = o1m = None
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, dict) or not isinstance(row.get("count"), int):
            continue
        kind, interval, num = row.get("rateLimitType"), row.get("interval"), row.get("intervalNum")
        if kind == "REQUEST_WEIGHT" and interval == "MINUTE" and num == 1:
            weight = row["count"]
        elif kind == "ORDERS" and interval == "SECOND" and num == 10:
            o10s = row["count"]
        elif kind == "ORDERS" and interval == "MINUTE" and num == 1:
            o1m = row["count"]
    return weight, o10s, o1m


def retry_after_headers(error: Any, now_ms: int) -> dict[str, str]:
    """A 429/418 reply's ``error.data.retryAfter`` (ms, absolute) as REST's Retry-After
    header, so the one error mapper (errors.map_error) reads both transports."""
    data = error.get("data") if isinstance(error, dict) else None
    retry_at = data.get("retryAfter") if isinstance(data, dict) else None
    if not isinstance(retry_at, int) or isinstance(retry_at, bool):
        return {}
    return {"Retry-After": str(math.ceil(max(0, retry_at - now_ms) / 1000))}
