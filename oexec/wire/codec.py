"""Strict decoding of requests, encoding of replies (docs/wire.md, "Envelope").

A request is one msgpack map ``{"v": 1, "id": <str|int>, "op": "<name>", ...fields}``.
Decoding checks, in this order: size (TOO_LARGE), msgpack (BAD_FRAME), a map with
string keys no deeper than MAX_DEPTH (BAD_FRAME), ``id`` and ``v`` (BAD_REQUEST,
UNSUPPORTED_VERSION), ``op`` (UNKNOWN_OP), then the op's fields (BAD_REQUEST with the
field's name in ``details.field``). Unknown extra fields are ignored so that newer
clients can talk to older daemons. Replies are packed with one reused Packer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import msgpack

from oexec.errors import ErrorCode, OexecError, WireError
from oexec.models import OrderIntent, OrderTerms, format_decimal
from oexec.models.enums import OrderType, PositionSide, Side, TimeInForce, WorkingType
from oexec.models.serde import converter
from oexec.wire import fields as f
from oexec.wire.messages import (
    OPS,
    CancelAll,
    CancelOrder,
    CorrelationId,
    Envelope,
    ErrorReply,
    GetOrder,
    Halt,
    Health,
    OkReply,
    OpenOrders,
    OrderHistory,
    PlaceOrder,
    Replay,
    Reply,
    Request,
    Resume,
    Trace,
)
from oexec.wire.strategy import strategy_builders
from oexec.wire.version import WIRE_VERSION

DEFAULT_MAX_BYTES = 65536
#: Requests are flat maps; nothing legitimate nests deeper than this.
MAX_DEPTH = 8
MAX_HISTORY_LIMIT = 1000


class RequestError(WireError):
    """A request that cannot be served; ``correlation_id`` is its ``id`` when readable."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode,
        correlation_id: CorrelationId | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.correlation_id = correlation_id


# --- decoding ---------------------------------------------------------------------------
def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, stopping early once past ``limit``."""
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def unpack_map(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Bytes -> a msgpack map with string keys, or RequestError (TOO_LARGE/BAD_FRAME)."""
    if len(body) > max_bytes:
        raise RequestError(
            f"frame of {len(body)} bytes exceeds {max_bytes}",
            code=ErrorCode.TOO_LARGE,
            details={"max_bytes": max_bytes, "size": len(body)},
        )
    try:
        data = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except msgpack.StackError:
        raise RequestError("nested too deep", code=ErrorCode.BAD_FRAME) from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise RequestError(f"not msgpack: {exc}", code=ErrorCode.BAD_FRAME) from None
    if not isinstance(data, dict):
        raise RequestError(f"expected a map, got {type(data).__name__}", code=ErrorCode.BAD_FRAME)
    nested = False
    for key, value in data.items():  # one pass; requests are flat maps
        if not isinstance(key, str):
            raise RequestError("map keys must be strings", code=ErrorCode.BAD_FRAME)
        if isinstance(value, (dict, list)):
            nested = True
    if nested and _depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise RequestError(f"nested deeper than {MAX_DEPTH}", code=ErrorCode.BAD_FRAME)
    return data


def _place_order(data: Mapping[str, Any]) -> PlaceOrder:
    # Optional fields are mostly absent (nil counts as absent): their readers run only
    # for the ones sent, which halves the cost of decoding a typical order.
    get = data.get
    request_id = f.present(f.request_id(data))  # checked first, as the wire lists it
    terms = OrderTerms(
        symbol=f.present(f.symbol(data)),
        side=f.present(f.enum(data, "side", Side)),
        type=f.present(f.enum(data, "type", OrderType)),
        quantity=f.present(f.decimal(data, "quantity")),
        price=None if get("price") is None else f.decimal(data, "price"),
        time_in_force=None
        if get("time_in_force") is None
        else f.enum(data, "time_in_force", TimeInForce),
        stop_price=None if get("stop_price") is None else f.decimal(data, "stop_price"),
        reduce_only=f.boolean(data, "reduce_only"),
        position_side=PositionSide.BOTH
        if get("position_side") is None
        else f.present(f.enum(data, "position_side", PositionSide)),
        working_type=None
        if get("working_type") is None
        else f.enum(data, "working_type", WorkingType),
        callback_rate=None if get("callback_rate") is None else f.decimal(data, "callback_rate"),
        activation_price=None
        if get("activation_price") is None
        else f.decimal(data, "activation_price"),
        good_till_date=None if get("good_till_date") is None else f.integer(data, "good_till_date"),
    )
    intent = OrderIntent(
        request_id=request_id,
        terms=terms,
        deadline_ms=None if get("deadline_ms") is None else f.integer(data, "deadline_ms"),
    )
    return PlaceOrder(intent)


