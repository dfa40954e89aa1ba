"""The configuration tree, declared once as frozen attrs records.

TOML file sections and keys, ``OEXEC_<SECTION>_<KEY>`` environment overrides and the
documented defaults in etc/oexec.toml all derive from these classes (see
oexec/settings_loader.py). Unknown keys are errors. Secrets are never in ``repr``.
"""

from __future__ import annotations

from decimal import Decimal

import attrs


def _secret() -> str:
    return attrs.field(default="", repr=False)


@attrs.frozen
class FrontConfig:
    """ZeroMQ ROUTER intake."""

    listen: tuple[str, ...] = ("tcp://127.0.0.1:5555",)
    workers: int = 64  # concurrent requests being processed
    queue_size: int = 256  # accepted but not yet started; beyond it: BUSY
    # BUSY also when a request would wait longer than this for a worker (0: off)
    queue_wait_ms: float = 50.0
    max_frame_bytes: int = 65536
    curve_secret_key_file: str = ""  # enables CURVE when set (zmq.auth)
    curve_allowed_clients_dir: str = ""
    # CURVE (key + allow-list) is required when a front or PUB endpoint is not loopback
    allow_plaintext_remote: bool = False


@attrs.frozen
class EventsConfig:
    publish: tuple[str, ...] = ("tcp://127.0.0.1:5556",)
    redis_stream: bool = True  # mirror to a Redis Stream when the store is Redis
    stream_maxlen: int = 1_000_000
    # events kept for the replay op (issue 17): this long, and at most retention_events
    # on SQLite (stream_maxlen bounds the Redis Stream)
    retention_s: float = 86_400.0
    retention_events: int = 1_000_000


@attrs.frozen
class HttpConfig:
    """Ops HTTP: /health, /ready, /metrics, /dashboard."""

    host: str = "127.0.0.1"
    port: int = 8080
    bearer_token: str = _secret()
    # dependency checks re-run this often by themselves (dependency_up, dashboard, alert)
    health_refresh_s: float = 5.0


@attrs.frozen
class StoreConfig:
    """``redis://…`` (shared, production) or ``sqlite:///path`` (embedded). Empty: SQLite."""

    url: str = ""
    sqlite_path: str = "oexec.sqlite"
    idempotency_ttl_s: int = 86_400
    order_ttl_s: int = 30 * 86_400
    redis_timeout_s: float = 2.0  # connect/read timeout and wait for a pooled connection
    redis_max_connections: int = 64  # one pool per daemon
    # What a submit's reply means (issue 14): "fsync" - its claim survives a power loss of
    # the host; "process" - it survives a crash of the daemon (docs/configuration.md).
    durability: str = "process"
    # SQLite expert override of the claim's level (FULL/NORMAL/...); "" = from durability
    sqlite_synchronous: str = ""
    # writes after the claim; durable on power loss with the next claim (store/sqlite.py)
    sqlite_update_synchronous: str = "NORMAL"
    # false: the submit reply goes out before the venue's answer is stored (the claim is
    # already durable; the store catches up at once, reads of the order wait for it)
    persist_before_reply: bool = False


@attrs.frozen
class VenueConfig:
    name: str = "binance_usdm"
    base_url: str = "https://fapi.binance.com"
    ws_url: str = ""  # derived from base_url when empty
    api_key: str = _secret()
    api_secret: str = _secret()  # HMAC secret, or PEM Ed25519 private key
    key_type: str = "hmac"  # "hmac" | "ed25519"
    private_key_file: str = ""  # Ed25519 PEM, instead of api_secret
    recv_window_ms: int = 5000
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    pool_size: int = 100
    time_sync_interval_s: float = 300.0
    exchange_info_refresh_s: float = 3600.0
    read_retries: int = 3  # extra attempts for reads/cancels after transport failures
    retry_base_s: float = 0.2  # first backoff (doubles per attempt, full jitter)
    retry_max_s: float = 2.0  # backoff cap
    gate_deadline_s: float = 2.0  # default max wait for a rate-limit token
    listen_key_keepalive_s: float = 1800.0  # PUT listenKey this often (valid 60 min)
    stream_rotate_s: float = 23.5 * 3600  # reconnect before the venue's 24 h cut
    stream_reconnect_max_s: float = 30.0  # user-stream reconnect backoff cap
    # submits, modifies and cancels over "rest" or the WebSocket API ("ws", falling back
    # to REST while its connection is down); docs/configuration.md
    order_transport: str = "rest"
    ws_api_url: str = ""  # derived from base_url when empty
    ws_api_heartbeat_s: float = 30.0  # our pings; no pong within half of it: reconnect
    ws_api_rotate_s: float = 23.5 * 3600  # reconnect before the venue's 24 h cut
    ws_api_reconnect_max_s: float = 30.0  # reconnect backoff cap


