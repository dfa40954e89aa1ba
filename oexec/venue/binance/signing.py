"""Request signing for SIGNED endpoints (reference §A): pure functions over bytes.

The signature covers exactly the bytes transmitted: the query string followed directly
by the form body (no separator, §A.2 example 3). HMAC keys are hashed once into a keyed
HMAC object that is ``copy()``-ed per request; Ed25519 signatures are base64 and then
URL-encoded because base64 may contain ``+ / =``. Signers never show their key in repr.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from oexec.config import VenueConfig
from oexec.errors import ErrorCode, VenueAuthError

_SAFE_VALUE = re.compile(r"[A-Za-z0-9._~-]*")


def encode_value(value: str) -> str:
    """Percent-encode a parameter value only when it holds a character that needs it."""
    if _SAFE_VALUE.fullmatch(value):
        return value
    return quote(value, safe="")


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&k=v`` in the given order; keys are fixed ASCII names, values are encoded."""
    return "&".join(f"{key}={encode_value(value)}" for key, value in params)


def signed_string(query: str, body: str) -> bytes:
    """The venue's ``totalParams``: query then body, concatenated without a separator."""
    return (query + body).encode("ascii")


def hmac_signature(keyed: hmac.HMAC, payload: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of ``payload`` with a pre-keyed HMAC object."""
    mac = keyed.copy()
    mac.update(payload)
    return mac.hexdigest()


def ed25519_signature(key: Ed25519PrivateKey, payload: bytes) -> str:
    """Base64 Ed25519 signature, URL-encoded for a query string or form body."""
    return quote(base64.b64encode(key.sign(payload)).decode("ascii"), safe="")


def append_signature(params: str, signature: str) -> str:
    """The signature is always the last parameter."""
    return f"{params}&signature={signature}" if params else f"signature={signature}"


class Signer(Protocol):
    """Produces the ``signature`` parameter value (already URL-safe) for a payload."""

    def sign(self, payload: bytes) -> str: ...


class HmacSigner:
    """HMAC-SHA256 with a secret key; the key is hashed once at construction."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: str) -> None:
        self._keyed = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)

    def sign(self, payload: bytes) -> str:
        return hmac_signature(self._keyed, payload)

    def __repr__(self) -> str:
        return "HmacSigner(<secret>)"


class Ed25519Signer:
    """Ed25519 with a PEM (PKCS#8) private key."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519Signer:
        """Raises VenueAuthError when the PEM is not an Ed25519 private key."""
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VenueAuthError(
                f"cannot load Ed25519 private key: {type(exc).__name__}",
                code=ErrorCode.VENUE_AUTH,
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise VenueAuthError("private key is not Ed25519", code=ErrorCode.VENUE_AUTH)
        return cls(key)

    def sign(self, payload: bytes) -> str:
        return ed25519_signature(self._key, payload)

    def __repr__(self) -> str:
        return "Ed25519Signer(<private key>)"


def make_signer(config: VenueConfig) -> Signer:
    """Build the signer the config asks for (``key_type`` "hmac" or "ed25519")."""
    if config.key_type == "ed25519":
        pem = (
            Path(config.private_key_file).read_bytes()
            if config.private_key_file
            else config.api_secret.encode("utf-8")
        )
        return Ed25519Signer.from_pem(pem)
    if config.key_type == "hmac":
        return HmacSigner(config.api_secret)
    raise VenueAuthError(f"unsupported key_type {config.key_type!r}", code=ErrorCode.VENUE_AUTH)
