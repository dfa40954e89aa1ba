"""The compose stack's monitoring against a real daemon (tests/operations/test_compose.py
checks the files themselves).

Every metric the provisioned dashboard and the alert rules query is on a real ``oexec
run``'s ``/metrics`` (against ``oexec sim``), fetched the way the stack's Prometheus
fetches it; and, where Debian's ``prometheus`` is installed, a real Prometheus runs the
stack's config (paths mapped as compose mounts them, the target pointed at the daemon):
the job is up, the daemon's series arrive, the rules load, every dashboard query runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from oexec.sim.app import SimServer

from ..ops.test_ops_dashboards import metric_names
from ..ports import free_port
from .proc import OexecRun
from .test_compose import ALERTS, DASHBOARD, DEPLOY, mounted, services


def exposed_families(text: str) -> dict[str, str]:
    """``# TYPE`` lines of a /metrics body: family name -> type."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def family_of(sample: str, families: dict[str, str]) -> tuple[str, str] | None:
    """(family, type) a series name belongs to, or None when /metrics has no such series.

    The text format types a counter under its ``_total`` name and a histogram under its
    base name (series ``_bucket``, ``_sum``, ``_count``).
    """
    kind = families.get(sample)
    if kind == "gauge" or (kind == "counter" and sample.endswith("_total")):
        return sample, kind
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and families.get(base) == "histogram":
            return base, "histogram"
    return None


def queried_names() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    exprs += [rule["expr"] for group in groups for rule in group["rules"]]
    return {name for expr in exprs for name in metric_names(expr)}


@pytest.fixture
def store_kind() -> str:
    return "sqlite"


async def test_dashboard_and_alert_metrics_are_on_a_real_daemons_metrics(
    sim: SimServer, tmp_path: Path
) -> None:
    """``oexec run`` against ``oexec sim``; Prometheus's request; every queried series."""
    daemon = OexecRun(sim, tmp_path)
    daemon.spawn()
    try:
        await daemon.wait_ready()
        prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
        path = prometheus["scrape_configs"][0]["metrics_path"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.get(daemon.http_url + path) as response:
                assert response.status == 200
                assert response.content_type == "text/plain"  # Prometheus text format
                text = await response.text()
    finally:
        await daemon.terminate()
    families = exposed_families(text)
    assert "dependency_up" in families and "open_orders" in families
    names = queried_names()
    assert len(names) >= 20
    missing = {name for name in names if family_of(name, families) is None}
    assert not missing, missing


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (scripts/test)")
async def test_a_real_prometheus_scrapes_a_real_daemon_with_the_compose_config(
    sim: SimServer, tmp_path: Path
) -> None:
    """The stack's Prometheus config, paths mapped as compose mounts them and the target
    pointed at a local ``oexec run``: the job is up, the daemon's series arrive, the
    alert rules load, and every dashboard query is valid PromQL that Prometheus runs."""
    assert PROMETHEUS is not None
    service = services()["prometheus"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in service["command"])
    config = yaml.safe_load(mounted(service, flags["config.file"]).read_text())
    config["rule_files"] = [str(mounted(service, path)) for path in config["rule_files"]]
    daemon = OexecRun(sim, tmp_path)
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [
        daemon.http_url.removeprefix("http://")
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    web = f"127.0.0.1:{free_port()}"
    daemon.spawn()
    prometheus = await asyncio.create_subprocess_exec(
        PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={web}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await daemon.wait_ready()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def query(expr: str) -> dict[str, Any]:
                async with http.get(f"http://{web}/api/v1/query", params={"query": expr}) as r:
                    body: dict[str, Any] = await r.json()
                    return body

            async with asyncio.timeout(30):  # first scrape within one scrape interval
                while True:  # a child process: nothing to await but its answers
                    try:
                        up = await query('up{job="oexec"}')
                        if up["data"]["result"]:
                            break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.3)
            assert up["data"]["result"][0]["value"][1] == "1"
            venue = await query('dependency_up{name="venue"}')
            assert [r["value"][1] for r in venue["data"]["result"]] == ["1"]
            async with http.get(f"http://{web}/api/v1/rules") as response:
                (group,) = (await response.json())["data"]["groups"]
            alerts = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
            assert [r["name"] for r in group["rules"]] == [a["alert"] for a in alerts]
            dashboard = json.loads(DASHBOARD.read_text())
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    answer = await query(target["expr"])
                    assert answer["status"] == "success", (target["expr"], answer)
    finally:
        prometheus.terminate()
        await asyncio.wait_for(prometheus.wait(), 10)
        await daemon.terminate()


def test_family_of_reads_suffixes_by_type() -> None:
    families = {"a_seconds": "histogram", "b_total": "counter", "c": "gauge"}
    assert family_of("a_seconds_bucket", families) == ("a_seconds", "histogram")
    assert family_of("a_seconds", families) is None  # a histogram is queried by its series
    assert family_of("b_total", families) == ("b_total", "counter")
    assert family_of("c", families) == ("c", "gauge")
    assert family_of("b", families) is None
    assert family_of("c_total", families) is None
