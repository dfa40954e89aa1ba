"""deploy/compose.yaml brings the whole stack up in one command: checked by construction.

No container engine runs here, so each file the stack mounts is read and checked
against what it is wired to: the services, profiles, health checks and loopback-only
ports of the compose file; every bind mount exists; Prometheus scrapes the port the
daemon's own config binds, under the job name the alerts select, and loads the alert
file; Grafana's provisioned data source is the Prometheus service and its dashboard
provider reads the mounted ``etc/grafana-dashboard.json``; the NATS profile's flags
and health check run against a real ``nats-server``. The Kubernetes monitoring
manifest is the render of the same files. The monitoring against a real daemon (its
``/metrics``, a real Prometheus) is in test_compose_live.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import posixpath
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from oexec.config import Config

from ..ports import free_port
from .test_deploy import (
    DEPLOY,
    IMAGE_CONFIG,
    ROOT,
    compose,
    config_of,
    docker,
    docker_env,
    one,
)

STACK = {"oexec", "redis", "prometheus", "grafana", "nats"}
DASHBOARD = ROOT / "etc" / "grafana-dashboard.json"
ALERTS = ROOT / "etc" / "prometheus-alerts.yml"
NATS_SERVER = shutil.which("nats-server")


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def bind_mounts(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path, read-only) for the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            out[target] = ((DEPLOY / source).resolve(), mode == ["ro"])
    return out


def mounted(service: dict[str, Any], container_path: str) -> Path:
    """The host file seen at ``container_path`` (directly or inside a mounted directory)."""
    for target, (host, _) in bind_mounts(service).items():
        if container_path == target:
            return host
        if container_path.startswith(target.rstrip("/") + "/"):
            return host / posixpath.relpath(container_path, target)
    raise AssertionError(f"{container_path} is not mounted")


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port; each must be on the host's loopback."""
    out = {}
    for mapping in service.get("ports", []):
        host_ip, host_port, container_port = mapping.split(":")
        assert host_ip == "127.0.0.1", mapping
        out[int(container_port)] = int(host_port)
    return out


def daemon_config(**env: str) -> Config:
    """What the compose oexec service loads (image env < compose env < ``env``)."""
    service = services()["oexec"]
    compose_env = {k: str(v) for k, v in service["environment"].items()}
    # compose interpolation: ${VAR:-default} takes the default when VAR is unset
    resolved = {
        k: re.sub(r"\$\{\w+:-([^}]*)\}", lambda m: m.group(1), v) for k, v in compose_env.items()
    }
    argv = [*yaml.safe_load(one("ENTRYPOINT")), *service["command"]]
    return config_of(
        argv, {**docker_env(), **resolved, **env}, {IMAGE_CONFIG: ROOT / "etc/oexec.toml"}
    )


def url_port(url: str) -> tuple[str, int]:
    host, port = re.match(r"\w+://([\w.-]+):(\d+)", url).groups()  # type: ignore[union-attr]
    return host, int(port)


# --- the compose file -----------------------------------------------------------------------
def test_stack_services_profiles_health_checks_and_ports() -> None:
    stack = services()
    assert set(stack) == STACK
    assert stack["nats"]["profiles"] == ["nats"]  # JetStream only on request
    assert all("profiles" not in s for name, s in stack.items() if name != "nats")
    for name, service in stack.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in stack, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in stack[dependency], (name, dependency)
    # the daemon's health check is the image's own HEALTHCHECK command
    assert stack["oexec"]["healthcheck"]["test"][1:] == yaml.safe_load(
        one("HEALTHCHECK").split("CMD", 1)[1]
    )
    assert stack["oexec"]["depends_on"]["nats"] == {
        "condition": "service_healthy",
        "required": False,
    }
    host_ports = [port for s in stack.values() for port in published(s).values()]
    assert len(host_ports) == len(set(host_ports))  # nothing fights for a host port
    declared = set(compose()["volumes"])
    named = {
        v.split(":")[0] for s in stack.values() for v in s.get("volumes", []) if v[0] not in "./"
    }
    assert named == declared


def test_every_bind_mount_exists_read_only() -> None:
    mounts = [m for s in services().values() for m in bind_mounts(s).values()]
    assert len(mounts) >= 4
    for host, read_only in mounts:
        assert host.exists(), host
        assert read_only, host  # config goes in read-only; state lives in named volumes


