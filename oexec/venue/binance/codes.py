"""Binance USDⓈ-M error codes (reference §F.3) and the sets the error mapping uses.

Codes are stable; messages are not. The mapping in ``errors.py`` decides by these sets
and the HTTP status only. The simulator may import this module to speak the same codes.
"""

from __future__ import annotations

from enum import IntEnum


class BinanceErrorCode(IntEnum):
    """The codes oexec reacts to or the simulator emits (subset of §F.3)."""

    UNKNOWN = -1000
    DISCONNECTED = -1001
    UNAUTHORIZED = -1002
    TOO_MANY_REQUESTS = -1003
    UNEXPECTED_RESP = -1006
    TIMEOUT = -1007
    SERVER_BUSY = -1008
    TOO_MANY_ORDERS = -1015
    SERVICE_SHUTTING_DOWN = -1016
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    ILLEGAL_CHARS = -1100
    TOO_MANY_PARAMETERS = -1101
    MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
    UNKNOWN_PARAM = -1103
    PARAM_NOT_REQUIRED = -1106
    BAD_PRECISION = -1111
    INVALID_TIF = -1115
    INVALID_ORDER_TYPE = -1116
    INVALID_SIDE = -1117
    BAD_SYMBOL = -1121
    INVALID_SYMBOL_STATUS = -1122
    INVALID_LISTEN_KEY = -1125
    INVALID_PARAMETER = -1130
    NEW_ORDER_REJECTED = -2010
    CANCEL_REJECTED = -2011
    NO_SUCH_ORDER = -2013
    BAD_API_KEY_FMT = -2014
    REJECTED_MBX_KEY = -2015
    MARGIN_NOT_SUFFICIENT = -2019
    ORDER_WOULD_IMMEDIATELY_TRIGGER = -2021
    REDUCE_ONLY_REJECT = -2022
    MAX_OPEN_ORDER_EXCEEDED = -2025
    PRICE_GREATER_THAN_MAX_PRICE = -4002
    QTY_LESS_THAN_MIN_QTY = -4004
    QTY_GREATER_THAN_MAX_QTY = -4005
    PRICE_LESS_THAN_MIN_PRICE = -4013
    PRICE_NOT_INCREASED_BY_TICK_SIZE = -4014
    INVALID_CL_ORD_ID_LEN = -4015
    PRICE_HIGHER_THAN_MULTIPLIER_UP = -4016
    QTY_NOT_INCREASED_BY_STEP_SIZE = -4023
    PRICE_LOWER_THAN_MULTIPLIER_DOWN = -4024
    MAX_STOP_ORDER_EXCEEDED = -4045
    POSITION_SIDE_NOT_MATCH = -4061
    INVALID_BATCH_PLACE_ORDER_SIZE = -4082
    DUPLICATED_CLIENT_ORDER_ID = -4116
    MARKET_ORDER_REJECT = -4131
    MIN_NOTIONAL = -4164
    FOK_ORDER_REJECT = -5021
    GTX_ORDER_REJECT = -5022
    SAME_ORDER = -5027
    ME_RECVWINDOW_REJECT = -5028


C = BinanceErrorCode

#: Sent, but the venue cannot say whether it was executed (§F.2).
UNKNOWN_OUTCOME_CODES = frozenset({C.UNEXPECTED_RESP, C.TIMEOUT})
#: Definitely not executed; the venue asks to try again later.
UNAVAILABLE_CODES = frozenset({C.DISCONNECTED, C.SERVER_BUSY, C.SERVICE_SHUTTING_DOWN})
#: Key, signature or permission problems: retrying cannot help.
AUTH_CODES = frozenset({C.UNAUTHORIZED, C.INVALID_SIGNATURE, C.BAD_API_KEY_FMT, C.REJECTED_MBX_KEY})
#: The order does not exist (or is no longer cancelable because it is closed).
NOT_FOUND_CODES = frozenset({C.NO_SUCH_ORDER, C.CANCEL_REJECTED})
#: Our clock (or the matching engine's window) disagrees with the venue's.
CLOCK_SKEW_CODES = frozenset({C.INVALID_TIMESTAMP})
#: HTTP statuses that mean "rate limited / banned": pause all traffic.
RATE_LIMIT_STATUSES = frozenset({429, 418})
#: HTTP statuses that mean "reached the backend, outcome unknown".
UNKNOWN_OUTCOME_STATUSES = frozenset({408})
#: The two documented 503 texts that mean "failed, not executed" (§F.1). A 503 carries
#: no code, so this is the one place where a message is looked at.
DEFINITE_FAILURE_503_MESSAGES = (
    "service unavailable",
    "internal error; unable to process your request",
)
