"""The REST endpoints oexec uses, as one table: method, path, security, weight, order count.

Weights and ORDERS counts are those of reference §B.1 / §E.2; the gate is charged from
here before each request. ``retry`` names the retry policy: only reads and cancels
(idempotent at the venue) are ever retried; submits and modifies never are.
"""

from __future__ import annotations

from enum import Enum, StrEnum

import attrs


class Security(StrEnum):
    """§A.1: what a request must carry."""

    NONE = "NONE"  # nothing
    USER_STREAM = "USER_STREAM"  # API key header only
    SIGNED = "SIGNED"  # API key header + timestamp + signature (TRADE / USER_DATA)


class Retry(StrEnum):
    """Which failures may be retried for an endpoint."""

    READ = "READ"  # transport failures, unknown outcomes, one -1021 re-sync retry
    CANCEL = "CANCEL"  # same as READ: cancelling twice is harmless (-2011)
    NEVER = "NEVER"  # submits/modifies: an unknown outcome is resolved, never resent


@attrs.frozen(slots=True)
class Endpoint:
    method: str
    path: str
    security: Security
    weight: int
    orders: int = 0  # count against the ORDERS 10 s limiter
    retry: Retry = Retry.READ
    weight_without_symbol: int | None = None  # some endpoints cost more for all symbols

    def cost(self, has_symbol: bool) -> int:
        if not has_symbol and self.weight_without_symbol is not None:
            return self.weight_without_symbol
        return self.weight

    @property
    def body_params(self) -> bool:
        """POST/PUT carry parameters in a form body; GET/DELETE in the query string."""
        return self.method in ("POST", "PUT")


S = Security
_E = Endpoint


class Ep(Enum):
    """Every endpoint the adapter calls."""

    PING = _E("GET", "/fapi/v1/ping", S.NONE, 1)
    TIME = _E("GET", "/fapi/v1/time", S.NONE, 1)
    EXCHANGE_INFO = _E("GET", "/fapi/v1/exchangeInfo", S.NONE, 1)
    TICKER_PRICE = _E("GET", "/fapi/v1/ticker/price", S.NONE, 1, weight_without_symbol=2)
    PREMIUM_INDEX = _E("GET", "/fapi/v1/premiumIndex", S.NONE, 1, weight_without_symbol=10)
    NEW_ORDER = _E("POST", "/fapi/v1/order", S.SIGNED, 0, orders=1, retry=Retry.NEVER)
    QUERY_ORDER = _E("GET", "/fapi/v1/order", S.SIGNED, 1)
    CANCEL_ORDER = _E("DELETE", "/fapi/v1/order", S.SIGNED, 1, retry=Retry.CANCEL)
    MODIFY_ORDER = _E("PUT", "/fapi/v1/order", S.SIGNED, 0, orders=1, retry=Retry.NEVER)
    BATCH_PLACE = _E("POST", "/fapi/v1/batchOrders", S.SIGNED, 5, orders=5, retry=Retry.NEVER)
    BATCH_CANCEL = _E("DELETE", "/fapi/v1/batchOrders", S.SIGNED, 1, retry=Retry.CANCEL)
    CANCEL_ALL = _E("DELETE", "/fapi/v1/allOpenOrders", S.SIGNED, 1, retry=Retry.CANCEL)
    COUNTDOWN_CANCEL_ALL = _E(
        "POST", "/fapi/v1/countdownCancelAll", S.SIGNED, 10, retry=Retry.CANCEL
    )
    OPEN_ORDERS = _E("GET", "/fapi/v1/openOrders", S.SIGNED, 1, weight_without_symbol=40)
    ALL_ORDERS = _E("GET", "/fapi/v1/allOrders", S.SIGNED, 5)
    USER_TRADES = _E("GET", "/fapi/v1/userTrades", S.SIGNED, 5)
    POSITION_RISK = _E("GET", "/fapi/v2/positionRisk", S.SIGNED, 5)
    ACCOUNT = _E("GET", "/fapi/v2/account", S.SIGNED, 5)
    # account settings: setting the same value twice is harmless (-4046 for margin type)
    CHANGE_LEVERAGE = _E("POST", "/fapi/v1/leverage", S.SIGNED, 1, retry=Retry.CANCEL)
    CHANGE_MARGIN_TYPE = _E("POST", "/fapi/v1/marginType", S.SIGNED, 1, retry=Retry.CANCEL)
    LISTEN_KEY_CREATE = _E("POST", "/fapi/v1/listenKey", S.USER_STREAM, 1)
    LISTEN_KEY_KEEPALIVE = _E("PUT", "/fapi/v1/listenKey", S.USER_STREAM, 1)
    LISTEN_KEY_CLOSE = _E("DELETE", "/fapi/v1/listenKey", S.USER_STREAM, 1)

    @property
    def spec(self) -> Endpoint:
        value: Endpoint = self.value
        return value


#: Venue caps on batch sizes (§C.11).
MAX_BATCH_PLACE = 5
MAX_BATCH_CANCEL = 10
