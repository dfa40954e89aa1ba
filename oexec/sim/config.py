"""Simulator configuration: frozen attrs records loaded from a TOML file.

One record tree describes a whole simulated venue: accounts (HMAC secret or Ed25519
public key, starting balances), which symbols exist and where their prices start, the
price-path tick, the seed, the venue's rate limits and the faults active from start.
Unknown keys are errors, so a typo never silently runs a different venue. Secrets are
kept out of ``repr``. See docs/sim.md for a commented example.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

#: The documented demo account used when none is configured. Not a secret: it only
#: opens the local simulator, and the CLI prints it so a user can paste it into a client.
DEMO_API_KEY = "oexec-sim-key"
DEMO_API_SECRET = "oexec-sim-secret"
DEMO_ACCOUNT = "demo"
DEFAULT_BALANCES: dict[str, Decimal] = {"USDT": Decimal("100000")}

FAULT_KINDS = frozenset(
    {
        "latency",
        "error_5xx",
        "timeout_after_accept",
        "reset_after_accept",
        "stream_drop",
        "stream_delay",
        "stream_reorder",
        "stream_disconnect",
        "clock_skew",
        "read_after_write_lag",
        "listen_key_expiry",
    }
)


class SimConfigError(ValueError):
    """A configuration file or flag the simulator cannot run with (CLI exit code 2)."""


@attrs.frozen
class AccountConfig:
    """One venue account. Exactly one of ``secret`` (HMAC) or ``ed25519_public_key``."""

    key: str
    secret: str = attrs.field(default="", repr=False)
    ed25519_public_key: str = ""  # PEM (SubjectPublicKeyInfo); signatures are base64
    name: str = ""  # account id inside the engine; defaults to the key
    balances: dict[str, Decimal] = attrs.field(factory=lambda: dict(DEFAULT_BALANCES))

    @property
    def account_id(self) -> str:
        return self.name or self.key


@attrs.frozen
class RateLimitConfig:
    """The venue's limiters (§E defaults). ``enabled = false`` lifts them all (bench)."""

    enabled: bool = True
    weight_per_minute: int = 2400  # REQUEST_WEIGHT per IP
    orders_per_10s: int = 300  # ORDERS per account
    orders_per_minute: int = 1200
    ban_after: int = 3  # requests sent while weight-limited (after a -1003 429) before a 418
    ban_initial_s: int = 120  # first ban: 2 minutes; doubles per repeat offence
    ban_max_s: int = 3 * 86_400  # capped at 3 days
    # Whether new orders sent after a -1015 (the per-account order limit) count towards an
    # IP ban. Undocumented on the venue (its 418 rule is stated under IP limits), so off.
    orders_429_strikes: bool = False


@attrs.frozen
class FaultConfig:
    """A fault rule: fires with ``probability`` per eligible event (or on every
    ``every_n``-th one, with no randomness), ``count`` times at most."""

    kind: str
    probability: float = 1.0
    count: int | None = None  # None: unlimited
    path: str | None = None  # None: every path; else exact path or fnmatch pattern
    params: dict[str, Any] = attrs.field(factory=dict)
    every_n: int | None = None  # fire on eligible events n, 2n, ... instead of drawing


