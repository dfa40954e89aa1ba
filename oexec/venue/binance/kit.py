"""Binance USDⓈ-M as the core sees it: the started adapter, its policy and its
capabilities (``VenueKit``), built by ``oexec.venue.open_venue`` for ``[venue] name =
"binance_usdm"``."""

from __future__ import annotations

from collections.abc import Callable

from oexec.config import VenueConfig
from oexec.service.ports import RequestGate, UserStream, VenueKit
from oexec.venue.binance.adapter import BinanceUsdmVenue
from oexec.venue.binance.policy import policy
from oexec.venue.binance.transport import VenueObserver
from oexec.venue.binance.userstream import BinanceUserStream


async def open_binance(
    config: VenueConfig,
    *,
    gate: RequestGate | None = None,
    observer: VenueObserver | None = None,
) -> VenueKit:
    """Start the adapter (session, server-time offset) and hand over its ports."""
    venue = BinanceUsdmVenue(config, gate=gate, observer=observer)
    await venue.start()

    def user_stream(on_state: Callable[[str], None]) -> UserStream:
        return BinanceUserStream(venue, config.ws_url or None, on_state=on_state)

    return VenueKit(
        venue=venue,
        policy=policy(config),
        user_stream=user_stream,
        dead_man=venue.countdown_cancel_all,
        amend=venue,
        batch=venue,
        account=venue,
    )
