"""Request authentication exactly as the venue does it (reference §A).

The signature covers the EXACT bytes sent: the raw query string concatenated with the raw
body (no separator), minus the ``signature`` parameter itself. HMAC-SHA256 signatures are
hex (case-insensitive); Ed25519 signatures are base64. Checks, in order: API key present
(-2015) and well formed (-2014) and known (-2015); ``timestamp`` and ``signature`` present
(-1102); ``recvWindow`` within 1..60000 (-1130); signature valid (-1022); then the timing
rule ``timestamp < server + 1000 and server - timestamp <= recvWindow`` (-1021).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from urllib.parse import unquote_plus

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from oexec.sim.config import AccountConfig
from oexec.sim.engine import SimError
from oexec.sim.engine.errors import missing

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
_KEY_FORMAT = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class Security(StrEnum):
    """Security type of an endpoint (§A.1)."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"  # key only
    USER_STREAM = "USER_STREAM"  # key only
    TRADE = "TRADE"  # key + signature
    USER_DATA = "USER_DATA"  # key + signature

    @property
    def needs_key(self) -> bool:
        return self is not Security.NONE

    @property
    def signed(self) -> bool:
        return self in (Security.TRADE, Security.USER_DATA)


@attrs.frozen
class Credential:
    """What the venue stores for an API key: HMAC secret or Ed25519 public key."""

    account_id: str
    secret: bytes = attrs.field(default=b"", repr=False)
    public_key: Ed25519PublicKey | None = attrs.field(default=None, repr=False)

    def verify(self, message: bytes, signature: str) -> bool:
        if self.public_key is not None:
            return _verify_ed25519(self.public_key, message, signature)
        expected = hmac.new(self.secret, message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())


def _verify_ed25519(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    # A '+' sent unencoded arrives as a space after form decoding; restore it.
    try:
        raw = base64.b64decode(signature.replace(" ", "+"), validate=True)
        key.verify(raw, message)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def credential_for(account: AccountConfig) -> Credential:
    """Build the stored credential of a configured account."""
    if account.ed25519_public_key:
        key = load_pem_public_key(account.ed25519_public_key.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"account {account.account_id!r}: not an Ed25519 public key")
        return Credential(account.account_id, public_key=key)
    return Credential(account.account_id, secret=account.secret.encode())


class KeyStore:
    """API key -> credential, for every configured account."""

    def __init__(self, accounts: Iterable[AccountConfig]) -> None:
        self._by_key = {a.key: credential_for(a) for a in accounts}

    def lookup(self, api_key: str | None) -> Credential:
        """The credential of a request's ``X-MBX-APIKEY``; -2015 missing/unknown, -2014 format."""
        if not api_key:
            raise _rejected_key()
        if not _KEY_FORMAT.match(api_key):
            raise SimError(-2014, "API-key format invalid.", 401)
        credential = self._by_key.get(api_key)
        if credential is None:
            raise _rejected_key()
        return credential


def _rejected_key() -> SimError:
    return SimError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def signed_payload(raw_query: str, raw_body: str) -> tuple[bytes, str | None]:
    """The signed bytes (query + body without ``signature``) and the signature, if sent."""
    query, sig_q = _strip_signature(raw_query)
    body, sig_b = _strip_signature(raw_body)
    signature = sig_q if sig_q is not None else sig_b
    return (query + body).encode(), signature


def _strip_signature(raw: str) -> tuple[str, str | None]:
    if "signature=" not in raw:
        return raw, None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature=") and signature is None:
            signature = unquote_plus(part[len("signature=") :])
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_timing(params: Mapping[str, str], server_ms: int) -> None:
    """The timestamp/recvWindow rule of §A.5; -1102/-1130/-1021."""
    timestamp = _parse_long(params, "timestamp")
    window = _recv_window(params)
    if timestamp >= server_ms + 1000:
        raise SimError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - timestamp > window:
        raise SimError(-1021, "Timestamp for this request is outside of the recvWindow.")


def _recv_window(params: Mapping[str, str]) -> int:
    if params.get("recvWindow", "") == "":
        return DEFAULT_RECV_WINDOW_MS
    window = _parse_long(params, "recvWindow")
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise SimError(-1130, "Data sent for parameter 'recvWindow' is not valid.")
    return window


def _parse_long(params: Mapping[str, str], name: str) -> int:
    text = params.get(name, "")
    if not text or not (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        raise missing(name)
    return int(text)


def authenticate(
    keys: KeyStore,
    security: Security,
    api_key: str | None,
    params: Mapping[str, str],
    raw_query: str,
    raw_body: str,
    server_ms: int,
) -> str | None:
    """Apply ``security``; return the account id (None for NONE) or raise SimError."""
    if not security.needs_key:
        return None
    credential = keys.lookup(api_key)
    if not security.signed:
        return credential.account_id
    message, signature = signed_payload(raw_query, raw_body)
    _parse_long(params, "timestamp")
    if not signature:
        raise missing("signature")
    _recv_window(params)
    if not credential.verify(message, signature):
        raise SimError(-1022, "Signature for this request is not valid.")
    check_timing(params, server_ms)
    return credential.account_id
