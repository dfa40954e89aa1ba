"""The journal's entry encoding: the fast path (serialise, then scan the bytes for a
secret-bearing key) must store exactly what scrubbing every payload first stored, and
never a secret, whatever the payload's shape or the key's spelling."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from oexec.models import Side
from oexec.service.journal import SECRET_KEYS, Journal, encode_entry, scrub

from .fakes import MemoryStore

SECRET = "s3cr3t-value-never-stored"


def _old_encoding(entry: dict[str, Any]) -> bytes:
    """What the journal stored before the fast path: scrub, then serialise."""
    return orjson.dumps(scrub(entry), default=str)


def test_secret_keys_are_dropped_at_any_depth_and_in_any_case() -> None:
    entry = {
        "at": 1,
        "kind": "response",
        "Signature": SECRET,
        "raw": {"apiKey": SECRET, "nested": [{"X-MBX-APIKEY": SECRET, "qty": Decimal("0.1")}]},
        "fields": ({"listenKey": SECRET, "side": Side.BUY},),
    }
    data = encode_entry(entry)
    assert SECRET.encode() not in data
    assert orjson.loads(data) == {
        "at": 1,
        "kind": "response",
        "raw": {"nested": [{"qty": "0.1"}]},
        "fields": [{"side": "BUY"}],
    }
    assert data == _old_encoding(entry)


def test_a_secret_name_as_a_value_or_inside_a_longer_key_is_kept() -> None:
    entry = {"at": 1, "kind": "stream", "note": "signature", "secretive": "yes", "apikeys": 2}
    assert orjson.loads(encode_entry(entry)) == entry


def test_a_non_ascii_key_that_folds_onto_a_secret_key_is_dropped() -> None:
    kelvin_key = "apiKey".replace("K", "\u212a")  # KELVIN SIGN: lower() gives "apikey"
    assert kelvin_key.lower() == "apikey"
    data = encode_entry({"at": 1, "kind": "x", kelvin_key: SECRET, "ok": "ü"})
    assert SECRET.encode() not in data
    assert orjson.loads(data) == {"at": 1, "kind": "x", "ok": "ü"}


_keys = st.one_of(
    st.sampled_from(sorted(SECRET_KEYS)).map(str.upper),
    st.sampled_from(sorted(SECRET_KEYS)),
    st.sampled_from(["qty", "price", "raw", "o", "X", "signatures", "Secret_", "ü"]),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.sampled_from(list(Side)),
)
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=20,
)


@given(st.dictionaries(_keys, _values, max_size=6))
def test_the_fast_path_stores_what_scrubbing_first_stored(fields: dict[str, Any]) -> None:
    entry = {"at": 5, "kind": "response", **fields}
    assert orjson.loads(encode_entry(entry)) == orjson.loads(_old_encoding(entry))


async def test_recorded_entries_reach_the_store_without_secrets() -> None:
    store = MemoryStore()
    journal = Journal(store, now_ms=lambda: 3)
    journal.record("ox-1", "response", op="place_order", raw={"orderId": 1, "signature": SECRET})
    await journal.flush()
    stored = await store.journal("ox-1")
    assert stored and all(SECRET.encode() not in e for e in stored)
    assert orjson.loads(stored[0]) == {
        "at": 3,
        "kind": "response",
        "op": "place_order",
        "raw": {"orderId": 1},
    }
