"""Security at the daemon's edges: CURVE with a client allow-list (and its requirement
off loopback), the ops HTTP token and loopback default, and secrets kept out of every
output a run produces. Loose secrets files and the systemd unit's hardening are tested
in tests/config and tests/ops (test_ops_unit_file.py)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth

from oexec.app import Daemon
from oexec.client import AsyncClient, Client, ClientError, Subscriber
from oexec.client.curve import CurveKeys
from oexec.client.errors import ClientTimeoutError
from oexec.config import Config, FrontConfig, StoreConfig
from oexec.config_loader import ConfigError, load_config
from oexec.front.curve import is_loopback

from ..e2e.conftest import DaemonFactory
from .procs import DaemonProc, SimHost, http_json, http_status
from .wireprobe import WireProbe


@pytest.fixture
def store_kind() -> str:
    return "sqlite"  # the store plays no part here


# --- CURVE required off loopback ---------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:5555", True),
        ("tcp://127.0.0.1:*", True),
        ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True),
        ("ipc:///run/oexec.sock", True),
        ("inproc://x", True),
        ("tcp://*:5555", False),
        ("tcp://0.0.0.0:5555", False),
        ("tcp://[::]:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://10.1.2.3:5555", False),
        ("tcp://oexec.example.com:5555", False),
    ],
)
def test_is_loopback(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def _load(front: dict[str, Any], events: dict[str, Any] | None = None) -> Config:
    return load_config(env={}, overrides={"front": front, "events": events or {}})


def test_off_loopback_without_curve_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        _load({"listen": ["tcp://0.0.0.0:5555"]}, {"publish": ["tcp://*:5556"]})
    text = str(caught.value)
    assert "'tcp://0.0.0.0:5555' is not loopback" in text
    assert "'tcp://*:5556' is not loopback" in text
    with pytest.raises(ConfigError):  # a key without an allow-list lets anyone in
        _load({"listen": ["tcp://*:5555"], "curve_secret_key_file": "server.key_secret"})


def test_off_loopback_with_curve_or_explicit_opt_out_loads() -> None:
    curve = {"curve_secret_key_file": "s.key_secret", "curve_allowed_clients_dir": "allowed"}
    assert _load({"listen": ["tcp://*:5555"], **curve}).front.listen == ("tcp://*:5555",)
    opt_out = _load({"listen": ["tcp://*:5555"], "allow_plaintext_remote": True})
    assert opt_out.front.allow_plaintext_remote
    assert _load({}).front.listen == ("tcp://127.0.0.1:5555",)  # the default needs nothing
    assert _load({}).http.host == "127.0.0.1"


# --- CURVE on a running daemon -----------------------------------------------------------
@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Any]:
    server_pub, server_secret = zmq.auth.create_certificates(str(tmp_path), "server")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    strangers = tmp_path / "strangers"
    strangers.mkdir()
    alice_pub, alice = zmq.auth.create_certificates(str(tmp_path), "alice")
    (allowed / "alice.key").write_text(Path(alice_pub).read_text())  # public half only
    _, mallory = zmq.auth.create_certificates(str(strangers), "mallory")
    return {
        "front": FrontConfig(
            listen=("tcp://127.0.0.1:*",),
            curve_secret_key_file=server_secret,
            curve_allowed_clients_dir=str(allowed),
        ),
        "alice": CurveKeys.load(server_pub, alice),
        "mallory": CurveKeys.load(server_pub, mallory),
    }


async def test_curve_admits_the_allow_list_only(
    make_daemon: DaemonFactory,
    certs: dict[str, Any],
) -> None:
    daemon = await make_daemon(front=certs["front"])
    endpoint, events = daemon.front.endpoints[0], daemon.events.endpoints[0]
    alice = AsyncClient(endpoint, curve=certs["alice"], timeout_s=3.0)
    watcher = Subscriber(events, curve=certs["alice"])
    snoop = Subscriber(events, curve=certs["mallory"])
    plain_snoop = Subscriber(events)
    try:
        assert (await alice.health())["status"] == "healthy"
        for keys in (certs["mallory"], None):  # unknown key, or no CURVE at all
            async with AsyncClient(endpoint, curve=keys, timeout_s=0.5, retries=0) as other:
                with pytest.raises(ClientTimeoutError):
                    await other.health()
        await asyncio.sleep(0.3)  # let the subscribers' handshakes finish (or fail)
        order = await alice.place_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.010", price="49000.0",
            time_in_force="GTC", request_id=f"curve-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        event = await asyncio.wait_for(watcher.__anext__(), 5)
        assert event.order is not None and event.order.id == order.id
        for refused in (snoop, plain_snoop):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(refused.__anext__(), 0.5)
    finally:
        await alice.close()
        for sub in (watcher, snoop, plain_snoop):
            sub.close()


async def test_two_curve_daemons_in_one_process_keep_their_own_lists(
    make_daemon: DaemonFactory,
    certs: dict[str, Any],
    tmp_path: Path,
) -> None:
    """One ZAP handler per context is shared; each daemon's allow-list is its own."""
    first = await make_daemon(front=certs["front"])
    empty = tmp_path / "nobody"
    empty.mkdir()
    front = FrontConfig(
        listen=("tcp://127.0.0.1:*",),
        curve_secret_key_file=certs["front"].curve_secret_key_file,
        curve_allowed_clients_dir=str(empty),
    )
    # its own SQLite file: a daemon owns the file it claims in (oexec/store/claim_log.py)
    second: Daemon = await make_daemon(
        front=front, store=StoreConfig(sqlite_path=str(tmp_path / "second.sqlite"))
    )
    async with AsyncClient(first.front.endpoints[0], curve=certs["alice"]) as alice:
        assert (await alice.health())["status"]
    async with AsyncClient(
        second.front.endpoints[0], curve=certs["alice"], timeout_s=0.5, retries=0
    ) as alice:
        with pytest.raises(ClientTimeoutError):
            await alice.health()


