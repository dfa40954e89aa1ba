"""The wire protocol, no sockets: version, message records, codec, framing, order shape.

docs/wire.md is the specification; this package mirrors it.
"""

from oexec.wire.codec import (
    RequestError,
    decode_reply,
    decode_request,
    encode_error,
    encode_exception,
    encode_ok,
    encode_request,
    pack,
)
from oexec.wire.framing import Route, split_frames
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
from oexec.wire.orders import fill_from_wire, fill_to_wire, order_from_wire, order_to_wire
from oexec.wire.version import WIRE_VERSION

__all__ = [
    "OPS",
    "WIRE_VERSION",
    "CancelAll",
    "CancelOrder",
    "CorrelationId",
    "Envelope",
    "ErrorReply",
    "GetOrder",
    "Halt",
    "Health",
    "OkReply",
    "OpenOrders",
    "OrderHistory",
    "PlaceOrder",
    "Replay",
    "Reply",
    "Request",
    "RequestError",
    "Resume",
    "Route",
    "Trace",
    "decode_reply",
    "decode_request",
    "encode_error",
    "encode_exception",
    "encode_ok",
    "encode_request",
    "fill_from_wire",
    "fill_to_wire",
    "order_from_wire",
    "order_to_wire",
    "pack",
    "split_frames",
]
