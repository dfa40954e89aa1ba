"""Hostile wire input: hypothesis strategies and a seeded random-message generator.

Shared by the CI fuzz tests (tests/reliability/test_fuzz_wire.py) and the long run
(scripts/fuzz). Every ``invalid_order`` is invalid by construction — at least one field
holds a value docs/wire.md or the venue's filters forbid — so an ``ok`` reply to one,
or any order reaching the venue, is a bug. ``halt`` and ``resume`` are left out of the
generated ops: a well-formed ``halt`` is a valid command that changes the daemon's
state for every later example (both are covered by the e2e tests).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgpack
from hypothesis import strategies as st

from oexec.wire.messages import OPS

SAFE_OPS = sorted(set(OPS) - {"halt", "resume"})
MAX_FRAME = 4096  # well under max_frame_bytes: the size limit has its own test

VALID_ORDER: dict[str, Any] = {
    "request_id": "fuzz-base",
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.010",
    "price": "49000.0",
    "time_in_force": "GTC",
}

#: Decimals the wire refuses (not plain notation, zero, non-ASCII digits, wrong type).
BAD_DECIMALS: list[Any] = [
    "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "1e3", "1E-2", "1e400", "-0",
    "-0.0", "0", "0.000", "+1", " 1", "1 ", "0x10", "١٢٣", "1_000", "", ".", "1.", ".5",
    "1,5", "9" * 41, "0." + "0" * 39 + "1", "−1", "１", "1\x00",
    0.01, float("nan"), float("inf"), -0.0, 1, 0, -1, True, b"1", [], {}, ["1"],
]  # fmt: skip
#: Plain decimals the venue's filters refuse (BTCUSDT: step 0.001, tick 0.10, bands).
FILTERED_QTY = ["0.0001", "0.0105", "100000", "0.001"]  # the last: below min notional
FILTERED_PRICE = ["49000.05", "1", "9999999"]
BAD_SYMBOLS: list[Any] = [
    "btcusdt", "BTC/USDT", "", "B" * 21, "BTCUSDT\u200b", "ＢＴＣＵＳＤＴ", "💥USDT",
    "BTCUSDT\x00", " BTCUSDT", "ZZZUSDT", 1, b"BTCUSDT", ["BTCUSDT"], True,
]  # fmt: skip
BAD_IDS: list[Any] = [
    "a" * 65, "a" * 1000, "", "a b", "../../etc", "ид", "💥", "id\n", 7, -1, 1.5, b"r1",
    ["r1"], {"r": 1}, True,
]  # fmt: skip
BAD_ENUMS: list[Any] = ["buy", "BUY ", "", "ＢＵＹ", "LIMIT\x00", "MARKETT", 1, None, b"BUY"]
BAD_INTS: list[Any] = [-1, 2**63, 2**64 - 1, -(2**63), 1.5, "100", True, float("nan")]
BAD_BOOLS: list[Any] = ["true", 1, 0, "yes", b"\x01", []]

BAD_VALUES: dict[str, list[Any]] = {
    "request_id": BAD_IDS,
    "symbol": BAD_SYMBOLS,
    "side": BAD_ENUMS,
    "type": BAD_ENUMS,
    "time_in_force": BAD_ENUMS[:-2],  # optional field: None would be "absent", i.e. valid
    "quantity": BAD_DECIMALS + FILTERED_QTY,
    "price": BAD_DECIMALS + FILTERED_PRICE,
    "reduce_only": BAD_BOOLS,
    "position_side": BAD_ENUMS[:-2],
    "good_till_date": BAD_INTS,
    "deadline_ms": BAD_INTS,
    "stop_price": [v for v in BAD_DECIMALS if v is not None],
}
#: Each entry is invalid whatever the other fields are.
CORRUPTIBLE = sorted(BAD_VALUES)


def _text() -> st.SearchStrategy[str]:
    return st.text(max_size=40) | st.sampled_from(["", "a" * 200, "\x00", "💥" * 10])


#: Any msgpack-packable value: NaN, ±inf, -0.0, 64-bit edges, unicode, bytes, nesting.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text()
    | st.binary(max_size=64)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(_text() | st.integers(-5, 5), inner, max_size=6)
    ),
    max_leaves=40,
)


def bad_field() -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from(CORRUPTIBLE).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(BAD_VALUES[name]))
    )


@st.composite
def invalid_orders(draw: st.DrawFn) -> dict[str, Any]:
    """A complete place_order map with 1-3 fields replaced by forbidden values."""
    order = dict(VALID_ORDER, request_id=f"fz-{draw(st.integers(0, 10**9))}")
    for name, value in draw(st.lists(bad_field(), min_size=1, max_size=3)):
        order[name] = value
    return {"v": 1, "id": draw(st.integers(1, 2**31)), "op": "place_order", **order}


@st.composite
def envelopes(draw: st.DrawFn) -> dict[Any, Any]:
    """Maps shaped like requests with a hostile envelope or hostile extra fields."""
    version = draw(st.sampled_from([1, 1, 1, 0, 2, -1, 2**64 - 1, "1", 1.0, None]) | VALUES)
    ident = draw(st.integers(-(2**63), 2**64 - 1) | _text() | VALUES)
    op = draw(st.sampled_from(SAFE_OPS) | _text() | VALUES)
    data: dict[Any, Any] = {"v": version, "id": ident, "op": op}
    extra = draw(st.dictionaries(st.sampled_from([*CORRUPTIBLE, "limit", "order_id"]), VALUES))
    data.update(extra)
    return data


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


NESTED = st.integers(1, 200).map(lambda n: {"v": 1, "id": 1, "op": "health", "x": deep(n)})
WIDE = st.integers(1, 400).map(
    lambda n: {"v": 1, "id": 1, "op": "health", **{str(i): i for i in range(n)}}
)

FRAME_LISTS = st.lists(
    st.binary(max_size=256) | st.just(b""), min_size=1, max_size=6
)  # DEALER: the routing id is added by the transport


def pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


# --- seeded random bytes (no hypothesis: a fixed stream from a seed, any length) --------
def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        action = rng.randrange(4)
        if action == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif action == 1:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
        elif action == 2 and buf:
            del buf[rng.randrange(len(buf))]
        else:
            buf = buf[: rng.randrange(len(buf) + 1)]
    return bytes(buf)


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    base = {"v": 1, "id": rng.randrange(2**32), "op": "place_order", **VALID_ORDER}
    if kind == 2:  # three fields wrong: a few random edits cannot make it valid again
        base.update(quantity="NaN", symbol="btcusdt", side="buy")
        return _mutate(rng, pack(base))
    if kind == 1:
        base["request_id"] = f"rb-{rng.randrange(10**9)}"
        name = rng.choice(CORRUPTIBLE)
        base[name] = rng.choice(BAD_VALUES[name])
        return pack(base)
    return _mutate(rng, pack({"v": 1, "id": rng.randrange(2**32), "op": rng.choice(SAFE_OPS)}))


def random_messages(seed: int, count: int) -> Iterator[list[bytes]]:
    """``count`` DEALER messages (1-5 frames each) from ``seed``: same seed, same stream."""
    rng = random.Random(seed)
    for _ in range(count):
        frames = [_body(rng)]
        if rng.random() < 0.2:
            frames = [b"", *frames]
        if rng.random() < 0.1:
            frames += [_body(rng) for _ in range(rng.randint(1, 3))]
        yield frames