# --- secrets never in any output ---------------------------------------------------------
SECRET = f"s3cr3t-{uuid.uuid4().hex}"
API_KEY = f"key-{uuid.uuid4().hex}"
TOKEN = f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def secret_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHost]:
    sim = SimHost(tmp_path_factory.mktemp("secrets"), account=(API_KEY, SECRET))
    sim.start()
    yield sim
    sim.stop()


def _get(url: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return bytes(r.read())
    except urllib.error.HTTPError as exc:
        return bytes(exc.read())


async def _exercise(daemon: DaemonProc, venue: SimHost, outputs: list[bytes]) -> None:
    """Good and bad requests of every kind, a fill, a venue refusal, traces, events."""
    probe = WireProbe(daemon.endpoint)
    for frames in ([b"\xc1junk"], [b"\x90"], [b"", b"a", b"b"]):
        probe.send_raw(frames)
        outputs.extend(probe.recv_raw())
    probe.close()
    sub = Subscriber(daemon.events_endpoint)
    await asyncio.sleep(0.3)
    client = Client(daemon.endpoint, timeout_s=5.0, retries=0)
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "time_in_force": "GTC"}
    attempts: list[dict[str, Any]] = [
        {**base, "quantity": "0.010", "price": "49000.0", "request_id": "sec-ok"},
        {**base, "quantity": "0.010", "price": "1", "request_id": "sec-band"},  # pre-trade
        {**base, "quantity": "900", "price": "49000.0", "request_id": "sec-margin"},  # venue
        {**base, "quantity": "0.010", "price": "51000.0", "request_id": "sec-fill"},
    ]
    for fields in attempts:
        try:
            outputs.append(repr(await asyncio.to_thread(client.place_order, **fields)).encode())
        except ClientError as exc:
            outputs.append(f"{exc.code} {exc.message} {exc.details}".encode())
    await asyncio.to_thread(http_json, "POST", f"{venue.base_url}/_sim/price",
                            {"symbol": "BTCUSDT", "price": "48000"})  # fmt: skip
    for request_id in ("sec-ok", "sec-fill", "sec-margin", "nope"):
        for call in (client.cancel_order, client.get_order):
            try:
                outputs.append(repr(await asyncio.to_thread(call, request_id=request_id)).encode())
            except ClientError as exc:
                outputs.append(f"{exc.code} {exc.message} {exc.details}".encode())
    client.close()
    for _ in range(200):
        try:
            event = await asyncio.wait_for(sub.__anext__(), 0.5)
        except TimeoutError:
            break
        outputs.append(repr(event).encode())
    sub.close()
    for path in ("/metrics", "/health", "/ready", "/dashboard"):
        outputs.append(await asyncio.to_thread(_get, daemon.http_url + path, TOKEN))


async def test_no_secret_in_any_output(secret_sim: SimHost, tmp_path: Path) -> None:
    env = {"OEXEC_HTTP_BEARER_TOKEN": TOKEN, "OEXEC_API_KEY": API_KEY, "OEXEC_API_SECRET": SECRET}
    daemon = DaemonProc(tmp_path, secret_sim, extra_env=env, log_level="DEBUG")
    wrong = DaemonProc(  # signs with a wrong secret: every signed call fails (-1022)
        tmp_path,
        secret_sim,
        extra_env={**env, "OEXEC_API_SECRET": "WRONG-" + SECRET},
        log_level="DEBUG",
        name="wrong",
    )
    outputs: list[bytes] = []
    daemon.start()
    wrong.start()
    try:
        assert http_status(daemon.http_url + "/metrics") == 401  # token required
        assert http_status(daemon.http_url + "/ready") == 200  # probes stay open
        await _exercise(daemon, secret_sim, outputs)
        await _exercise(wrong, secret_sim, outputs)
    finally:
        daemon.stop()
        wrong.stop()
    assert any(b"sec-fill" in o for o in outputs) and any(b"VENUE_" in o for o in outputs)
    haystacks = _written(tmp_path)
    assert {"daemon.log", "wrong.log", "daemon.sqlite", "journal"} <= set(haystacks)
    haystacks["replies, events, /metrics, /health"] = b"\n".join(outputs)
    for secret in (SECRET, TOKEN, API_KEY):
        for name, data in haystacks.items():
            assert secret.encode() not in data, f"{secret[:4]}… found in {name}"
            assert re.search(re.escape(secret[-16:]).encode(), data) is None, name


def _written(workdir: Path) -> dict[str, bytes]:
    """Every file the daemons wrote (logs, databases) and every row of their stores."""
    files = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    rows = _journal_rows(workdir / "daemon.sqlite") + _journal_rows(workdir / "wrong.sqlite")
    if rows:
        files["journal"] = b"\n".join(rows)
    return files


def _journal_rows(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows: list[bytes] = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                rows.append(repr(row).encode())
        return rows
