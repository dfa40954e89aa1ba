"""Found by the chaos run: after a SIGKILL mid-submit, the restarted daemon's resolver
settles the order but saves no cached reply, and a client's retry of that request_id
waited the whole ``duplicate_wait_s`` (15 s) before getting the settled order. A retry
now returns as soon as the stored order has left SUBMITTING/UNKNOWN."""

from __future__ import annotations

import asyncio

import pytest

from oexec.errors import OexecError
from oexec.models import OrderState
from oexec.service.apply import with_state
from oexec.service.claim import order_for
from oexec.service.pipeline import PipelineSettings

from ..service.test_pipeline import build, limit

LONG_WAIT_S = 60.0  # the old behaviour would sit this long; the test allows a tenth


async def _claimed_then_settled(state: OrderState) -> tuple[object, object]:
    """A pipeline whose store holds a claim the venue settled without a cached reply."""
    pipeline, store, _, _ = build()
    pipeline.settings.duplicate_wait_s = LONG_WAIT_S  # shared by the pipeline's stages
    intent = limit("killed-mid-submit")
    order = order_for(intent, pipeline.now_ms(), None)
    assert (await store.claim(order, 3600)).claimed  # the first attempt, then SIGKILL
    settled = with_state(order, state, pipeline.now_ms(), error_code="VENUE_REJECTED")
    await pipeline.writer.update(order, lambda _o: settled, reason="resolver")
    return pipeline, intent


async def test_retry_gets_the_resolved_order_without_waiting() -> None:
    pipeline, intent = await _claimed_then_settled(OrderState.NEW)
    async with asyncio.timeout(LONG_WAIT_S / 10):
        order = await pipeline.place_order(intent)  # type: ignore[attr-defined]
    assert order.state is OrderState.NEW


async def test_retry_of_a_resolved_rejection_raises_it() -> None:
    pipeline, intent = await _claimed_then_settled(OrderState.REJECTED)
    async with asyncio.timeout(LONG_WAIT_S / 10):
        with pytest.raises(OexecError):
            await pipeline.place_order(intent)  # type: ignore[attr-defined]


def test_settings_default_is_still_long() -> None:
    assert PipelineSettings().duplicate_wait_s >= 10
