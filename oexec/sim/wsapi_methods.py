"""The USDⓈ-M WebSocket API's methods as a table, its parameters and its request signing.

Every method but ``session.*`` has a REST twin (addendum §2.4): it is served by the twin's
``Endpoint`` from routes.py, so it charges the same weight and order counts, runs the
same engine call with the same filters and error codes, and consults the fault rules of
the twin's path (``order.place`` -> ``/fapi/v1/order``). Results are the REST bodies.

Parameters arrive as JSON values; the engine takes the venue's text forms, so they are
converted once here: strings as sent, integers and decimals as written (JSON numbers keep
their literal text), booleans ``true``/``false``. Signing (§2.5): all params except
``signature``, sorted by name, joined ``key=value`` with ``&``. The documented example
joins raw values; the official SDK URL-encodes them (and writes Python booleans as
``True``); ccxt joins raw values. Both text forms are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from oexec.sim.auth import Credential, KeyStore, Security, check_timing
from oexec.sim.engine import SimError
from oexec.sim.engine.errors import missing
from oexec.sim.routes import ENDPOINTS, Endpoint

PATH = "/ws-fapi/v1"
SESSION_WEIGHT = 2
HANDSHAKE_WEIGHT = 5  # each handshake attempt costs 5 IP weight (§2.1)
Params = Mapping[str, Any]


class JsonNumber(str):
    """A JSON number with a fraction or exponent, kept as the literal the client wrote."""


@attrs.frozen
class Method:
    """One WebSocket API method: its REST twin (None for ``session.*``) and security."""

    name: str
    twin: tuple[str, str] | None  # (HTTP method, path)
    security: Security

    @property
    def endpoint(self) -> Endpoint:
        assert self.twin is not None
        return ENDPOINTS[self.twin]

    @property
    def fault_path(self) -> str:
        """Fault rules match this path: the twin's, so one rule covers REST and WebSocket."""
        return self.twin[1] if self.twin is not None else PATH

    @property
    def mutates(self) -> bool:
        """After-accept faults (reply lost or unknown) apply to requests that change state."""
        return self.twin is not None and self.twin[0] != "GET"

    def weight(self, params: Mapping[str, str]) -> int:
        return SESSION_WEIGHT if self.twin is None else self.endpoint.weight(params)

    @property
    def orders(self) -> tuple[int, int]:
        return (0, 0) if self.twin is None else self.endpoint.orders


def _table() -> dict[str, Method]:
    n, s, l_, v1 = Security.NONE, Security.USER_STREAM, Security.USER_DATA, "/fapi/v1"
    rows: list[tuple[str, tuple[str, str] | None, Security | None]] = [
        ("session.logon", None, Security.TRADE),
        ("session.status", None, n),
        ("session.logout", None, n),
        ("order.place", ("POST", f"{v1}/order"), None),
        ("order.modify", ("PUT", f"{v1}/order"), None),
        ("order.cancel", ("DELETE", f"{v1}/order"), None),
        ("order.status", ("GET", f"{v1}/order"), None),
        ("algoOrder.place", ("POST", f"{v1}/algoOrder"), None),
        ("algoOrder.cancel", ("DELETE", f"{v1}/algoOrder"), None),
        ("account.position", ("GET", "/fapi/v2/positionRisk"), l_),
        ("v2/account.position", ("GET", "/fapi/v3/positionRisk"), l_),
        ("account.balance", ("GET", "/fapi/v2/balance"), l_),
        ("v2/account.balance", ("GET", "/fapi/v3/balance"), l_),
        ("account.status", ("GET", "/fapi/v2/account"), l_),
        ("v2/account.status", ("GET", "/fapi/v3/account"), l_),
        ("userDataStream.start", ("POST", f"{v1}/listenKey"), s),
        ("userDataStream.ping", ("PUT", f"{v1}/listenKey"), s),
        ("userDataStream.stop", ("DELETE", f"{v1}/listenKey"), s),
        ("ticker.price", ("GET", f"{v1}/ticker/price"), n),
        ("ticker.book", ("GET", f"{v1}/ticker/bookTicker"), n),
        ("depth", ("GET", f"{v1}/depth"), n),
    ]
    table = {}
    for name, twin, security in rows:
        if security is None:
            assert twin is not None
            security = ENDPOINTS[twin].security
        table[name] = Method(name, twin, security)
    return table


