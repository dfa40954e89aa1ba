"""The chaos run: many clients, thousands of orders, the venue's faults on, and the
daemon, its Redis and the venue knocked over in turn. Run by scripts/chaos (long form)
and tests/reliability/test_chaos.py (bounded form).

Processes, all on 127.0.0.1: a redis-server of this run's own (own port and directory,
AOF fsync always), the simulator host (tests/reliability/simhost.py, whose outages keep
the venue's state), and ``oexec run`` using that Redis as its store. The run is cut
into rounds; in each round the clients place their share of orders and, half way,
one action strikes:

- ``kill_daemon``: SIGKILL ``oexec run``, start it again 0.2-1 s later;
- ``restart_redis``: SIGKILL the Redis server, start it again 0.5-1.5 s later;
- ``venue_outage``: the venue goes off the network for 1-3 s (connections refused,
  open ones and the user stream cut), then comes back with its state.

After each round new orders pause until every client has its answer; the time until
the daemon shows nothing the venue contradicts (issue 17's "view matches the venue")
is one reconciliation time, and the time until its store agrees with the venue in full
(every unknown submit proven, within the venue's not-found grace) is reported beside
it. At
the end the faults are cleared, the store is compared with the venue's ground truth
(chaos_audit.py) and the table is printed.

A strategy's subscriber stays connected throughout (chaos_events.py, issue 17) and is
held to the same ground truth: every venue fill delivered exactly once, every order's
final state delivered, no unexplained gap. ``store = "sqlite"`` runs the daemon on its
embedded store instead (no Redis to restart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from oexec.client import DaemonReplay
from oexec.config import StoreConfig
from oexec.service.ports import OrderStore
from oexec.store import open_store

from .chaos_audit import Report, audit, snapshot
from .chaos_events import EventWatch
from .chaos_load import SYMBOLS, LoadClient, LoadStats, move_prices
from .procs import DaemonProc, RedisServer, SimHost

ACTIONS = ("kill_daemon", "restart_redis", "venue_outage")
#: Probabilistic venue faults for the whole run (docs/sim.md, "Faults").
FAULTS: tuple[dict[str, Any], ...] = (
    {"kind": "latency", "probability": 0.3, "path": "/fapi/*", "params": {"max_ms": 30}},
    {"kind": "timeout_after_accept", "probability": 0.02, "path": "/fapi/v1/order"},
    {"kind": "reset_after_accept", "probability": 0.01, "path": "/fapi/v1/order"},
    {"kind": "error_5xx", "probability": 0.02, "path": "/fapi/v1/order"},
    {"kind": "read_after_write_lag", "probability": 0.05, "params": {"ms": 500}},
    {"kind": "stream_drop", "probability": 0.02},
    {"kind": "stream_delay", "probability": 0.02, "params": {"ms": 300}},
    {"kind": "stream_reorder", "probability": 0.02},
    {"kind": "stream_disconnect", "probability": 0.003},
)


@attrs.frozen
class ChaosPlan:
    orders: int = 3000
    clients: int = 16
    rounds: int = 6
    seed: int = 7
    faults: bool = True
    #: POST /_sim/rate_limits before the daemon starts (None: the venue's defaults).
    venue_limits: dict[str, Any] | None = None
    settle_timeout_s: float = 90.0
    #: Extra OEXEC_* settings for the daemon (the CI form sweeps more often).
    daemon_env: dict[str, str] | None = None
    #: "redis" (the run's own redis-server) or "sqlite" (the daemon's embedded store)
    store: str = "redis"
    #: the actions struck in turn (restart_redis is skipped on SQLite)
    actions: tuple[str, ...] = ACTIONS


Progress = Callable[[str], None]


async def _poll(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float | None:
    """Seconds until ``check()`` held, or None if it did not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if await check():
                return time.monotonic() - started
        except Exception:
            pass  # a dependency still down: not converged yet
        await asyncio.sleep(0.25)
    return None