def test_prometheus_scrapes_the_daemon_and_loads_the_alert_rules() -> None:
    stack = services()
    prometheus = stack["prometheus"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in prometheus["command"])
    config_file = mounted(prometheus, flags["config.file"])
    config = yaml.safe_load(config_file.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "oexec"  # OexecDown selects up{job="oexec"}
    assert 'up{job="oexec"}' in ALERTS.read_text()
    assert job["metrics_path"] == "/metrics"
    (static,) = job["static_configs"]
    daemon = daemon_config()
    assert static["targets"] == [f"oexec:{daemon.http.port}"]  # the service name, its port
    assert daemon.http.port in published(stack["oexec"])
    assert daemon.http.host == "0.0.0.0"  # reachable from the Prometheus container
    rules = [mounted(prometheus, path) for path in config["rule_files"]]
    assert rules == [ALERTS.resolve()]
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert all(rule["expr"] for group in groups for rule in group["rules"])
    health = prometheus["healthcheck"]["test"][-1]
    assert url_port(health)[1] in published(prometheus)


def test_grafana_provisions_the_prometheus_source_and_the_dashboard() -> None:
    stack = services()
    grafana = stack["grafana"]
    provisioning = mounted(grafana, "/etc/grafana/provisioning")
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    host, port = url_port(source["url"])
    assert host == "prometheus" and port in published(stack["prometheus"])
    (provider,) = yaml.safe_load((provisioning / "dashboards/oexec.yaml").read_text())["providers"]
    assert provider["type"] == "file"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert posixpath.dirname(home) == provider["options"]["path"].rstrip("/")
    assert mounted(grafana, home) == DASHBOARD.resolve()
    # A provisioned dashboard gets no import dialog: its data source must resolve by
    # itself, through a datasource-type variable (an __inputs placeholder would not).
    dashboard = json.loads(DASHBOARD.read_text())
    assert "__inputs" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    uids = {ref["uid"] for ref in datasource_refs(dashboard)}
    assert uids == {"${DS_PROMETHEUS}"}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == source["type"]


def datasource_refs(node: Any) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_refs(item)


# --- NATS profile ---------------------------------------------------------------------------
def test_nats_profile_is_what_the_daemon_connects_to() -> None:
    assert daemon_config().nats.url == ""  # no profile, no mirror: the daemon starts alone
    nats = services()["nats"]
    documented = re.search(
        r"OEXEC_NATS_URL=(\S+) docker compose", DEPLOY.joinpath("compose.yaml").read_text()
    )
    assert documented is not None
    config = daemon_config(OEXEC_NATS_URL=documented.group(1))
    host, port = url_port(config.nats.url)
    assert host == "nats" and port in published(nats)
    # the image carries nats-py (the optional [nats] extra)
    installs = [args for word, args in docker() if word == "RUN" and "pip install" in args]
    assert any('".[nats]"' in args for args in installs), installs


@pytest.mark.skipif(NATS_SERVER is None, reason="nats-server not installed (scripts/test)")
async def test_nats_service_flags_and_health_check_on_a_real_server(tmp_path: Path) -> None:
    """The compose command's flags start a JetStream server whose health URL answers 200."""
    assert NATS_SERVER is not None
    nats = services()["nats"]
    argv = list(nats["command"])
    assert argv[0] == "nats-server"
    client_port, http_port = free_port(), free_port()
    argv[argv.index("--store_dir") + 1] = str(tmp_path)
    argv[argv.index("--http_port") + 1] = str(http_port)
    health_url = nats["healthcheck"]["test"][-1]
    assert url_port(health_url)[1] == 8222 and "js-enabled-only" in health_url
    proc = await asyncio.create_subprocess_exec(
        NATS_SERVER, *argv[1:], "-a", "127.0.0.1", "-p", str(client_port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = health_url.replace(":8222/", f":{http_port}/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            async with asyncio.timeout(15):
                while True:  # a child process: nothing to await but its port
                    try:
                        async with http.get(url) as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            async with http.get(url.split("?")[0].replace("healthz", "jsz")) as response:
                assert (await response.json())["config"]["store_dir"].startswith(str(tmp_path))
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


# --- Kubernetes ---------------------------------------------------------------------------
def render_k8s_monitoring() -> str:
    spec = importlib.util.spec_from_file_location("render", DEPLOY / "render_k8s_monitoring.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: str = module.render()
    return rendered


def test_k8s_monitoring_carries_the_same_scrape_config_alerts_and_dashboard() -> None:
    text = (DEPLOY / "k8s-monitoring.yaml").read_text()
    assert text == render_k8s_monitoring(), "run: python deploy/render_k8s_monitoring.py"
    maps = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(text)}
    scrape = yaml.safe_load(maps["oexec-prometheus"]["data"]["prometheus.yml"])
    (target,) = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    workload = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())}
    service = workload["Service"]
    http_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http")
    assert target == f"{service['metadata']['name']}:{http_port}"
    pod = workload["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    container_http = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(container_http)
    assert (
        pod["metadata"]["annotations"]["prometheus.io/path"]
        == scrape["scrape_configs"][0]["metrics_path"]
    )
    assert maps["oexec-prometheus"]["data"]["prometheus-alerts.yml"] == ALERTS.read_text()
    board = maps["oexec-grafana-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["oexec.json"]) == json.loads(DASHBOARD.read_text())
    assert maps["oexec-grafana-datasource"]["metadata"]["labels"]["grafana_datasource"] == "1"
    # Prometheus may only reach the ops port: the NetworkPolicy lets app=prometheus in
    ingress = workload["NetworkPolicy"]["spec"]["ingress"]
    assert any({"port": container_http} in rule["ports"] for rule in ingress)
