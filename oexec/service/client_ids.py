"""The venue's client order id, derived deterministically from the client's request_id.

Why deterministic: after a timeout the daemon (any instance, after any restart) must be
able to ask the venue about "the order for request R" without having stored anything
but R. Why a digest: request ids are arbitrary client text (any unicode, any length),
while venues take a short id from a small charset. A 160-bit BLAKE2b digest in lower-case
base32 (32 characters from ``a-z2-7``) behind a short prefix is 35 characters of
``[a-z0-9-]``, which venues accept (each states its own rule as
``VenuePolicy.client_order_id_pattern``, checked once at start by ``check_venue_takes``);
two request ids collide with probability about 2^-80 at 2^40 orders.
"""

from __future__ import annotations

import base64
import hashlib
import re

from oexec.errors import ErrorCode, OexecError
from oexec.service.ports import VenuePolicy

#: Marks ids this daemon generated (orders placed by hand on the venue lack it).
CLIENT_ORDER_ID_PREFIX = "ox-"
_DIGEST_BYTES = 20  # 160 bits -> 32 base32 characters, no padding
#: Ids that stress a venue's rule: the shortest and longest inputs, a lone surrogate.
_PROBES = ("", "x" * 100_000, "\ud800", "strat-1:abc.1")


def client_order_id_for(request_id: str) -> str:
    """The venue client order id for ``request_id``: same input, same id, on every host.

    Lone surrogates (not encodable as strict UTF-8) are hashed via ``surrogatepass`` so
    that every Python string maps to an id instead of raising.
    """
    raw = request_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(raw, digest_size=_DIGEST_BYTES, person=b"oexec-coid").digest()
    return CLIENT_ORDER_ID_PREFIX + base64.b32encode(digest).decode("ascii").lower()


def is_valid_client_order_id(value: str, policy: VenuePolicy) -> bool:
    """True when the venue of ``policy`` would accept ``value`` as a client order id."""
    return re.fullmatch(policy.client_order_id_pattern, value) is not None


def check_venue_takes(policy: VenuePolicy) -> None:
    """Refuse to start against a venue that would reject the ids this daemon derives."""
    for request_id in _PROBES:
        coid = client_order_id_for(request_id)
        if not is_valid_client_order_id(coid, policy):
            raise OexecError(
                f"venue {policy.name} does not accept client order ids like {coid!r}",
                code=ErrorCode.INTERNAL,
            )
