"""Fixtures: an in-process simulator and a signed client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from oexec.sim.app import SimServer
from oexec.sim.config import SimConfig

from .helpers import VenueClient


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(seed=1)


@pytest.fixture
async def sim(sim_config: SimConfig) -> AsyncIterator[SimServer]:
    async with SimServer(sim_config) as server:
        yield server


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[VenueClient]:
    async with aiohttp.ClientSession() as session:
        yield VenueClient(session, sim.base_url, sim.api_key, sim.api_secret)
