"""Events packed once: the bytes equal packing the merged map (docs/wire.md "Events").

The outbox packs a change's payload once and the sink splices those bytes with the
envelope fields; a subscriber must not be able to tell.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st

from oexec.events import ZmqEventSink
from oexec.events.publisher import merge_packed_maps, pack_event
from oexec.models import OrderState
from oexec.service.outbox import PackedPayload, fill_events, order_events, pack_events
from oexec.wire import pack

from .test_events import FILL, make_order

ENVELOPE = {"v": 1, "seq": 7, "topic_seq": 3, "topic": "fill", "ts": 1_700_000_000_000, "src": "s"}

values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text())
payloads = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ENVELOPE), values)


@given(payloads)
def test_spliced_event_equals_the_merged_map(payload: dict[str, Any]) -> None:
    assert pack_event(PackedPayload(payload), ENVELOPE) == pack({**payload, **ENVELOPE})


@pytest.mark.parametrize("size", [0, 1, 9, 10, 15, 16, 65_529, 65_530, 70_000])
def test_every_map_header_size(size: int) -> None:
    """fixmap, map16 and map32 headers on either side and in the result."""
    payload = {f"k{i}": i for i in range(size)}
    assert pack_event(PackedPayload(payload), ENVELOPE) == pack({**payload, **ENVELOPE})
    other = {f"j{i}": i for i in range(size)}
    assert merge_packed_maps(pack(payload), pack(other)) == pack({**payload, **other})


def test_a_payload_with_an_envelope_key_is_packed_as_before() -> None:
    payload = {"seq": 99, "x": 1}  # the envelope's value wins, in the payload's place
    assert pack_event(PackedPayload(payload), ENVELOPE) == pack({**payload, **ENVELOPE})
    assert msgpack.unpackb(pack_event(PackedPayload(payload), ENVELOPE))["seq"] == 7


def test_outbox_entries_are_the_same_bytes() -> None:
    events = order_events(make_order(OrderState.SUBMITTING, 1), make_order(OrderState.FILLED, 2))
    events += [*fill_events(FILL), ("fill", {"plain": True})]
    plain = [[topic, dict(payload)] for topic, payload in events]
    assert pack_events(events) == msgpack.packb(plain)
    assert pack_events([]) == msgpack.packb([])


async def test_subscriber_receives_the_merged_map() -> None:
    sink = ZmqEventSink(["tcp://127.0.0.1:*"])
    await sink.start()
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(sink.endpoints[0])
    try:
        [(topic, payload)] = fill_events(FILL)
        while True:  # slow joiner: publish until one arrives
            await sink.publish(topic, payload)
            try:
                frames = await asyncio.wait_for(sub.recv_multipart(), 0.05)
                break
            except TimeoutError:
                continue
        assert frames[0] == b"fill"
        event = msgpack.unpackb(frames[1])
        envelope = {k: event[k] for k in ("v", "seq", "topic_seq", "topic", "ts", "src")}
        assert frames[1] == pack({**dict(payload), **envelope})
        assert event["fill"]["trade_id"] == 77
    finally:
        sub.close(linger=0)
        ctx.term()
        await sink.close()
