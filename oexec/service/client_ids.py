"""The venue's ``newClientOrderId``, derived deterministically from the client's request_id.

Why deterministic: after a timeout the daemon (any instance, after any restart) must be
able to ask the venue about "the order for request R" without having stored anything
but R. Why a digest: request ids are arbitrary client text (any unicode, any length),
while Binance accepts only ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``. A 160-bit BLAKE2b digest in
lower-case base32 (32 characters from ``a-z2-7``) behind a short prefix fits in 35
characters; two request ids collide with probability about 2^-80 at 2^40 orders.
"""

from __future__ import annotations

import base64
import hashlib
import re

#: Marks ids this daemon generated (orders placed by hand on the venue lack it).
CLIENT_ORDER_ID_PREFIX = "ox-"
#: The venue's own charset and length rule (Binance USDⓈ-M, POST /fapi/v1/order).
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DIGEST_BYTES = 20  # 160 bits -> 32 base32 characters, no padding


def client_order_id_for(request_id: str) -> str:
    """The venue client order id for ``request_id``: same input, same id, on every host.

    Lone surrogates (not encodable as strict UTF-8) are hashed via ``surrogatepass`` so
    that every Python string maps to an id instead of raising.
    """
    raw = request_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(raw, digest_size=_DIGEST_BYTES, person=b"oexec-coid").digest()
    return CLIENT_ORDER_ID_PREFIX + base64.b32encode(digest).decode("ascii").lower()


def is_valid_client_order_id(value: str) -> bool:
    """True when the venue would accept ``value`` as a client order id."""
    return CLIENT_ORDER_ID_PATTERN.fullmatch(value) is not None
