"""The live control messages of a market-stream connection (addendum §5.3).

``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``/``GET_PROPERTY``
``combined``: ``{"result": ..., "id": n}``, or ``{"code", "msg"[, "id"]}`` with the venue's
codes: 0 unknown property, 1 invalid value type, 2 invalid request (no ``method``, an id
that is neither an unsigned integer nor a string, an unknown method), 3 invalid JSON. The
docs say the id is an unsigned integer; string ids are accepted because the official SDK
sends UUID strings by default (binance_common ``id_strict_int=False``), which it could not
do against the venue if the venue refused them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson

Json = dict[str, Any]


class Subscriptions(Protocol):
    streams: list[str]
    combined: bool


class _Refused(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def handle(
    conn: Subscriptions, text: str, on_subscribe: Callable[[str], None], max_streams: int
) -> Json:
    """Apply one control message to ``conn``; the reply to send."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
    ident = request.get("id") if isinstance(request, dict) else None
    try:
        return {"result": _apply(conn, request, on_subscribe, max_streams), "id": ident}
    except _Refused as refused:
        error: Json = {"code": refused.code, "msg": refused.msg}
        return error | ({"id": ident} if ident is not None else {})


def _apply(
    conn: Subscriptions, request: Any, on_subscribe: Callable[[str], None], max_streams: int
) -> Any:
    if not isinstance(request, dict) or "method" not in request:
        raise _Refused(2, "Invalid request: missing field `method` at line 1 column 1")
    ident = request.get("id")
    unsigned = isinstance(ident, int) and not isinstance(ident, bool) and ident >= 0
    if not unsigned and not isinstance(ident, str):
        raise _Refused(2, "Invalid request: request ID must be an unsigned integer")
    method, params = request["method"], request.get("params", [])
    if not isinstance(params, list):
        raise _Refused(2, "Invalid request: invalid type for `params`")
    if method == "SUBSCRIBE":
        for stream in params:
            if isinstance(stream, str) and stream not in conn.streams:
                conn.streams.append(stream)
                on_subscribe(stream)
        del conn.streams[max_streams:]
        return None
    if method == "UNSUBSCRIBE":
        conn.streams[:] = [s for s in conn.streams if s not in params]
        return None
    if method == "LIST_SUBSCRIPTIONS":
        return list(conn.streams)
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        return _property(conn, method, params)
    raise _Refused(2, "Invalid request: unknown variant")


def _property(conn: Subscriptions, method: str, params: list[Any]) -> Any:
    if not params or not isinstance(params[0], str):
        raise _Refused(2, "Invalid request: property name must be a string")
    if params[0] != "combined":
        raise _Refused(0, "Unknown property")
    if method == "GET_PROPERTY":
        return conn.combined
    if len(params) != 2 or not isinstance(params[1], bool):
        raise _Refused(1, "Invalid value type: expected Boolean")
    conn.combined = params[1]
    return None
