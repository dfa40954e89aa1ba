"""The simulator in a process of its own whose outages keep the venue's state.

``python -m tests.reliability.simhost --port P [--seed N] [--no-rate-limits]`` serves
the real simulator (oexec.sim) on 127.0.0.1:P. SIGUSR1 takes it off the network: the
listening socket closes and every open connection (REST keep-alive, user-stream
WebSocket) is dropped, so the daemon sees exactly what a venue outage or a process
restart looks like (connection refused, resets, listen keys gone). SIGUSR2 brings it
back on the same port with the same engine state (orders, positions, fills), which a
real venue keeps across its outages and a restarted ``oexec sim`` would not. SIGTERM
stops it. Chosen over killing ``oexec sim`` because a venue that forgets its orders
would make "lost" and "duplicate" meaningless.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import attrs
from aiohttp import web

from oexec.sim.app import create_app
from oexec.sim.config import AccountConfig, SimConfig
from oexec.sim.state import SimState

#: An outage is abrupt: open requests and WebSockets get this long, then are cut.
SHUTDOWN_S = 0.2


class OutageHost:
    """One SimState, served by a fresh aiohttp app each time it comes back up."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config.with_accounts()
        self.state = SimState(self.config)
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()  # signals may arrive faster than a transition runs
        self.outages = 0

    async def up(self) -> None:
        async with self._lock:
            await self._up()

    async def down(self) -> None:
        async with self._lock:
            await self._down()

    async def _up(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(
            create_app(state=self.state), access_log=None, shutdown_timeout=SHUTDOWN_S
        )
        await runner.setup()
        await web.TCPSite(runner, self.config.host, self.config.port, reuse_address=True).start()
        self._runner = runner
        print(f"simhost: up http://{self.config.host}:{self.config.port}", flush=True)

    async def _down(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()  # closes the listener, drops connections and streams
        self.outages += 1
        print(f"simhost: down (outage {self.outages})", flush=True)


async def serve(config: SimConfig) -> int:
    host = OutageHost(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task[None]] = []
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: pending.append(loop.create_task(host.down())))
    loop.add_signal_handler(signal.SIGUSR2, lambda: pending.append(loop.create_task(host.up())))
    await host.up()
    await stop.wait()
    await asyncio.gather(*pending, return_exceptions=True)
    await host.down()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--api-key", help="one HMAC account; its secret from SIMHOST_API_SECRET")
    args = parser.parse_args(argv)
    config = SimConfig(host="127.0.0.1", port=args.port, seed=args.seed)
    if args.api_key:
        account = AccountConfig(key=args.api_key, secret=os.environ["SIMHOST_API_SECRET"])
        config = attrs.evolve(config, accounts=(account,))
    if args.no_rate_limits:
        config = attrs.evolve(config, rate_limits=attrs.evolve(config.rate_limits, enabled=False))
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
