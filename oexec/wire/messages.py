"""One frozen record per request op, tagged by ``op``, and the reply envelopes.

docs/wire.md, section "Ops", is the source of truth; these records mirror it field by
field. The codec (oexec/wire/codec.py) builds them from a msgpack map after checking
every field, so whatever holds one of these holds a valid request.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from oexec.errors import ErrorCode
from oexec.models import OrderIntent
from oexec.wire.strategy import STRATEGY_TYPES, StrategyRequest

#: A correlation id, echoed back verbatim: a string or an integer chosen by the client.
CorrelationId = str | int


@attrs.frozen(slots=True)
class PlaceOrder:
    OP: ClassVar[str] = "place_order"
    intent: OrderIntent


@attrs.frozen(slots=True)
class GetOrder:
    """Exactly one of ``order_id`` and ``request_id`` is set."""

    OP: ClassVar[str] = "get_order"
    order_id: str | None = None
    request_id: str | None = None


@attrs.frozen(slots=True)
class CancelOrder:
    """Exactly one of ``order_id`` and ``request_id`` is set."""

    OP: ClassVar[str] = "cancel_order"
    order_id: str | None = None
    request_id: str | None = None


@attrs.frozen(slots=True)
class CancelAll:
    OP: ClassVar[str] = "cancel_all"
    symbol: str


@attrs.frozen(slots=True)
class OpenOrders:
    OP: ClassVar[str] = "open_orders"
    symbol: str | None = None


@attrs.frozen(slots=True)
class OrderHistory:
    OP: ClassVar[str] = "order_history"
    symbol: str | None = None
    limit: int = 100
    start_ms: int | None = None
    end_ms: int | None = None


@attrs.frozen(slots=True)
class Trace:
    """The audit trail of one order; exactly one of ``order_id`` and ``request_id``."""

    OP: ClassVar[str] = "trace"
    order_id: str | None = None
    request_id: str | None = None


@attrs.frozen(slots=True)
class Health:
    OP: ClassVar[str] = "health"


@attrs.frozen(slots=True)
class Halt:
    OP: ClassVar[str] = "halt"
    cancel_all: bool = False


@attrs.frozen(slots=True)
class Resume:
    OP: ClassVar[str] = "resume"


@attrs.frozen(slots=True)
class Replay:
    """Published events with seq >= ``from_seq`` (0: from the oldest kept), one page of
    at most ``limit``; ``topics`` are prefixes (empty: every topic). Issue 17."""

    OP: ClassVar[str] = "replay"
    from_seq: int = 0
    topics: tuple[str, ...] = ()
    limit: int = 500


Request = (
    PlaceOrder
    | GetOrder
    | CancelOrder
    | CancelAll
    | OpenOrders
    | OrderHistory
    | Trace
    | Health
    | Halt
    | Resume
    | Replay
    | StrategyRequest
)

REQUEST_TYPES: tuple[type[Request], ...] = (
    PlaceOrder,
    GetOrder,
    CancelOrder,
    CancelAll,
    OpenOrders,
    OrderHistory,
    Trace,
    Health,
    Halt,
    Resume,
    Replay,
    *STRATEGY_TYPES,
)
#: op name -> record class; the codec dispatches on it.
OPS: dict[str, type[Request]] = {cls.OP: cls for cls in REQUEST_TYPES}


@attrs.frozen(slots=True)
class Envelope:
    """A decoded request: its correlation id and the typed op record."""

    id: CorrelationId
    request: Request

    @property
    def op(self) -> str:
        return self.request.OP


@attrs.frozen(slots=True)
class OkReply:
    id: CorrelationId | None
    result: dict[str, Any]


@attrs.frozen(slots=True)
class ErrorReply:
    """``code`` is an ErrorCode value; a newer daemon may send codes this build lacks."""

    id: CorrelationId | None
    code: ErrorCode | str
    message: str
    details: dict[str, Any] = attrs.field(factory=dict)


Reply = OkReply | ErrorReply