@attrs.frozen
class LimitsConfig:
    """Client-side view of the venue's limits. Limits come from exchangeInfo; these cap them."""

    safety_margin: Decimal = Decimal("0.8")  # use this fraction of each venue limit
    orders_per_10s: int = 0  # 0 = take from exchangeInfo
    orders_per_minute: int = 0
    weight_per_minute: int = 0
    default_deadline_ms: int = 2000  # a request may wait this long for a token
    # share of each window sendable at once; the rest leaks evenly over the window, so
    # that no window of the venue's length ever sees more than the limit (docs/pretrade.md)
    burst_fraction: Decimal = Decimal("0.25")
    # the shared limiter ([cluster] shared_limits, Redis) leases units in batches: a lease
    # is spent within shared_lease_ms, then its rest goes back; it takes at most
    # shared_lease_fraction of a window's burst (oexec/limits/shared.py). 0 ms: one Redis
    # call per request
    shared_lease_ms: int = 200
    shared_lease_fraction: Decimal = Decimal("0.1")


@attrs.frozen
class BreakerConfig:
    """Plan §2.5 defaults."""

    failure_threshold: int = 5
    recovery_timeout_s: float = 30.0
    half_open_max_requests: int = 3
    success_threshold: int = 2


@attrs.frozen
class RiskConfig:
    """The optional risk manager. Zero disables a rule."""

    max_order_notional: Decimal = Decimal(0)
    max_position: Decimal = Decimal(0)  # per symbol, absolute base quantity
    max_open_orders: int = 0
    price_band: Decimal = Decimal(0)  # fraction of mark price, e.g. 0.05
    external_endpoint: str = ""  # zmq REQ endpoint of an external risk service
    external_timeout_ms: int = 50


@attrs.frozen
class ValidationConfig:
    """exchangeInfo is the source; per-symbol overrides (filter field -> value) win.

    ``symbols``: the allow-list (plan §4); empty = every symbol the venue lists. An order
    for another symbol is refused (SYMBOL_NOT_ALLOWED) before any I/O.
    """

    overrides: dict[str, dict[str, str]] = attrs.field(factory=dict)
    symbols: tuple[str, ...] = ()


@attrs.frozen
class TrackingConfig:
    user_stream: bool = True
    poll_interval_s: float = 2.0  # open-order polling while the stream is down
    unknown_resolve_max_s: float = 300.0
    adopt_unknown_orders: bool = True  # else: report and cancel
    dead_man_switch_s: int = 0  # countdownCancelAll; 0 = off
    sweep_interval_s: float = 30.0  # compare open orders with the venue while the stream is up
    # venue weight per minute the sweep may spend: with few symbols it then runs every
    # 1-2 s (bounded by sweep_interval_s), so a dropped stream event is caught within
    # seconds (issue 17); 0: every sweep_interval_s. 120 is 5 % of Binance's 2,400:
    # three symbols are swept every 1.5 s
    sweep_weight_per_minute: float = 120.0
    long_disconnect_s: float = 60.0  # a stream gap this long triggers a full reconciliation
    reconcile_history: int = 500  # latest orders whose fills reconciliation re-checks
    # least seconds between the account view's venue reads after account updates (a
    # read costs weight 10); the stream's wallet and position changes apply at once
    account_refresh_s: float = 5.0


@attrs.frozen
class LoggingConfig:
    level: str = "INFO"
    json: bool = True


@attrs.frozen
class ClusterConfig:
    """Several daemons on one Redis and one venue account (docs/deployment.md).

    Each switch takes effect only when the store is Redis; with SQLite a daemon is alone.
    """

    key_prefix: str = "oexec:"  # Redis namespace shared by the daemons of one account
    instance_id: str = ""  # empty: <hostname>:<pid>
    shared_limits: bool = True  # one Redis-side rate limiter for all daemons
    shared_breaker: bool = True  # an open breaker stops every daemon
    stream_lease: bool = True  # one daemon consumes the user stream, the others stand by
    shared_sequence: bool = True  # one event sequence (and Redis Stream) for all daemons
    lease_ttl_s: float = 3.0  # a dead owner's lease lapses after this long
    lease_renew_s: float = 1.0
    breaker_sync_s: float = 0.25  # how often the shared breaker state is read


@attrs.frozen
class NatsConfig:
    """Optional JetStream mirror of every event (subjects ``<subject_prefix>.order.created``…)."""

    url: str = ""  # e.g. nats://127.0.0.1:4222; empty: off
    stream: str = "OEXEC"
    subject_prefix: str = "oexec"
    duplicate_window_s: float = 120.0  # JetStream de-duplicates message ids this long
    max_msgs: int = 1_000_000
    buffer_size: int = 10_000


@attrs.frozen
class Config:
    front: FrontConfig = FrontConfig()
    events: EventsConfig = EventsConfig()
    http: HttpConfig = HttpConfig()
    store: StoreConfig = StoreConfig()
    venue: VenueConfig = VenueConfig()
    limits: LimitsConfig = LimitsConfig()
    breaker: BreakerConfig = BreakerConfig()
    risk: RiskConfig = RiskConfig()
    validation: ValidationConfig = ValidationConfig()
    tracking: TrackingConfig = TrackingConfig()
    logging: LoggingConfig = LoggingConfig()
    cluster: ClusterConfig = ClusterConfig()
    nats: NatsConfig = NatsConfig()
