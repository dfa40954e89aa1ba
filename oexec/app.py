"""Composition root: builds the daemon from its config and wires ports to adapters.

The only module (with cli/) that knows every package. ``Daemon.start`` enters each
long-lived resource in dependency order on one AsyncExitStack, so a failure half way
unwinds what was already started, and ``stop`` tears down in reverse: intake first
(front end), then in-flight work, then the event outlet, venue and store.

Size: ~500 lines, over the ~400 guideline on purpose: the composition root names every
part once (the start is its steps, ``_open_store`` … ``_open_intake``), plus the daemon's
own health, gauges and dashboard view of those parts; the logic lives in the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, TypeVar

import redis.asyncio as aioredis
from aiohttp import web

from oexec import cluster
from oexec.config import Config
from oexec.errors import OexecError
from oexec.events.publisher import ZmqEventSink
from oexec.events.sequence import SharedSequenceSink
from oexec.events.store_log import StoreSequenceSink
from oexec.front.router import FrontEnd
from oexec.models import Order
from oexec.ops.http import build_ops_app
from oexec.ops.metrics import Metrics, RateWindow
from oexec.ops.observe import ObservedGate, TimedStore
from oexec.ops.reload import apply_reload
from oexec.ops.systemd import notify, start_watchdog, stop_watchdog
from oexec.service.account import AccountOps, AccountView
from oexec.service.batch import BatchingVenue
from oexec.service.client_ids import check_venue_takes
from oexec.service.deadman import DeadManSwitch
from oexec.service.journal import Journal, JournalingVenue
from oexec.service.market import MarketState
from oexec.service.pipeline import OrderPipeline, PipelineSettings
from oexec.service.ports import Venue
from oexec.service.reconcile import Reconciler
from oexec.service.resolver import ResolverPolicy, UnknownOutcomeResolver
from oexec.service.rules.allowlist import SymbolAllowList
from oexec.service.rules.risk import RiskManager
from oexec.service.rules.symbol_book import SymbolRulesBook
from oexec.service.rules.validation import ValidationPipeline
from oexec.service.tracker import OrderTracker
from oexec.service.tracking import Tracking
from oexec.service.writer import OrderWriter
from oexec.store import RedisStore, SqliteStore, open_store
from oexec.store.keys import ClusterKeys
from oexec.tasks import cancel_and_wait
from oexec.venue import open_venue

log = logging.getLogger("oexec.app")
T = TypeVar("T")

GAUGE_SAMPLE_S = 1.0
#: Subscribers reconnect to a restarted daemon's PUB socket within their reconnect
#: interval (ZeroMQ: 100 ms by default); events redelivered at start wait this long
#: after the bind, or they would go to no one.
PUB_JOIN_GRACE_S = 0.3
#: A user stream down this long fails /health (the tracker polls meanwhile; a reconnect
#: within the grace is routine: listen-key expiry, venue maintenance).
USER_STREAM_GRACE_S = 10.0


class Daemon:
    def __init__(self, config: Config, *, store_prefix: str | None = None) -> None:
        self.config = config
        # Redis key namespace; all daemons of one deployment share it ([cluster] key_prefix)
        self.store_prefix = config.cluster.key_prefix if store_prefix is None else store_prefix
        self.metrics = Metrics()
        self.started_at = time.time()
        self.ready = False
        self.http_url = ""
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[Any]] = []
        self._watchdog: asyncio.Task[None] | None = None
        self._stream_down_at: float | None = None
        self.nats: Any = None  # the NATS JetStream mirror when [nats] url is set

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        """Each step opens what the next one needs and puts its own teardown on the stack."""
        await self._open_store()
        journaled = await self._open_venue()
        pub_bound_at = await self._open_event_outlet()
        self._build_core(journaled)
        self._build_tracking(journaled)
        await self._recover(pub_bound_at)
        self._start_background()
        await self._open_intake()
        self.ready = True
        notify("READY=1", "STATUS=accepting orders")
        self._watchdog = start_watchdog()
        log.info("oexec ready", extra={"listen": list(self.config.front.listen)})

    async def _open_store(self) -> None:
        """The store and the audit journal on it."""
        cfg, stack = self.config, self._stack
        store = open_store(cfg.store, prefix=self.store_prefix, early_claims=True)
        self.store = TimedStore(store, self.metrics)
        await self.store.start()
        stack.push_async_callback(self.store.close)
        self.journal = Journal(self.store)
        self.journal.start()
        stack.push_async_callback(self.journal.stop)

    async def _open_venue(self) -> Venue:
        """The venue package named by ``[venue] name`` behind the rate gate and breaker,
        its symbol rules loaded; returns the Venue the order path uses (journaled)."""
        cfg, stack = self.config, self._stack
        self.redis = cluster.shared_redis(cfg)  # shared limits/breaker/lease/sequence
        if self.redis is not None:
            stack.push_async_callback(self.redis.aclose)
        self.limiter = cluster.rate_gate(cfg, self.redis, self.store_prefix, stack)
        # the venue's ports, policy and capabilities
        self.venue_kit = kit = await open_venue(
            cfg.venue, gate=ObservedGate(self.limiter, self.metrics), observer=self.metrics
        )
        self.venue = kit.venue
        stack.push_async_callback(self.venue.close)
        check_venue_takes(kit.policy)
        self.limiter.configure(kit.policy.rate_windows)  # until its exchange info says
        # a batch's submits and cancels leave as the venue's batch calls (issue 16)
        self.batching = None if kit.batch is None else BatchingVenue(self.venue, kit.batch)
        info = await self.venue.exchange_info()
        self.rules_book = SymbolRulesBook(cfg.validation.overrides)
        self.rules_book.load(info)
        self.limiter.configure(info.rate_limits)
        self.breaker = cluster.venue_breaker(
            cfg, self.redis, self.store_prefix, self._on_breaker_change, stack
        )
        self.metrics.set_breaker_state(self.breaker.state)
        return JournalingVenue(self.batching or self.venue, self.journal)

    async def _open_event_outlet(self) -> float:
        """The event sink (PUB, with its mirrors); returns when PUB was bound."""
        cfg, stack = self.config, self._stack
        self.events = cluster.shared_event_sink(
            cfg, self.redis, self.store_prefix
        ) or await self._event_sink(self.store.inner)
        if isinstance(self.events, SharedSequenceSink) and isinstance(self.store.inner, RedisStore):
            # the store's scripts number the events they store: one round trip, not two
            self.store.inner.number_events(self.events)
        self.nats = await cluster.attach_nats(cfg, self.events, stack)  # closes after events
        await self.events.start()
        stack.push_async_callback(self.events.close)
        return time.monotonic()

    def _build_core(self, venue: Venue) -> None:
        """Market view, writer, resolver, risk, the account view and the pipeline."""
        cfg, stack, kit = self.config, self._stack, self.venue_kit
        self.market = MarketState(self.venue.mark_price)
        self.market.start()
        stack.push_async_callback(self.market.stop)
        self.writer = OrderWriter(
            self.store, self.events, listeners=[self.market.on_order_change, self._on_change]
        )
        # after the front end and the tasks stop, before the events and the store close
        stack.push_async_callback(self.writer.relay.close)
        self.resolver = UnknownOutcomeResolver(
            venue,
            self.writer,
            ResolverPolicy(
                not_found_grace_ms=kit.policy.not_found_grace_ms,
                give_up_after_s=cfg.tracking.unknown_resolve_max_s,
            ),
            on_resolved=lambda _o, seconds: self.metrics.unknown_resolved(seconds),
            journal=self.journal,
        )
        stack.push_async_callback(self.resolver.stop)
        self.risk = RiskManager(cfg.risk)
        stack.push_async_callback(self.risk.close)
        self.allow = SymbolAllowList(cfg.validation.symbols)
        account_venue = _capability(kit.account, kit.policy.name, "an account view")
        self.account_view = AccountView(
            account_venue, min_interval_s=cfg.tracking.account_refresh_s
        )
        self.pipeline = OrderPipeline(
            store=self.store,
            venue=venue,
            writer=self.writer,
            market=self.market,
            rules_book=self.rules_book,
            validation=ValidationPipeline(),
            risk=self.risk,
            breaker=self.breaker,
            resolver=self.resolver,
            settings=PipelineSettings(
                idempotency_ttl_s=cfg.store.idempotency_ttl_s,
                persist_before_reply=cfg.store.persist_before_reply,
            ),
            is_banned=self._banned_for,
            health_check=self.health,
            observer=self.metrics,
            journal=self.journal,
            event_replay=self.events,
            allow=self.allow,
            amend_venue=kit.amend,
            batching=self.batching,
            account=AccountOps(self.account_view, account_venue, self.allow),
        )
        stack.push_async_callback(self.pipeline.drain)  # after the front end stops

    def _build_tracking(self, venue: Venue) -> None:
        """The tracker, the reconciler and the unit that runs them (service/tracking.py)."""
        cfg, kit = self.config, self.venue_kit
        self.tracker = OrderTracker(
            self.store,
            venue,
            self.writer,
            self.market,
            poll_interval_s=cfg.tracking.poll_interval_s,
            sweep_interval_s=cfg.tracking.sweep_interval_s,
            sweep_weight_per_minute=cfg.tracking.sweep_weight_per_minute,
            long_gap_s=cfg.tracking.long_disconnect_s,
            observer=self.metrics,
            journal=self.journal,
            on_long_gap=lambda: self.reconciler.run(),
            on_stale_submits=lambda orders: self.reconciler.resolve_stale(orders),
            all_symbols_cost=kit.policy.all_symbols_open_orders_cost,
        )
        self.tracker.account_listeners.append(self.account_view.on_stream_event)
        self.reconciler = Reconciler(
            self.store,
            venue,
            self.writer,
            self.tracker,
            self.resolver,
            adopt_unknown_orders=cfg.tracking.adopt_unknown_orders,
            history_limit=cfg.tracking.reconcile_history,
            journal=self.journal,
        )
        self.tracking = Tracking(
            tracker=self.tracker,
            reconciler=self.reconciler,
            resolver=self.resolver,
            store=self.store,
            open_stream=kit.user_stream,
            stream_enabled=cfg.tracking.user_stream,
            not_found_grace_ms=kit.policy.not_found_grace_ms,
            poll_interval_s=cfg.tracking.poll_interval_s,
        )

    async def _recover(self, pub_bound_at: float) -> None:
        """What a previous run left: unpublished events, owed fills, live orders."""
        # Events a previous run stored but may not have published (the outbox). Alone on
        # its store (SQLite) a daemon owns every pending entry; on a shared Redis only
        # entries past the grace period, so a live peer's fresh ones are left to it.
        await self.writer.relay.redeliver(
            older_than_s=0 if self.redis is None else None,
            before_publish=lambda: _sleep_until(pub_bound_at + PUB_JOIN_GRACE_S),
        )
        await self.tracker.load_owed_fills()
        await self.account_view.start()  # positions and balances, then kept by the stream
        self._stack.push_async_callback(self.account_view.stop)
        open_orders = await self.store.open_orders(None)
        self.market.seed_open_orders(open_orders)
        self.metrics.seed_orders(open_orders)
        await self.tracking.reconcile_at_start()

    def _start_background(self) -> None:
        """Tracking (alone, or while holding the cluster's lease) and the periodic jobs."""
        cfg, stack = self.config, self._stack
        loop = asyncio.get_running_loop()
        self.stream_owner = cluster.stream_ownership(
            cfg, self.redis, self.store_prefix, self.tracking
        )
        if self.stream_owner is not None:  # the lease holder tracks; the others stand by
            self.stream_owner.start()
            stack.push_async_callback(self.stream_owner.stop)
        else:
            self._tasks.append(loop.create_task(self.tracking.run_alone()))
        self._start_dead_man_switch()
        self._tasks.append(loop.create_task(self._refresh_exchange_info()))
        self._tasks.append(loop.create_task(self.writer.relay.run()))
        self._tasks.append(loop.create_task(self._sample_gauges()))
        stack.push_async_callback(self._cancel_tasks)

    async def _open_intake(self) -> None:
        """The ZeroMQ front end, then the HTTP ops endpoints."""
        self.front = FrontEnd(self.pipeline, self.config.front, on_metrics=self.metrics)
        await self.front.start()
        self._stack.push_async_callback(self.front.stop)
        await self._start_http()

    def reload(self, new: Config) -> None:
        """SIGHUP: apply what is safe to change while serving (oexec/ops/reload.py)."""
        notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            self.config = apply_reload(self.config, new, risk=self.risk, rules_book=self.rules_book)
            self.allow.set_symbols(self.config.validation.symbols)
        finally:
            notify("READY=1", "STATUS=accepting orders")

    async def stop(self) -> None:
        if self.ready:
            notify("STOPPING=1", "STATUS=draining in-flight requests")
        self.ready = False
        try:
            await self._stack.aclose()
        finally:
            await stop_watchdog(self._watchdog)  # pings through the drain: a hang is seen

    # -- parts -----------------------------------------------------------------------------
    async def _event_sink(self, store: Any) -> ZmqEventSink:
        """On SQLite the store keeps the sequence and the events (replay, issue 17); on
        Redis without the shared sequence, PUB with the optional Redis Stream mirror."""
        cfg = self.config
        if isinstance(store, SqliteStore):
            return StoreSequenceSink(
                cfg.events.publish,
                store=store,
                retention_s=cfg.events.retention_s,
                retention_events=cfg.events.retention_events,
                curve=cfg.front,
            )
        return ZmqEventSink(cfg.events.publish, curve=cfg.front, **await self._stream_mirror())

    async def _stream_mirror(self) -> dict[str, Any]:
        """Mirror events into a Redis Stream when Redis is the store (replay, issue 8)."""
        cfg = self.config
        if not (cfg.events.redis_stream and cfg.store.url.startswith(("redis", "unix"))):
            return {}
        client = aioredis.from_url(cfg.store.url)
        self._stack.push_async_callback(client.aclose)
        return {
            "redis": client,
            "stream_key": ClusterKeys(self.store_prefix).events()["stream"],
            "maxlen": cfg.events.stream_maxlen,
        }

    async def _refresh_exchange_info(self) -> None:
        """Filters and limits change (tick sizes are re-based): reload them periodically."""
        while True:
            await asyncio.sleep(self.config.venue.exchange_info_refresh_s)
            try:
                info = await self.venue.exchange_info()
            except Exception as exc:
                log.warning("exchangeInfo refresh failed: %s", exc)
                continue
            self.rules_book.load(info)
            self.limiter.configure(info.rate_limits)

    async def _sample_gauges(self) -> None:
        """Gauges that are cheaper to sample than to update on every request."""
        while True:
            for window, values in self.limiter.snapshot().items():
                # The venue's own count (X-MBX-* headers) when it reported one: the leaky
                # bucket's level drains continuously and reads ~0 under a steady flow.
                used = max(values["used"], values.get("venue_used", -1.0))
                with contextlib.suppress(ValueError):
                    self.metrics.set_rate_limit(RateWindow(window), int(used), int(values["limit"]))
            self.metrics.set_breaker_failures(self.breaker.failure_count)
            self.metrics.set_event_sequence(self.events.last_seq)
            self.metrics.set_user_stream_connected(self.tracking.stream_up)
            self._note_stream_state()
            front = getattr(self, "front", None)
            self.metrics.set_queued(front.queued if front is not None else 0)
            await asyncio.sleep(GAUGE_SAMPLE_S)

    def _start_dead_man_switch(self) -> None:
        arm = self.venue_kit.dead_man
        if self.config.tracking.dead_man_switch_s <= 0:
            return
        if arm is None:
            log.warning("venue %s has no dead-man switch: not armed", self.venue_kit.policy.name)
            return
        self.dead_man = DeadManSwitch(self.store, arm, self.config.tracking.dead_man_switch_s)
        self.writer.subscribe(self.dead_man.on_order_change)
        self._tasks.append(asyncio.get_running_loop().create_task(self.dead_man.run()))

    async def _cancel_tasks(self) -> None:
        await cancel_and_wait(self._tasks)

    async def _start_http(self) -> None:
        cfg = self.config.http
        app = build_ops_app(
            metrics=self.metrics,
            checks=self.dependency_checks(),
            readiness=lambda: self.ready,
            bearer_token=cfg.bearer_token,
            started_at=self.started_at,
            snapshot_provider=self.dashboard_extra,
            health_refresh_s=cfg.health_refresh_s,
            account_source=lambda: self.account_view.snapshot,  # positions/balances panels
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, cfg.host, cfg.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.http_url = f"http://{host}:{port}"

    def dependency_checks(self) -> dict[str, Any]:
        async def venue() -> None:
            await self.venue.mark_price(next(iter(self.rules_book.symbols()), "BTCUSDT"))

        async def breaker() -> None:
            if self.breaker.state == "open":
                raise RuntimeError("circuit breaker open")

        async def user_stream() -> None:
            if self._stream_down_at is None:
                return
            down_s = time.monotonic() - self._stream_down_at
            if down_s > USER_STREAM_GRACE_S:
                raise RuntimeError(f"user data stream down for {down_s:.0f}s (polling)")

        checks = {
            "store": self.store.ping,
            "venue": venue,
            "user_stream": user_stream,
            "breaker": breaker,
        }
        if self.nats is not None:  # [nats] url set: the JetStream mirror's connection
            checks["nats"] = self.nats.ping
        ws_api = getattr(self.venue, "ws_api", None)
        if ws_api is not None:  # [venue] order_transport = "ws": its connection
            checks["ws_api"] = ws_api.health_check
        return checks

    def dashboard_extra(self) -> dict[str, Any]:
        """Daemon state the metrics do not carry, for the live dashboard's ``extra``."""
        return {
            "ready": self.ready,
            "halted": self.risk.halted,
            "breaker": self.breaker.state,
            "venue_paused_s": round(self.limiter.paused_for(), 3),
            "queued": self.front.queued if hasattr(self, "front") else 0,
            **_transport_state(self.venue),
        }

    def _note_stream_state(self) -> None:
        """When the user stream we should hold went down (None: up, off, or a standby's)."""
        should_stream = self.config.tracking.user_stream and self.tracking.down_since is not None
        if self.tracking.stream_up or not should_stream:
            self._stream_down_at = None
        elif self._stream_down_at is None:
            self._stream_down_at = time.monotonic()

    def _banned_for(self) -> float:
        """The pipeline's ban check: a refusal while paused counts as a rate-limit hit."""
        left = float(self.limiter.paused_for())
        if left > 0:
            self.metrics.rate_limit_hit("ban")
        return left

    async def health(self) -> dict[str, Any]:
        checks: dict[str, str] = {}
        for name, check in self.dependency_checks().items():
            try:
                await asyncio.wait_for(check(), 2.0)
                checks[name] = "healthy"
            except Exception as exc:
                checks[name] = f"unhealthy: {type(exc).__name__}"
        healthy = all(v == "healthy" for v in checks.values())
        return {
            "status": "healthy" if healthy else "degraded",
            "uptime_s": round(time.time() - self.started_at, 3),
            "checks": checks,
            "halted": self.risk.halted,
        }

    def _on_breaker_change(self, old: str, new: str) -> None:
        log.warning("circuit breaker %s -> %s", old, new)
        self.metrics.breaker_transition(old, new)

    def _on_change(self, before: Order | None, after: Order) -> None:
        self.metrics.order_change(before, after)


def _capability(part: T | None, venue: str, what: str) -> T:
    """A capability of the venue the daemon cannot run without."""
    if part is None:
        raise OexecError(f"venue {venue} has no {what}; the daemon needs one")
    return part


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def _transport_state(venue: object) -> dict[str, object]:
    """Which transport orders go over and, with the WebSocket API, its connection."""
    ws_api = getattr(venue, "ws_api", None)
    return ws_api.describe() if ws_api is not None else {"order_transport": "rest"}
