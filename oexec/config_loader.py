"""Load the config tree: TOML file, then ``OEXEC_*`` environment, then CLI flags.

Every name is derived from the records in oexec/config.py, so a setting is declared
once: section ``venue`` key ``base_url`` is ``[venue] base_url`` in TOML,
``OEXEC_VENUE_BASE_URL`` in the environment, and (for the most used ones) a flag of
``oexec run``. ``OEXEC_API_KEY`` / ``OEXEC_API_SECRET`` are shortcuts for the venue
credentials. ``OEXEC_SECRETS_FILE`` (or ``--secrets-file``) names a ``KEY=VALUE`` file
read like the environment; it is refused when group- or world-readable.

All problems are collected and reported together as one ConfigError, path-qualified.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import attrs

from oexec.config import Config
from oexec.errors import ErrorCode, OexecError
from oexec.front.curve import is_loopback

ENV_PREFIX = "OEXEC_"
SHORTCUTS = {
    "OEXEC_API_KEY": ("venue", "api_key"),
    "OEXEC_API_SECRET": ("venue", "api_secret"),
}


class ConfigError(OexecError):
    code = ErrorCode.BAD_REQUEST

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def _section_types() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in attrs.fields(Config)}


def _field_types(section_cls: type) -> dict[str, Any]:
    hints = get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in attrs.fields(section_cls)}


def _coerce(value: Any, typ: Any, path: str, problems: list[str]) -> Any:
    """Coerce a TOML or environment value to the declared field type."""
    origin = get_origin(typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is Decimal:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return number
    elif typ is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return tuple(i.strip() for i in items if i.strip())
    elif origin is dict and isinstance(value, dict):
        return {
            str(k): {str(kk): str(vv) for kk, vv in v.items()}
            for k, v in value.items()
            if isinstance(v, dict)
        }
    problems.append(f"{path}: expected {_type_name(typ)}, got {value!r}")
    return None


def _type_name(typ: Any) -> str:
    if get_origin(typ) is tuple:
        return "a list of strings"
    if get_origin(typ) is dict:
        return "a table"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        typ, "a decimal string" if typ is Decimal else str(typ)
    )


def read_secrets_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; refuses a file others can read (secrets must stay private)."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except OSError as exc:
        raise ConfigError([f"secrets file {path}: {exc.strerror}"]) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            [f"secrets file {path}: permissions {oct(mode & 0o777)} are too open; chmod 600 it"]
        )
    values: dict[str, str] = {}
    for line in file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the Config: defaults < TOML file < environment < ``overrides`` (CLI flags)."""
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    raw: dict[str, dict[str, Any]] = {}
    if path:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError([f"{path}: {exc.strerror}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: {exc}"]) from None
        for section, table in data.items():
            if not isinstance(table, dict):
                problems.append(f"{section}: expected a table")
                continue
            raw[section] = dict(table)
    secrets_path = env.get("OEXEC_SECRETS_FILE")
    if secrets_path:
        env = {**read_secrets_file(secrets_path), **env}
    sections = _section_types()
    for section, section_cls in sections.items():
        for name in _field_types(section_cls):
            key = f"{ENV_PREFIX}{section}_{name}".upper()
            if key in env:
                raw.setdefault(section, {})[name] = env[key]
    for key, (section, name) in SHORTCUTS.items():
        if env.get(key):
            raw.setdefault(section, {})[name] = env[key]
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            if value is not None:
                raw.setdefault(section, {})[name] = value
    built: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in sections:
            problems.append(f"{section}: unknown section (known: {', '.join(sections)})")
            continue
        types = _field_types(sections[section])
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if name not in types:
                problems.append(f"{section}.{name}: unknown key")
                continue
            kwargs[name] = _coerce(value, types[name], f"{section}.{name}", problems)
        if not problems:
            built[section] = sections[section](**kwargs)
    if problems:
        raise ConfigError(problems)
    config = Config(**built)
    problems.extend(validate_config(config))
    if problems:
        raise ConfigError(problems)
    return config


def _plaintext_remote(config: Config) -> list[str]:
    """Off loopback, requests and events need CURVE with a client allow-list."""
    front = config.front
    if front.allow_plaintext_remote or (
        front.curve_secret_key_file and front.curve_allowed_clients_dir
    ):
        return []
    remote = [e for e in (*front.listen, *config.events.publish) if not is_loopback(e)]
    return [
        f"endpoint {endpoint!r} is not loopback: set front.curve_secret_key_file and "
        "front.curve_allowed_clients_dir (or front.allow_plaintext_remote = true)"
        for endpoint in remote
    ]


def validate_config(config: Config) -> list[str]:
    """Semantic checks the types cannot express."""
    problems: list[str] = []
    if config.front.workers < 1:
        problems.append("front.workers: must be >= 1")
    if config.front.queue_size < 1:
        problems.append("front.queue_size: must be >= 1")
    if config.front.queue_wait_ms < 0:
        problems.append("front.queue_wait_ms: must be >= 0 (0: off)")
    if config.front.max_frame_bytes < 1024:
        problems.append("front.max_frame_bytes: must be >= 1024")
    for endpoint in (*config.front.listen, *config.events.publish):
        if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
            problems.append(f"endpoint {endpoint!r}: must start with tcp://, ipc:// or inproc://")
    problems.extend(_plaintext_remote(config))
    if not config.front.listen:
        problems.append("front.listen: at least one endpoint")
    if config.store.durability not in ("fsync", "process"):
        problems.append("store.durability: must be 'fsync' or 'process'")
    url = config.store.url
    if url and not url.startswith(("redis://", "rediss://", "unix://", "sqlite://")):
        problems.append("store.url: must be redis://…, rediss://…, unix://… or sqlite:///path")
    if not config.venue.base_url.startswith(("http://", "https://")):
        problems.append("venue.base_url: must be an http(s) URL")
    if config.venue.key_type not in ("hmac", "ed25519"):
        problems.append("venue.key_type: must be 'hmac' or 'ed25519'")
    if config.venue.order_transport not in ("rest", "ws"):
        problems.append("venue.order_transport: must be 'rest' or 'ws'")
    if config.venue.ws_api_url and not config.venue.ws_api_url.startswith(("ws://", "wss://")):
        problems.append("venue.ws_api_url: must be a ws(s):// URL")
    if not 0 < config.venue.recv_window_ms <= 60_000:
        problems.append("venue.recv_window_ms: must be in 1..60000")
    if config.venue.timeout_s <= 0:
        problems.append("venue.timeout_s: must be > 0")
    if not Decimal(0) < config.limits.safety_margin <= Decimal(1):
        problems.append("limits.safety_margin: must be in (0, 1]")
    if config.breaker.failure_threshold < 1:
        problems.append("breaker.failure_threshold: must be >= 1")
    if not 1 <= config.http.port <= 65535 and config.http.port != 0:
        problems.append("http.port: must be a TCP port")
    if config.http.health_refresh_s <= 0:
        problems.append("http.health_refresh_s: must be > 0")
    if config.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append("logging.level: DEBUG, INFO, WARNING or ERROR")
    return problems