@attrs.frozen
class SimConfig:
    """The whole simulated venue."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: OS-assigned (embedded use); the CLI defaults to 8765
    seed: int = 0
    tick_interval_ms: int = 0  # price-path step period; 0 = prices move only via /_sim/price
    listen_key_ttl_s: int = 3600  # §G.1: 60 minutes without keepalive
    # Funding is settled every this many ms of simulated (wall) time, at multiples of it
    # since the epoch (8 h: 00:00, 08:00, 16:00 UTC, as on the venue), at ``funding_rate``.
    funding_interval_ms: int = 8 * 3_600_000
    funding_rate: Decimal = Decimal("0.0001")
    accounts: tuple[AccountConfig, ...] = ()
    # symbol -> overrides of the engine's SymbolSpec fields (e.g. {"price": "65000"});
    # empty: the engine's default symbols. Non-empty: exactly these symbols.
    symbols: dict[str, dict[str, str]] = attrs.field(factory=dict)
    rate_limits: RateLimitConfig = RateLimitConfig()
    faults: tuple[FaultConfig, ...] = ()

    def with_accounts(self) -> SimConfig:
        """This config, with the documented demo account when none is configured."""
        if self.accounts:
            return self
        demo = AccountConfig(key=DEMO_API_KEY, secret=DEMO_API_SECRET, name=DEMO_ACCOUNT)
        return attrs.evolve(self, accounts=(demo,))


def _structure_decimal(value: object, _: type) -> Decimal:
    if isinstance(value, float | bool):
        raise SimConfigError(f"decimal values must be strings or integers, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise SimConfigError(f"not a decimal: {value!r}") from None
    if not number.is_finite():
        raise SimConfigError(f"not a finite decimal: {value!r}")
    return number


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(Decimal, _structure_decimal)


def validate(config: SimConfig) -> SimConfig:
    """Check cross-field rules; return the config unchanged or raise SimConfigError."""
    keys = [a.key for a in config.accounts]
    if len(set(keys)) != len(keys):
        raise SimConfigError("account keys must be unique")
    ids = [a.account_id for a in config.accounts]
    if len(set(ids)) != len(ids):
        raise SimConfigError("account names must be unique")
    for account in config.accounts:
        if not account.key:
            raise SimConfigError("an account needs a key")
        if bool(account.secret) == bool(account.ed25519_public_key):
            raise SimConfigError(
                f"account {account.account_id!r}: give exactly one of secret or ed25519_public_key"
            )
        if account.ed25519_public_key and not _is_ed25519_pem(account.ed25519_public_key):
            raise SimConfigError(
                f"account {account.account_id!r}: ed25519_public_key is not an Ed25519 PEM key"
            )
    for fault in config.faults:
        check_fault(fault)
    if config.funding_interval_ms < 1000:
        raise SimConfigError("funding_interval_ms must be >= 1000")
    if config.tick_interval_ms < 0 or config.listen_key_ttl_s <= 0:
        raise SimConfigError("tick_interval_ms must be >= 0 and listen_key_ttl_s > 0")
    if not 0 <= config.port <= 65535:
        raise SimConfigError(f"port out of range: {config.port}")
    return config


def _is_ed25519_pem(text: str) -> bool:
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        return False
    return isinstance(key, Ed25519PublicKey)


def check_fault(fault: FaultConfig) -> FaultConfig:
    """Reject unknown kinds and impossible numbers (shared with the control API)."""
    if fault.kind not in FAULT_KINDS:
        raise SimConfigError(f"unknown fault kind {fault.kind!r}; known: {sorted(FAULT_KINDS)}")
    if not 0.0 <= fault.probability <= 1.0:
        raise SimConfigError(f"fault probability must be within [0, 1]: {fault.probability}")
    if fault.count is not None and fault.count < 1:
        raise SimConfigError(f"fault count must be >= 1 when given: {fault.count}")
    if fault.every_n is not None:
        if fault.every_n < 1:
            raise SimConfigError(f"fault every_n must be >= 1 when given: {fault.every_n}")
        if fault.probability != 1.0:
            raise SimConfigError("give a fault either every_n or a probability, not both")
    return fault


def structure_fault(data: object) -> FaultConfig:
    """Build a fault rule from a JSON/TOML mapping; raise SimConfigError when invalid."""
    try:
        fault = _converter.structure(data, FaultConfig)
    except (cattrs.BaseValidationError, TypeError, ValueError, AttributeError) as exc:
        raise SimConfigError(f"invalid fault: {_describe(exc)}") from None
    return check_fault(fault)


def from_mapping(data: dict[str, Any]) -> SimConfig:
    """Build and validate a SimConfig from parsed TOML."""
    try:
        config = _converter.structure(data, SimConfig)
    except SimConfigError:
        raise
    except (cattrs.BaseValidationError, TypeError, ValueError, AttributeError) as exc:
        raise SimConfigError(f"invalid simulator config: {_describe(exc)}") from None
    return validate(config)


def load(path: str | Path) -> SimConfig:
    """Read a TOML config file; every problem becomes a SimConfigError with the file name."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SimConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SimConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return from_mapping(data)
    except SimConfigError as exc:
        raise SimConfigError(f"{path}: {exc}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)
