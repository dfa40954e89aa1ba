"""Wire fuzzing over the real ZeroMQ front end of a real daemon (``oexec run``) against
the real simulator: every addressable message gets one typed reply, the daemon stays
up, its memory stays flat, and nothing invalid reaches the venue.

Sizes: OEXEC_FUZZ_EXAMPLES (hypothesis examples per property, default 120) and
OEXEC_FUZZ_MESSAGES (seeded random messages, default 1500); scripts/fuzz runs more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from oexec.errors import ErrorCode
from oexec.wire import ErrorReply

from . import fuzzgen
from .procs import DaemonProc, SimHost
from .wireprobe import WireProbe

EXAMPLES = int(os.environ.get("OEXEC_FUZZ_EXAMPLES", "120"))
MESSAGES = int(os.environ.get("OEXEC_FUZZ_MESSAGES", "1500"))
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/batchOrders", "/fapi/v1/algoOrder")

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # CI reruns the same examples; scripts/fuzz explores new ones (OEXEC_FUZZ_RANDOM=1)
    derandomize=os.environ.get("OEXEC_FUZZ_RANDOM") != "1",
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def venue_footprint(sim: SimHost) -> dict[str, Any]:
    """What an order leaves at the venue: its ledger and its order-path counters."""
    stats = sim.stats()
    paths = stats["requests_by_path"]
    return {
        "orders": sim.orders(),
        "accepted": stats["orders_accepted"],
        "rejected": stats["orders_rejected"],
        "order_requests": {p: paths.get(p, 0) for p in ORDER_PATHS},
    }


@pytest.fixture(scope="module")
def probe(daemon_proc: DaemonProc) -> Iterator[WireProbe]:
    probe = WireProbe(daemon_proc.endpoint)
    yield probe
    probe.close()


@pytest.fixture(autouse=True)
def venue_untouched(sim_proc: SimHost, daemon_proc: DaemonProc) -> Iterator[None]:
    """After every test: the daemon is alive and the venue saw no order traffic."""
    before = venue_footprint(sim_proc)
    yield
    assert daemon_proc.alive(), daemon_proc.log_text()[-3000:]
    assert venue_footprint(sim_proc) == before


@fuzz_settings
@given(frames=fuzzgen.FRAME_LISTS)
def test_arbitrary_frames_get_one_typed_reply(probe: WireProbe, frames: list[bytes]) -> None:
    probe.call(frames)


@fuzz_settings
@given(value=fuzzgen.VALUES)
def test_any_msgpack_value_gets_a_typed_reply(probe: WireProbe, value: Any) -> None:
    reply = probe.call([fuzzgen.pack(value)])
    if not isinstance(value, dict):
        assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.BAD_FRAME


@fuzz_settings
@given(request=fuzzgen.envelopes())
def test_hostile_envelopes_get_typed_replies_with_their_id(
    probe: WireProbe, request: dict[Any, Any]
) -> None:
    reply = probe.call([fuzzgen.pack(request)], op=request.get("op"))
    ident = request["id"]
    readable = (isinstance(ident, str) and 0 < len(ident) <= 128) or (
        isinstance(ident, int) and not isinstance(ident, bool)
    )
    if readable:
        assert reply.id == ident
    if request["op"] == "place_order":  # VALID_ORDER fields are never all present here
        assert isinstance(reply, ErrorReply)


@fuzz_settings
@given(request=fuzzgen.invalid_orders())
def test_invalid_orders_are_refused_before_the_venue(
    probe: WireProbe, request: dict[str, Any]
) -> None:
    reply = probe.call([fuzzgen.pack(request)], op="place_order")
    assert isinstance(reply, ErrorReply), (request, reply)
    assert reply.id == request["id"]


@fuzz_settings
@given(request=fuzzgen.NESTED | fuzzgen.WIDE)
def test_nested_and_wide_maps(probe: WireProbe, request: dict[str, Any]) -> None:
    probe.call([fuzzgen.pack(request)])


def test_seeded_random_bytes(probe: WireProbe) -> None:
    for frames in fuzzgen.random_messages(seed=9, count=MESSAGES):
        probe.call(frames)
    assert probe.ok_place_orders == 0


def test_oversize_frames(probe: WireProbe, daemon_proc: DaemonProc) -> None:
    """Over max_frame_bytes: TOO_LARGE. Over the transport's hard limit: the connection
    is dropped without a reply, and the daemon serves the next connection."""
    limit = 65536
    reply = probe.call([b"\x81" + b"x" * limit])
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.TOO_LARGE
    probe.send_raw([b"x" * (4 * limit + 1)])
    probe.reconnect()
    health = probe.call([fuzzgen.pack({"v": 1, "id": "after", "op": "health"})])
    assert not isinstance(health, ErrorReply) and health.id == "after"


def test_memory_stays_flat(probe: WireProbe, daemon_proc: DaemonProc) -> None:
    """RSS after a bounded run of hostile input is what it was after a warm-up."""
    for frames in fuzzgen.random_messages(seed=1, count=MESSAGES // 2):
        probe.call(frames)
    warm = daemon_proc.rss()
    for frames in fuzzgen.random_messages(seed=2, count=MESSAGES * 2):
        probe.call(frames)
    grown = daemon_proc.rss() - warm
    assert grown < 8 * 2**20, f"RSS grew {grown / 2**20:.1f} MiB over {MESSAGES * 2} messages"


def test_no_errors_logged(daemon_proc: DaemonProc) -> None:
    """Bad input is the client's problem: nothing at ERROR level, no tracebacks."""
    log = daemon_proc.log_text()
    assert '"level": "ERROR"' not in log
    assert "Traceback" not in log
