"""Request decoding: round trips and every malformed class -> a typed error."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
import pytest

from oexec.errors import ErrorCode, OexecError
from oexec.models import OrderType, PositionSide, Side, TimeInForce
from oexec.wire import (
    OPS,
    WIRE_VERSION,
    CancelAll,
    CancelOrder,
    ErrorReply,
    GetOrder,
    Halt,
    Health,
    OkReply,
    OpenOrders,
    OrderHistory,
    PlaceOrder,
    RequestError,
    Resume,
    Trace,
    decode_reply,
    decode_request,
    encode_error,
    encode_ok,
    encode_request,
    pack,
)
from oexec.wire.codec import MAX_DEPTH, encode_exception, peek_envelope


def place(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": 1,
        "id": 7,
        "op": "place_order",
        "request_id": "strat-1:abc.1",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.010",
        "price": "50000.5",
        "time_in_force": "GTC",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def decode(data: Any, **kw: Any) -> Any:
    return decode_request(msgpack.packb(data), **kw)


def fails(data: Any, code: ErrorCode, **kw: Any) -> RequestError:
    body = data if isinstance(data, bytes) else msgpack.packb(data)
    with pytest.raises(RequestError) as info:
        decode_request(body, **kw)
    assert info.value.code is code, info.value
    return info.value


def test_place_order_round_trip() -> None:
    env = decode(place(reduce_only=True, position_side="LONG", stop_price="1", deadline_ms=500))
    assert env.id == 7 and env.op == "place_order"
    assert isinstance(env.request, PlaceOrder)
    intent = env.request.intent
    assert intent.request_id == "strat-1:abc.1" and intent.deadline_ms == 500
    terms = intent.terms
    assert terms.side is Side.BUY and terms.type is OrderType.LIMIT
    assert terms.quantity == Decimal("0.010") and str(terms.quantity) == "0.010"
    assert terms.price == Decimal("50000.5")
    assert terms.time_in_force is TimeInForce.GTC
    assert terms.reduce_only is True and terms.position_side is PositionSide.LONG


def test_nil_optional_fields_mean_absent() -> None:
    env = decode(place(price=None, time_in_force=None, reduce_only=None, type="MARKET"))
    terms = env.request.intent.terms  # type: ignore[union-attr]
    assert terms.price is None and terms.time_in_force is None and not terms.reduce_only


def test_unknown_extra_fields_ignored() -> None:
    env = decode(place(future_field={"x": [1, 2]}, another="y"))
    assert isinstance(env.request, PlaceOrder)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"op": "get_order", "order_id": "o_1"}, GetOrder(order_id="o_1")),
        ({"op": "get_order", "request_id": "r1"}, GetOrder(request_id="r1")),
        ({"op": "cancel_order", "order_id": "o-1"}, CancelOrder(order_id="o-1")),
        ({"op": "cancel_order", "request_id": "r1"}, CancelOrder(request_id="r1")),
        ({"op": "cancel_all", "symbol": "ETHUSDT"}, CancelAll("ETHUSDT")),
        ({"op": "open_orders"}, OpenOrders()),
        ({"op": "open_orders", "symbol": "BTCUSDT"}, OpenOrders("BTCUSDT")),
        ({"op": "order_history"}, OrderHistory()),
        (
            {"op": "order_history", "symbol": "BTCUSDT", "limit": 5, "start_ms": 1, "end_ms": 9},
            OrderHistory("BTCUSDT", 5, 1, 9),
        ),
        ({"op": "health"}, Health()),
        ({"op": "halt"}, Halt()),
        ({"op": "halt", "cancel_all": True}, Halt(cancel_all=True)),
        ({"op": "resume"}, Resume()),
        ({"op": "trace", "order_id": "o-1"}, Trace(order_id="o-1")),
        ({"op": "trace", "request_id": "r1"}, Trace(request_id="r1")),
    ],
)
def test_other_ops(data: dict[str, Any], expected: Any) -> None:
    env = decode({"v": 1, "id": "c-1", **data})
    assert env.id == "c-1"
    assert env.request == expected


def test_every_op_is_decodable() -> None:
    assert set(OPS) == {
        "place_order",
        "get_order",
        "cancel_order",
        "cancel_all",
        "open_orders",
        "trace",
        "order_history",
        "health",
        "halt",
        "resume",
        "replay",
        "modify_order",
        "place_orders",
        "cancel_orders",
        "positions",
        "balances",
        "set_leverage",
        "set_margin_type",
    }


# --- malformed frames -------------------------------------------------------------------
@pytest.mark.parametrize(
    "body", [b"", b"\xc1", b"\x92\x01", b"not msgpack at all \xff", msgpack.packb(1) + b"\x01"]
)
def test_not_msgpack(body: bytes) -> None:
    err = fails(body, ErrorCode.BAD_FRAME)
    assert err.correlation_id is None


@pytest.mark.parametrize("value", [1, "text", [1, 2], None, True, 1.5, b"bin"])
def test_not_a_map(value: Any) -> None:
    fails(value, ErrorCode.BAD_FRAME)


def test_non_string_keys() -> None:
    fails({1: 2, "v": 1}, ErrorCode.BAD_FRAME)
    fails({b"v": 1}, ErrorCode.BAD_FRAME)


def test_too_deep() -> None:
    nested: Any = 1
    for _ in range(MAX_DEPTH + 2):
        nested = [nested]
    fails(place(extra=nested), ErrorCode.BAD_FRAME)
    fails(b"\x91" * 5000 + b"\xc0", ErrorCode.BAD_FRAME)


def test_too_large() -> None:
    err = fails(place(padding="x" * 2000), ErrorCode.TOO_LARGE, max_bytes=1000)
    assert err.details["max_bytes"] == 1000


# --- envelope ---------------------------------------------------------------------------
def test_version_missing_or_wrong() -> None:
    assert fails(place(v=...), ErrorCode.BAD_REQUEST).details["field"] == "v"
    assert fails(place(v="1"), ErrorCode.BAD_REQUEST).details["field"] == "v"
    err = fails(place(v=2), ErrorCode.UNSUPPORTED_VERSION)
    assert err.details["supported"] == [WIRE_VERSION]
    assert err.correlation_id == 7  # still echoed


@pytest.mark.parametrize("bad_id", [..., None, 1.5, True, [1], "", "x" * 129])
def test_bad_correlation_id(bad_id: Any) -> None:
    err = fails(place(id=bad_id), ErrorCode.BAD_REQUEST)
    assert err.details["field"] == "id"
    assert err.correlation_id is None


def test_unknown_op() -> None:
    err = fails(place(op="launch_rockets"), ErrorCode.UNKNOWN_OP)
    assert "place_order" in err.details["known"]
    assert err.correlation_id == 7
    assert fails(place(op=...), ErrorCode.BAD_REQUEST).details["field"] == "op"
    assert fails(place(op=5), ErrorCode.BAD_REQUEST).details["field"] == "op"


# --- fields -----------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["request_id", "symbol", "side", "type", "quantity"])
def test_missing_required_field(field: str) -> None:
    err = fails(place(**{field: ...}), ErrorCode.BAD_REQUEST)
    assert err.details["field"] == field
    assert err.correlation_id == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "NaN"),
        ("quantity", "nan"),
        ("quantity", "Infinity"),
        ("quantity", "-Infinity"),
        ("quantity", "-1"),
        ("quantity", "0"),
        ("quantity", "0.0000000000000000001"),  # 19 decimals
        ("quantity", "1e5"),
        ("quantity", "1E+30"),
        ("quantity", "abc"),
        ("quantity", " 1"),
        ("quantity", "+1"),
        ("quantity", "1."),
        ("quantity", ".5"),
        ("quantity", "１"),
        ("quantity", ""),
        ("quantity", 0.01),  # float instead of string
        ("quantity", 1),  # ints are not strings either
        ("quantity", True),
        ("quantity", b"1"),
        ("price", "NaN"),
        ("price", -5),
        ("price", 50000.0),
        ("stop_price", "inf"),
        ("callback_rate", "-0.1"),
        ("activation_price", 1.0),
        ("side", "buy"),
        ("side", 1),
        ("type", "LIMIT_MAKER"),
        ("time_in_force", "DAY"),
        ("position_side", "UP"),
        ("working_type", "LAST"),
        ("reduce_only", "true"),
        ("reduce_only", 1),
        ("good_till_date", "123"),
        ("good_till_date", -1),
        ("good_till_date", 1.5),
        ("deadline_ms", True),
        ("symbol", "btcusdt"),
        ("symbol", "B"),
        ("symbol", "BTC-USDT"),
        ("symbol", "BTCUSDT\n"),
        ("symbol", "ＢＴＣＵＳＤＴ"),  # fullwidth unicode
        ("symbol", "BTC٣USDT"),  # arabic-indic digit
        ("symbol", "A" * 21),
        ("symbol", 5),
        ("request_id", ""),
        ("request_id", "x" * 65),
        ("request_id", "ид-1"),
        ("request_id", "a b"),
        ("request_id", "a/b"),
        ("request_id", 12),
    ],
)
def test_bad_field(field: str, value: Any) -> None:
    err = fails(place(**{field: value}), ErrorCode.BAD_REQUEST)
    assert err.details["field"] == field
    assert err.correlation_id == 7


def test_request_id_limits_accepted() -> None:
    env = decode(place(request_id="A" * 64))
    assert env.request.intent.request_id == "A" * 64  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        {"op": "get_order"},
        {"op": "get_order", "order_id": "a", "request_id": "b"},
        {"op": "cancel_order"},
        {"op": "get_order", "order_id": "x" * 65},
        {"op": "get_order", "order_id": "ü"},
        {"op": "cancel_all"},
        {"op": "cancel_all", "symbol": "x"},
        {"op": "order_history", "limit": 0},
        {"op": "order_history", "limit": 1001},
        {"op": "order_history", "limit": "10"},
        {"op": "order_history", "start_ms": 5, "end_ms": 4},
        {"op": "halt", "cancel_all": "yes"},
    ],
)
def test_bad_other_ops(data: dict[str, Any]) -> None:
    fails({"v": 1, "id": 1, **data}, ErrorCode.BAD_REQUEST)


# --- replies ----------------------------------------------------------------------------
def test_reply_round_trip() -> None:
    ok = decode_reply(encode_ok("a", {"x": Decimal("1.50")}))
    assert ok == OkReply(id="a", result={"x": "1.50"})
    err = decode_reply(encode_error(3, ErrorCode.BUSY, "busy", {"n": 1}))
    assert err == ErrorReply(id=3, code=ErrorCode.BUSY, message="busy", details={"n": 1})
    assert isinstance(err.code, ErrorCode)


def test_reply_unknown_code_kept_as_text() -> None:
    err = decode_reply(encode_error(None, "FROM_THE_FUTURE", "new"))
    assert isinstance(err, ErrorReply) and err.code == "FROM_THE_FUTURE"


@pytest.mark.parametrize(
    "data", [{"ok": True}, {"ok": False}, {"ok": False, "error": {"code": 1}}, {"id": 1.5}]
)
def test_reply_malformed(data: dict[str, Any]) -> None:
    with pytest.raises(OexecError) as info:
        decode_reply(msgpack.packb(data))
    assert info.value.code is ErrorCode.BAD_FRAME


def test_encode_exception_drops_unpackable_details() -> None:
    exc = OexecError("x", code=ErrorCode.NOT_FOUND, details={"obj": object()})
    reply = decode_reply(encode_exception(1, exc))
    assert isinstance(reply, ErrorReply) and reply.details == {}


def test_encode_request_leaves_out_none() -> None:
    data = msgpack.unpackb(encode_request(5, "open_orders", {"symbol": None}))
    assert data == {"v": WIRE_VERSION, "id": 5, "op": "open_orders"}
    assert (
        decode_request(encode_request(5, "open_orders", {"symbol": None})).request == OpenOrders()
    )


def test_pack_refuses_floats_not_but_unknown_objects() -> None:
    with pytest.raises(TypeError):
        pack({"x": object()})
    assert msgpack.unpackb(pack({"s": {3, 1}})) == {"s": [1, 3]}


def test_peek_envelope_reads_id_and_op_only_and_agrees_with_the_full_decode() -> None:
    bad_fields = msgpack.packb({"v": 1, "id": "p-1", "op": "place_order", "quantity": "x"})
    assert peek_envelope(bad_fields) == ("p-1", "place_order")  # fields not read
    with pytest.raises(RequestError):
        decode_request(bad_fields)
    for envelope in (
        {"v": 99, "id": "p-2", "op": "place_order"},
        {"v": 1, "id": "p-3", "op": "no_such_op"},
        {"v": 1, "op": "place_order"},
    ):
        assert peek_envelope(msgpack.packb(envelope)) is None
        with pytest.raises(RequestError):
            decode_request(msgpack.packb(envelope))
    assert peek_envelope(b"\xc1 not msgpack") is None


# --- replay (issue 17) -------------------------------------------------------------------
def test_replay_defaults_and_fields() -> None:
    from oexec.wire import Replay

    assert decode({"v": 1, "id": 1, "op": "replay"}).request == Replay(0, (), 500)
    got = decode({"v": 1, "id": 1, "op": "replay", "from_seq": 7, "topics": ["fill"], "limit": 9})
    assert got.request == Replay(7, ("fill",), 9)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"from_seq": -1}, "from_seq"),
        ({"from_seq": "1"}, "from_seq"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"topics": "fill"}, "topics"),
        ({"topics": [1]}, "topics"),
        ({"topics": ["x"] * 17}, "topics"),
    ],
)
def test_replay_bad_fields(fields: dict[str, Any], field: str) -> None:
    err = fails(msgpack.packb({"v": 1, "id": 1, "op": "replay", **fields}), ErrorCode.BAD_REQUEST)
    assert err.details["field"] == field
