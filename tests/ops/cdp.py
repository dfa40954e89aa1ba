"""A minimal Chrome DevTools Protocol driver for headless Chromium (test helper).

Enough to open a page, wait for a condition, read the DOM and take a screenshot,
without a browser-automation dependency. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

_LISTENING = re.compile(rb"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # protocol events seen so far, in order

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self._ws.receive(), 30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"devtools socket closed: {msg.type}")
            data = json.loads(msg.data)
            if "method" in data and "id" not in data:
                self.events.append(data)
            elif data.get("id") == call_id:
                if "error" in data:
                    raise RuntimeError(data["error"])
                result: dict[str, Any] = data["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 20) -> None:
        """Poll the page (a remote process: there is no event to await) until truthy."""
        async with asyncio.timeout(timeout_s):
            while True:
                if await self.evaluate(expression):
                    return
                await asyncio.sleep(0.1)

    async def texts_by_id(self) -> dict[str, str]:
        script = (
            "JSON.stringify(Object.fromEntries([...document.querySelectorAll('[id]')]"
            ".map(e => [e.id, e.textContent.trim()])))"
        )
        texts: dict[str, str] = json.loads(await self.evaluate(script))
        return texts

    async def failed_requests(self) -> list[str]:
        """Every request of the page that failed or got a 4xx/5xx (Network domain events)."""
        await self.evaluate("1")  # read the events that arrived since the last call
        failed = []
        urls = {}
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
            elif event["method"] == "Network.responseReceived":
                if params["response"]["status"] >= 400:
                    failed.append(f"{params['response']['status']} {params['response']['url']}")
            elif event["method"] == "Network.loadingFailed" and not params.get("canceled"):
                failed.append(f"{params.get('errorText')} {urls.get(params['requestId'], '?')}")
        return failed

    def requested(self) -> list[str]:
        """URLs the page requested, in order."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]

    async def screenshot(self) -> bytes:
        result = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(result["data"])


@contextlib.asynccontextmanager
async def open_page(
    chromium: str, url: str, width: int = 1200, height: int = 1500
) -> AsyncIterator[Page]:
    """Start headless Chromium, open ``url`` and yield a :class:`Page`; always kills it."""
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stderr is not None
            port = None
            async with asyncio.timeout(30):
                while port is None:
                    line = await proc.stderr.readline()
                    if not line:
                        raise RuntimeError("chromium exited before DevTools came up")
                    if match := _LISTENING.search(line):
                        port = int(match.group(2))
            drain = asyncio.create_task(proc.stderr.read())
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with http.ws_connect(ws_url, max_msg_size=64 * 1024 * 1024) as ws:
                    page = Page(ws)
                    await page.call(
                        "Emulation.setDeviceMetricsOverride",
                        width=width,
                        height=height,
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    await page.call("Network.enable")
                    await page.call("Page.navigate", url=url)
                    yield page
            drain.cancel()
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