class ChaosRun:
    def __init__(self, plan: ChaosPlan, workdir: Path, progress: Progress = print) -> None:
        self.plan = plan
        self.workdir = workdir
        self.say = progress
        self.rng = random.Random(plan.seed)
        self.redis = RedisServer(workdir) if plan.store == "redis" else None
        self.watch: EventWatch | None = None
        self.sim = SimHost(workdir, seed=plan.seed)
        self.daemon: DaemonProc | None = None
        self.load = LoadStats()
        self.gate = asyncio.Event()
        self.inflight = 0
        self.reconcile_s: list[float] = []
        self.wrong_view_s: list[float] = []  # until nothing the venue contradicts
        self.unsettled_rounds = 0
        self.crashes = 0
        self.actions: list[str] = []
        self.last_problems: list[str] = []

    # --- processes ------------------------------------------------------------------------
    def start_processes(self) -> None:
        if self.redis is not None:
            self.redis.start()
        self.sim.start()
        if self.plan.venue_limits:
            self.sim.control("POST", "rate_limits", self.plan.venue_limits)
        self.daemon = DaemonProc(
            self.workdir,
            self.sim,
            store=self.redis.url if self.redis is not None else "",
            extra_env=self.plan.daemon_env,
        )
        self.daemon.start()

    def stop_processes(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
        self.sim.stop()
        if self.redis is not None:
            self.redis.stop()

    @property
    def store_url(self) -> str:
        assert self.daemon is not None
        return self.redis.url if self.redis is not None else f"sqlite:///{self.daemon.sqlite_path}"

    def strike(self, action: str) -> None:
        """One chaos action, blocking until the component is back."""
        assert self.daemon is not None
        if action == "kill_daemon":
            self.daemon.kill()
            time.sleep(self.rng.uniform(0.2, 1.0))
            self.daemon.start(timeout_s=60)
        elif action == "restart_redis":
            assert self.redis is not None
            self.redis.kill()
            time.sleep(self.rng.uniform(0.5, 1.5))
            self.redis.start()
        else:
            self.sim.outage()
            time.sleep(self.rng.uniform(1.0, 3.0))
            self.sim.recover()
        self.actions.append(action)

    # --- load -----------------------------------------------------------------------------
    async def _client(self, client: LoadClient) -> None:
        original = client.one_order

        async def counted(c: Any) -> None:
            self.inflight += 1
            try:
                await original(c)
            finally:
                self.inflight -= 1

        client.one_order = counted  # type: ignore[method-assign]
        await client.run(lambda: self.load.requested < self.plan.orders)

    async def _wait_requested(self, target: int, tasks: list[asyncio.Task[None]]) -> None:
        while self.load.requested < target and not all(t.done() for t in tasks):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _quiesce(self) -> None:
        self.gate.clear()
        while self.inflight:  # noqa: ASYNC110 (a counter shared by the clients)
            await asyncio.sleep(0.05)

    async def _settle(self, store: OrderStore) -> float | None:
        first: list[str] = []
        started = time.monotonic()
        view_right: list[float] = []

        async def converged() -> bool:
            venue = await asyncio.to_thread(self.sim.orders)
            snap = await snapshot(store, venue)
            self.last_problems = snap.problems()
            if not view_right and not snap.wrong_view():
                view_right.append(time.monotonic() - started)
            if not first:
                first.append(
                    f"{len(self.last_problems)} differences, e.g. {self.last_problems[:3]}"
                )
            return not self.last_problems

        settled = await _poll(converged, self.plan.settle_timeout_s)
        self.say(f"  at quiesce: {first[0] if first else 'store unreachable'}")
        if view_right:
            self.wrong_view_s.append(view_right[0])
            self.say(f"  view matched the venue after {view_right[0]:.2f} s")
        else:
            self.wrong_view_s.append(float("inf"))
        return settled

    async def _progress(self, stop: asyncio.Event, started: float) -> None:
        while not stop.is_set():
            load = self.load
            self.say(
                f"  {time.monotonic() - started:6.1f} s  requested {load.requested:>6}"
                f"  ok {load.count('ok'):>6}  refused {load.count('refused'):>4}"
                f"  retries {load.retries:>5}  in flight {self.inflight:>3}"
                f"  actions {len(self.actions)}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)

    async def run(self) -> Report:
        plan = self.plan
        await asyncio.to_thread(self.start_processes)
        assert self.daemon is not None
        store = open_store(StoreConfig(url=self.store_url, redis_timeout_s=1.0))
        await store.start()
        self.watch = EventWatch(self.daemon.endpoint, self.daemon.events_endpoint)
        self.watch.start()
        try:
            if plan.faults:
                for fault in FAULTS:
                    self.sim.control("POST", "faults", fault)
            return await self._rounds(store)
        finally:
            await self.watch.stop()
            await store.close()

    async def _rounds(self, store: OrderStore) -> Report:
        plan, daemon = self.plan, self.daemon
        assert daemon is not None
        prices = {symbol: start for symbol, (_, _, start) in SYMBOLS.items()}
        stop_mover = asyncio.Event()

        def set_price(symbol: str, price: str) -> None:
            self.sim.control("POST", "price", {"symbol": symbol, "price": price})

        mover = asyncio.create_task(move_prices(set_price, prices, stop_mover, plan.seed))
        started = time.monotonic()
        progress = asyncio.create_task(self._progress(stop_mover, started))
        self.gate.set()
        clients = [
            LoadClient(n, daemon.endpoint, self.load, self.gate, prices, plan.seed)
            for n in range(plan.clients)
        ]
        tasks = [asyncio.create_task(self._client(c)) for c in clients]
        per_round = plan.orders / plan.rounds
        actions = [a for a in plan.actions if self.redis is not None or a != "restart_redis"]
        for n in range(plan.rounds):
            action = actions[n % len(actions)]
            await self._wait_requested(int((n + 0.5) * per_round), tasks)
            self.say(f"round {n + 1}/{plan.rounds}: {action}")
            await asyncio.to_thread(self.strike, action)
            await self._wait_requested(int((n + 1) * per_round), tasks)
            await self._quiesce()
            if not daemon.alive():
                self.crashes += 1
                self.say("daemon died on its own: restarting it")
                await asyncio.to_thread(daemon.start)
            settled = await self._settle(store)
            if settled is None:
                self.unsettled_rounds += 1
                self.say(
                    f"  not converged after {plan.settle_timeout_s} s: {self.last_problems[:5]}"
                )
            else:
                self.reconcile_s.append(settled)
                self.say(f"  reconciled in {settled:.2f} s")
            self.gate.set()
        await asyncio.gather(*tasks)
        stop_mover.set()
        await asyncio.gather(mover, progress)
        self.sim.control("DELETE", "faults")
        final = await self._settle(store)
        if final is None:
            self.unsettled_rounds += 1
        else:
            self.reconcile_s.append(final)
        return await self._audit(store, final)

    async def _audit(self, store: OrderStore, final: float | None) -> Report:
        venue = await asyncio.to_thread(self.sim.orders)
        stats = await asyncio.to_thread(self.sim.stats)
        report = await audit(store, venue, stats, self.load, await self._fill_events())
        report.max_reconcile_s = max(self.reconcile_s, default=0.0)
        report.max_wrong_view_s = max(self.wrong_view_s, default=0.0)
        if final is None or self.unsettled_rounds:
            report.max_reconcile_s = float("inf")
        if self.watch is not None:
            waited = await self.watch.wait_for_states(venue)
            report.subscriber = self.watch.verdict(venue)
            report.details["subscriber_examples"] = report.subscriber.examples[:10]
            report.details["subscriber_state_wait_s"] = round(waited, 2)
            report.details["subscriber_replayed"] = report.subscriber.replayed
        report.details.update(
            actions=dict((a, self.actions.count(a)) for a in ACTIONS),
            daemon_crashes=self.crashes,
            unsettled_rounds=self.unsettled_rounds,
            last_problems=self.last_problems[:10],
            reconcile_s=[round(s, 2) for s in self.reconcile_s],
        )
        return report

    async def _fill_events(self) -> list[tuple[str, int, bool]]:
        """(order_id, trade_id, redelivered) of every fill event the daemon published,
        read back with its ``replay`` op (either store)."""
        assert self.daemon is not None
        replay = DaemonReplay(self.daemon.endpoint)
        try:
            events = await replay.between(0, None, topics=["fill"])
        finally:
            await replay.close()
        return [
            (
                e.data["fill"]["order_id"],
                int(e.data["fill"]["trade_id"]),
                bool(e.data.get("redelivered")),
            )
            for e in events
        ]


async def run_chaos(plan: ChaosPlan, workdir: Path, progress: Progress = print) -> Report:
    run = ChaosRun(plan, workdir, progress)
    try:
        return await run.run()
    finally:
        await asyncio.to_thread(run.stop_processes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument(
        "--fast-venue", action="store_true", help="raise the venue's order limits 5x"
    )
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    limits = {"orders_per_10s": 1500, "orders_per_minute": 6000} if args.fast_venue else None
    plan = ChaosPlan(
        orders=args.orders,
        clients=args.clients,
        rounds=args.rounds,
        seed=args.seed,
        faults=not args.no_faults,
        venue_limits=limits,
        store=args.store,
    )
    workdir = Path(tempfile.mkdtemp(prefix="oexec-chaos-"))
    print(f"chaos: {plan}; work directory {workdir}", flush=True)
    report = asyncio.run(run_chaos(plan, workdir, lambda line: print(line, flush=True)))
    print()
    print(report.table())
    print(json.dumps(report.details, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(attrs.asdict(report), indent=2, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