METHODS: dict[str, Method] = _table()


# -- parameters -----------------------------------------------------------------------------
def _text(value: Any, python_bools: bool = False) -> str:
    if isinstance(value, bool):
        return str(value) if python_bools else ("true" if value else "false")
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def as_text(params: Params) -> dict[str, str]:
    """The params as the engine (and the REST twin) sees them: text values."""
    return {name: _text(value) for name, value in params.items()}


def decode_json(text: str) -> Any:
    """Parse a request frame; decimals keep their literal text (never a float)."""
    return json.loads(text, parse_float=JsonNumber)


def signed_payloads(params: Params) -> Iterator[bytes]:
    """The candidate signed strings: raw join (docs, ccxt) and URL-encoded (official SDK)."""
    items = sorted((k, v) for k, v in params.items() if k != "signature")
    seen: set[str] = set()
    for python_bools in (False, True):
        pairs = [(k, _text(v, python_bools)) for k, v in items]
        for payload in ("&".join(f"{k}={v}" for k, v in pairs), urlencode(pairs)):
            if payload not in seen:
                seen.add(payload)
                yield payload.encode()


@attrs.define
class Logon:
    """The key a connection logged on with (``session.logon``)."""

    api_key: str
    account_id: str
    authorized_since_ms: int


def verify(keys: KeyStore, params: Params, text: Mapping[str, str], server_ms: int) -> Credential:
    """A per-request signature (HMAC or Ed25519): key, timestamp and signature present,
    signature valid, then the timestamp/recvWindow rule (-1130/-1021), as on REST."""
    credential = keys.lookup(text.get("apiKey"))
    if not text.get("timestamp"):
        raise missing("timestamp")
    signature = text.get("signature")
    if not signature:
        raise missing("signature")
    if not any(credential.verify(payload, signature) for payload in signed_payloads(params)):
        raise SimError(-1022, "Signature for this request is not valid.")
    check_timing(text, server_ms)
    return credential


def authenticate(
    keys: KeyStore,
    method: Method,
    params: Params,
    text: Mapping[str, str],
    logon: Logon | None,
    server_ms: int,
) -> str | None:
    """The account a request acts for (None for NONE methods), or SimError.

    A request carrying its own ``signature`` is checked on its own (and a logged-on
    session's key does not apply to it); otherwise a logged-on session authorises it,
    the ``timestamp`` rule still applying to SIGNED methods.
    """
    security = method.security
    if not security.needs_key:
        return None
    if not security.signed:
        if text.get("apiKey"):
            return keys.lookup(text["apiKey"]).account_id
        if logon is not None:
            return logon.account_id
        raise SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    if "signature" not in text and logon is not None and not text.get("apiKey"):
        check_timing(text, server_ms)
        return logon.account_id
    return verify(keys, params, text, server_ms).account_id


def rate_limits(
    weight_1m: int,
    orders: tuple[int, int] | None,
    limits: Mapping[str, int],
) -> list[dict[str, Any]]:
    """The ``rateLimits`` array: ORDERS windows for order methods, then REQUEST_WEIGHT."""
    rows: list[dict[str, Any]] = []
    if orders is not None:
        rows.append(_row("ORDERS", "SECOND", 10, limits["orders_per_10s"], orders[0]))
        rows.append(_row("ORDERS", "MINUTE", 1, limits["orders_per_minute"], orders[1]))
    rows.append(_row("REQUEST_WEIGHT", "MINUTE", 1, limits["weight_per_minute"], weight_1m))
    return rows


def _row(kind: str, interval: str, num: int, limit: int, count: int) -> dict[str, Any]:
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": num,
        "limit": limit,
        "count": count,
    }
