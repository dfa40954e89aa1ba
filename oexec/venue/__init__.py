"""Venue packages behind the core's ports (oexec.service.ports: Venue, UserStream,
VenuePolicy, VenueKit). ``open_venue`` picks one by ``[venue] name``; the composition
root (app.py, cluster.py, cli/) knows no adapter module, only this.

A venue package brings a ``Venue`` adapter, a ``VenuePolicy`` (what the core must know
of its behaviour, as data) and, where it has them, a user stream, a dead-man switch,
in-place amends, batches and an account view. ``binance`` is the production venue;
``memory`` a small in-process one that runs the service's contract tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from oexec.config import VenueConfig
from oexec.config_loader import ConfigError
from oexec.service.ports import RequestGate, VenueKit

Opener = Callable[..., Awaitable[VenueKit]]


async def _binance(config: VenueConfig, **parts: Any) -> VenueKit:
    from oexec.venue.binance.kit import open_binance

    return await open_binance(config, **parts)


async def _memory(config: VenueConfig, **parts: Any) -> VenueKit:
    from oexec.venue.memory import open_memory

    return await open_memory(config, **parts)


#: ``[venue] name`` -> how to open it (imported only when chosen).
VENUES: dict[str, Opener] = {"binance_usdm": _binance, "memory": _memory}


async def open_venue(
    config: VenueConfig, *, gate: RequestGate | None = None, observer: Any = None
) -> VenueKit:
    """The started venue named by ``config.name``; close it with ``kit.venue.close()``.

    ``gate``: the rate-limit gate its requests pass; ``observer``: where it counts its
    round trips (oexec.ops.metrics.Metrics).
    """
    opener = VENUES.get(config.name)
    if opener is None:
        known = ", ".join(sorted(VENUES))
        raise ConfigError([f"[venue] name {config.name!r} is not a venue (known: {known})"])
    return await opener(config, gate=gate, observer=observer)
