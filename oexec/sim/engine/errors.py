"""The venue's error replies, as the simulated engine raises them.

The HTTP layer turns a ``SimError`` into ``{"code": code, "msg": msg}`` with ``http_status``.
Codes are Binance USDⓈ-M codes (reference §F.3); messages follow the venue's wording so
clients that log them see familiar text, but nothing should ever match on them.
"""

from __future__ import annotations


class SimError(Exception):
    """A venue-side rejection: Binance error ``code``, message and HTTP status (400 default)."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def to_json(self) -> dict[str, object]:
        """The venue's error body."""
        return {"code": self.code, "msg": self.msg}


def missing(name: str) -> SimError:
    """-1102: a mandatory parameter is absent or empty."""
    return SimError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def not_required(name: str) -> SimError:
    """-1106: a parameter was sent where the order type does not take it."""
    return SimError(-1106, f"Parameter '{name}' sent when not required.")


def illegal_chars(name: str, legal: str) -> SimError:
    """-1100: the value does not match the parameter's lexical form."""
    return SimError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def invalid_value(name: str) -> SimError:
    """-1130: the value is well formed but not acceptable."""
    return SimError(-1130, f"Data sent for parameter '{name}' is not valid.")


def no_such_order() -> SimError:
    """-2013: unknown, or (for openOrder) no longer open."""
    return SimError(-2013, "Order does not exist.")


def unknown_order() -> SimError:
    """-2011: cancel of an order that is unknown or already closed."""
    return SimError(-2011, "Unknown order sent.")
