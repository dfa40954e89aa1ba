"""Log lines are JSON, carry the request's correlation id, and never show the secret."""

from __future__ import annotations

import io
import json
import logging

from oexec.app import Daemon
from oexec.client import AsyncClient
from oexec.config import LoggingConfig
from oexec.ops.logging import configure_logging

from .conftest import endpoint


async def test_json_logs_with_correlation_ids_and_no_secrets(daemon: Daemon) -> None:
    stream = io.StringIO()
    secret = daemon.config.venue.api_secret
    handler = configure_logging(LoggingConfig(level="INFO"), [secret], stream=stream)
    try:
        async with AsyncClient(endpoint(daemon)) as client:
            await client.halt()
            await client.resume()
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    halted = [line for line in lines if "halted" in line.get("message", "")]
    assert halted, lines
    assert halted[0]["correlation_id"]
    assert secret not in stream.getvalue()
