"""deploy/: Dockerfile, compose.yaml and k8s.yaml point at the real thing.

No container engine runs here, so the files are checked against the code they wrap:
the command is the installed console script and a real ``oexec run`` sub-command, the
environment and config they set load through the real config loader (unknown keys and
unsafe endpoints are errors there), the ports they expose are the ports that config
binds, the probes hit /health and /ready, and the Docker healthcheck command itself is
run against a live daemon.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from oexec.app import Daemon
from oexec.cli.main import build_parser
from oexec.config import Config
from oexec.config_loader import load_config
from oexec.sim.app import SimServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CREDENTIALS = {"OEXEC_API_KEY": "k", "OEXEC_API_SECRET": "s"}
STOP_TIMEOUT_S = 30  # systemd/oexec.service TimeoutStopSec


# --- Dockerfile -------------------------------------------------------------------------
def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def docker() -> list[tuple[str, str]]:
    return instructions(DEPLOY / "Dockerfile")


def final_stage() -> list[tuple[str, str]]:
    steps = docker()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def one(word: str) -> str:
    found = [args for w, args in final_stage() if w == word]
    assert len(found) == 1, (word, found)
    return found[0]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return env


def docker_argv() -> list[str]:
    entry: list[str] = yaml.safe_load(one("ENTRYPOINT"))  # exec form: a JSON array
    cmd: list[str] = yaml.safe_load(one("CMD"))
    return entry + cmd


def config_of(argv: list[str], env: dict[str, str], files: dict[str, Path]) -> Config:
    """What ``argv`` (an ``oexec run`` command line) loads, ``files`` mapping image paths."""
    assert argv[0] == "oexec"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and args.func.__module__ == "oexec.cli.run"
    path = files[args.config] if args.config else None
    return load_config(path, env={**env, **CREDENTIALS})


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def exposed_ports(config: Config) -> set[int]:
    endpoints = [*config.front.listen, *config.events.publish]
    return {port_of(e) for e in endpoints} | {config.http.port}


IMAGE_CONFIG = "/etc/oexec/oexec.toml"


def test_dockerfile_slim_non_root_and_runs_the_real_command() -> None:
    froms = [args for word, args in docker() if word == "FROM"]
    assert froms and all(re.match(r"python:3\.1[1-9]-slim\b", f) for f in froms)
    user = one("USER").split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["oexec"] == "oexec.cli.main:main"
    assert one("STOPSIGNAL") == "SIGTERM"
    for word, args in docker():  # every COPY from the build context exists
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    copies = [args.split() for word, args in final_stage() if word == "COPY"]
    assert ["etc/oexec.toml", IMAGE_CONFIG] in copies

    config = config_of(docker_argv(), docker_env(), {IMAGE_CONFIG: ROOT / "etc/oexec.toml"})
    assert config.http.host == "0.0.0.0" and config.front.listen == ("tcp://0.0.0.0:5555",)
    assert {int(p) for p in one("EXPOSE").split()} == exposed_ports(config)
    health = one("HEALTHCHECK")
    assert f"http://127.0.0.1:{config.http.port}/health" in health
    assert Path(config.store.sqlite_path).is_relative_to(one("WORKDIR"))


def healthcheck_argv(port: int) -> list[str]:
    argv: list[str] = yaml.safe_load(one("HEALTHCHECK").split("CMD", 1)[1])
    return [sys.executable if a == "python" else a.replace(":8080/", f":{port}/") for a in argv]


@pytest.fixture
def store_kind() -> str:
    return "sqlite"


async def run(argv: list[str]) -> int:
    proc = await asyncio.create_subprocess_exec(*argv)
    return await asyncio.wait_for(proc.wait(), 10)


async def test_docker_healthcheck_command_follows_health(daemon: Daemon, sim: SimServer) -> None:
    argv = healthcheck_argv(int(daemon.http_url.rsplit(":", 1)[1]))
    assert await run(argv) == 0
    await sim.stop()  # the venue goes away: /health 503, the container turns unhealthy
    assert await run(argv) != 0


# --- compose ------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_runs_the_image_with_redis() -> None:
    services = compose()["services"]
    assert {"oexec", "redis"} <= set(services)  # the rest: tests/operations/test_compose.py
    daemon = services["oexec"]
    build = daemon["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]) == DEPLOY / "Dockerfile"
    assert daemon["depends_on"]["redis"]["condition"] == "service_healthy"
    assert daemon["env_file"] == ["secrets.env"]
    assert "deploy/secrets.env" in (ROOT / ".gitignore").read_text().split()
    env = {**docker_env(), **{k: str(v) for k, v in daemon["environment"].items()}}
    argv = [*yaml.safe_load(one("ENTRYPOINT")), *daemon["command"]]
    config = config_of(argv, env, {IMAGE_CONFIG: ROOT / "etc/oexec.toml"})
    assert config.store.url.startswith("redis://redis:")  # the compose service name
    published = {}
    for mapping in daemon["ports"]:
        host_ip, host_port, container_port = mapping.split(":")
        assert host_ip == "127.0.0.1"  # plaintext ZeroMQ: host loopback only
        published[int(container_port)] = int(host_port)
    assert set(published) == exposed_ports(config)
    assert daemon["stop_signal"] == "SIGTERM"
    assert daemon["stop_grace_period"] == f"{STOP_TIMEOUT_S}s"
    assert daemon["read_only"] is True and daemon["cap_drop"] == ["ALL"]


# --- Kubernetes ---------------------------------------------------------------------------
def k8s() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())}


def test_k8s_probes_ports_and_command(tmp_path: Path) -> None:
    docs = k8s()
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "NetworkPolicy"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    argv = container["command"] + container["args"]
    assert argv == docker_argv()  # the image's own entry point, spelled out
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    (config_key,) = docs["ConfigMap"]["data"]
    assert f"{mount['mountPath']}/{config_key}" == IMAGE_CONFIG
    config_file = tmp_path / config_key
    config_file.write_text(docs["ConfigMap"]["data"][config_key])
    config = config_of(argv, docker_env(), {IMAGE_CONFIG: config_file})
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == exposed_ports(config)
    assert ports["http"] == config.http.port
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/ready"
    assert {p["port"] for p in probes.values()} == {"http"}
    assert pod["terminationGracePeriodSeconds"] >= STOP_TIMEOUT_S
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == one("USER").split(":")[0]
    assert container["envFrom"][0]["secretRef"]["name"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service_targets = {p["targetPort"] for p in docs["Service"]["spec"]["ports"]}
    assert service_targets <= set(ports)
