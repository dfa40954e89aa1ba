"""Read a daemon's /metrics and /health over HTTP, as Prometheus and a probe would."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from oexec.ops.metric_families import FAMILIES
from oexec.ops.metrics import Metrics

#: Parser family name (counters lose ``_total``) -> the name in oexec/ops/metric_families.py
_NAMES = {f.name.removesuffix("_total"): f.name for f in FAMILIES}

Signature = frozenset[tuple[str, tuple[tuple[str, str], ...], float]]


def parse(text: str) -> dict[str, Signature]:
    """Family name -> every sample (name, labels, value), ``_created`` left out."""
    out: dict[str, Signature] = {}
    for family in text_string_to_metric_families(text):
        name = _NAMES.get(family.name, family.name)
        out[name] = frozenset(
            (s.name, tuple(sorted(s.labels.items())), float(s.value))
            for s in family.samples
            if not s.name.endswith("_created")
        )
    return out


def fresh() -> dict[str, Signature]:
    """What a daemon exposes before anything happened (a new registry)."""
    return parse(generate_latest(Metrics(started_at=0).registry).decode())


async def metrics(http: aiohttp.ClientSession, base: str) -> dict[str, Signature]:
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        return parse(await response.text())


def value(sig: Signature, sample: str, **labels: str) -> float:
    """Sum of the samples named ``sample`` whose labels include ``labels``."""
    return sum(v for name, lbl, v in sig if name == sample and labels.items() <= dict(lbl).items())


def moved(before: Mapping[str, Signature], after: Mapping[str, Signature]) -> set[str]:
    return {name for name in after if after[name] != before.get(name, frozenset())}


async def health(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/health") as response:
        return response.status, await response.json()


async def until_health(
    http: aiohttp.ClientSession, base: str, status: int, within_s: float = 15.0
) -> dict[str, Any]:
    """Poll /health until it answers ``status``; returns that body."""
    body: dict[str, Any] = {}
    async with asyncio.timeout(within_s):
        while True:
            code, body = await health(http, base)
            if code == status:
                return body
            await asyncio.sleep(0.2)