def _lookup(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    order_id = f.order_id(data, required=False)
    request_id = f.request_id(data, required=False)
    f.one_of(order_id, request_id, ("order_id", "request_id"))
    return order_id, request_id


def _get_order(data: Mapping[str, Any]) -> GetOrder:
    order_id, request_id = _lookup(data)
    return GetOrder(order_id=order_id, request_id=request_id)


def _cancel_order(data: Mapping[str, Any]) -> CancelOrder:
    order_id, request_id = _lookup(data)
    return CancelOrder(order_id=order_id, request_id=request_id)


def _order_history(data: Mapping[str, Any]) -> OrderHistory:
    limit = f.integer(data, "limit", required=False, minimum=1, maximum=MAX_HISTORY_LIMIT)
    start_ms = f.integer(data, "start_ms", required=False)
    end_ms = f.integer(data, "end_ms", required=False)
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise f.bad("start_ms", "must not be after end_ms")
    return OrderHistory(
        symbol=f.symbol(data, required=False),
        limit=100 if limit is None else limit,
        start_ms=start_ms,
        end_ms=end_ms,
    )


MAX_REPLAY_LIMIT = 1000
MAX_REPLAY_TOPICS = 16


def _replay(data: Mapping[str, Any]) -> Replay:
    limit = f.integer(data, "limit", required=False, minimum=1, maximum=MAX_REPLAY_LIMIT)
    raw_topics = data.get("topics")
    if raw_topics is not None and (
        not isinstance(raw_topics, list)
        or len(raw_topics) > MAX_REPLAY_TOPICS
        or not all(isinstance(t, str) and len(t) <= 64 for t in raw_topics)
    ):
        raise f.bad("topics", f"expected at most {MAX_REPLAY_TOPICS} topic prefixes (strings)")
    from_seq = f.integer(data, "from_seq", required=False, minimum=0)
    return Replay(
        from_seq=0 if from_seq is None else from_seq,
        topics=tuple(raw_topics or ()),
        limit=500 if limit is None else limit,
    )


#: op -> builder of its typed record from the (already enveloped-checked) map.
_BUILDERS: dict[str, Callable[[Mapping[str, Any]], Request]] = {
    PlaceOrder.OP: _place_order,
    GetOrder.OP: _get_order,
    CancelOrder.OP: _cancel_order,
    CancelAll.OP: lambda data: CancelAll(symbol=f.present(f.symbol(data))),
    OpenOrders.OP: lambda data: OpenOrders(symbol=f.symbol(data, required=False)),
    OrderHistory.OP: _order_history,
    Trace.OP: lambda data: Trace(*_lookup(data)),
    Health.OP: lambda data: Health(),
    Halt.OP: lambda data: Halt(cancel_all=f.boolean(data, "cancel_all")),
    Resume.OP: lambda data: Resume(),
    Replay.OP: _replay,
}
_BUILDERS.update(strategy_builders(lambda data: _place_order(data).intent))
assert set(_BUILDERS) == set(OPS), "every op needs a builder"


def _check_version(data: Mapping[str, Any]) -> None:
    version = f.integer(data, "v", minimum=0)
    if version != WIRE_VERSION:
        raise WireError(
            f"protocol version {version} not supported",
            code=ErrorCode.UNSUPPORTED_VERSION,
            details={"supported": [WIRE_VERSION]},
        )


def _op(data: Mapping[str, Any]) -> str:
    op = f.present(f.text(data, "op"))
    if op not in _BUILDERS:
        raise WireError(
            f"unknown op {op[:64]!r}",
            code=ErrorCode.UNKNOWN_OP,
            details={"op": op[:64], "known": sorted(_BUILDERS)},
        )
    return op


def _envelope(data: Mapping[str, Any]) -> tuple[CorrelationId, str]:
    """The id and op of a request, its version checked (WireError otherwise)."""
    correlation_id = f.correlation_id(data)
    _check_version(data)
    return correlation_id, _op(data)


def peek_envelope(
    body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[CorrelationId, str] | None:
    """The id and op of a request whose envelope is sound (size, msgpack, id, version,
    a known op), without reading the op's fields; None otherwise (``decode_request``
    then gives the typed error). What a front end needs to answer BUSY cheaply."""
    try:
        return _envelope(unpack_map(body, max_bytes=max_bytes))
    except WireError:
        return None


def decode_request(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    """One request frame -> Envelope. Raises RequestError carrying the id when readable."""
    data = unpack_map(body, max_bytes=max_bytes)
    raw_id = data.get("id")
    echo = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
    try:
        correlation_id, op = _envelope(data)
        return Envelope(id=correlation_id, request=_BUILDERS[op](data))
    except WireError as exc:
        raise RequestError(
            exc.message,
            code=exc.code,
            correlation_id=echo if exc.details.get("field") != "id" else None,
            details=exc.details,
        ) from None


def encode_request(correlation_id: CorrelationId, op: str, fields: Mapping[str, Any]) -> bytes:
    """Client side: pack one request; ``None`` fields are left out."""
    data: dict[str, Any] = {"v": WIRE_VERSION, "id": correlation_id, "op": op}
    data.update((key, value) for key, value in fields.items() if value is not None)
    return pack(data)


# --- encoding ---------------------------------------------------------------------------
def _default(value: Any) -> Any:
    """Packer fallback: Decimal as plain string, attrs records via the model converter."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if attrs.has(type(value)):
        return converter.unstructure(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} on the wire")


_PACKER = msgpack.Packer(use_bin_type=True, autoreset=True, default=_default)


def pack(data: Any) -> bytes:
    """Pack with the shared Packer (single-threaded asyncio: no per-call allocation)."""
    packed: bytes = _PACKER.pack(data)
    return packed


def encode_ok(correlation_id: CorrelationId | None, result: Mapping[str, Any]) -> bytes:
    return pack({"v": WIRE_VERSION, "id": correlation_id, "ok": True, "result": result})


def encode_error(
    correlation_id: CorrelationId | None,
    code: ErrorCode | str,
    message: str,
    details: Mapping[str, Any] | None = None,
) -> bytes:
    error = {"code": str(code), "message": message, "details": dict(details or {})}
    return pack({"v": WIRE_VERSION, "id": correlation_id, "ok": False, "error": error})


def encode_exception(correlation_id: CorrelationId | None, exc: OexecError) -> bytes:
    """An OexecError as an error reply; details that cannot be packed are dropped."""
    try:
        return encode_error(correlation_id, exc.code, exc.message, exc.details)
    except (TypeError, ValueError, OverflowError):
        return encode_error(correlation_id, exc.code, exc.message)


def decode_reply(body: bytes) -> Reply:
    """Client side: a reply frame -> OkReply | ErrorReply. Raises WireError(BAD_FRAME)."""
    data = unpack_map(body, max_bytes=len(body))
    ok = data.get("ok")
    correlation_id = data.get("id")
    if correlation_id is not None and not isinstance(correlation_id, (str, int)):
        raise WireError("reply: id is not a string or integer", code=ErrorCode.BAD_FRAME)
    if ok is True and isinstance(data.get("result"), dict):
        return OkReply(id=correlation_id, result=data["result"])
    error = data.get("error")
    if ok is False and isinstance(error, dict) and isinstance(error.get("code"), str):
        code: ErrorCode | str = error["code"]
        if code in ErrorCode.__members__:
            code = ErrorCode(code)
        details = error.get("details")
        return ErrorReply(
            id=correlation_id,
            code=code,
            message=str(error.get("message", "")),
            details=details if isinstance(details, dict) else {},
        )
    raise WireError("reply: neither a result nor an error", code=ErrorCode.BAD_FRAME)
