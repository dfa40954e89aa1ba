"""Several accounts, HMAC and Ed25519, isolated from each other, over real HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import yarl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from oexec.sim.app import SimServer
from oexec.sim.config import AccountConfig, SimConfig

from .helpers import VenueClient, limit_order

PRIVATE = Ed25519PrivateKey.generate()
PEM = PRIVATE.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(
        accounts=(
            AccountConfig(key="alice-key", secret="alice-secret", name="alice"),
            AccountConfig(
                key="bob-key", ed25519_public_key=PEM, balances={"USDT": Decimal("777.5")}
            ),
        )
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def ed25519_get(session: aiohttp.ClientSession, sim: SimServer, path: str) -> object:
    payload = urlencode({"timestamp": time.time_ns() // 1_000_000})
    signature = base64.b64encode(PRIVATE.sign(payload.encode())).decode()
    url = yarl.URL(
        f"{sim.base_url}{path}?{payload}&signature={quote(signature, safe='')}", encoded=True
    )
    async with session.get(url, headers={"X-MBX-APIKEY": "bob-key"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_ed25519_account_over_http(sim: SimServer, session: aiohttp.ClientSession) -> None:
    balances = await ed25519_get(session, sim, "/fapi/v2/balance")
    assert isinstance(balances, list)
    usdt = next(b for b in balances if b["asset"] == "USDT")
    assert Decimal(usdt["balance"]) == Decimal("777.5")


async def test_accounts_are_isolated(sim: SimServer, session: aiohttp.ClientSession) -> None:
    alice = VenueClient(session, sim.base_url, "alice-key", "alice-secret")
    placed = await alice.call("POST", "/fapi/v1/order", limit_order(), signed=True)
    assert placed.status == 200
    orders = await ed25519_get(session, sim, "/fapi/v1/openOrders")
    assert orders == []
    wrong = VenueClient(session, sim.base_url, "alice-key", "bob-secret")
    assert (await wrong.call("GET", "/fapi/v2/account", signed=True)).code == -1022
    assert sim.api_key == "alice-key"
