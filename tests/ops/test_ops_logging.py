"""JSON log lines carry request context; registered secrets never reach the output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from oexec.config import LoggingConfig
from oexec.ops import logging as ops_logging
from oexec.ops.logging import configure_logging, log_context, redact

SECRET = "s3cr3t-HMAC-key-0123456789abcdef"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIAb7a1y4eXo6zK9rjdeyqNbXK0bNpuXkQ2s8WfWcQkUq\n"
    "-----END PRIVATE KEY-----\n"
)
PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIAb7a1y4eXo6zK9rjdeyqNbXK0bNpuXkQ2s8WfWcQkUq"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = configure_logging(
        LoggingConfig(level="DEBUG"), [SECRET, API_KEY, PEM, ""], stream=buf
    )
    yield buf
    logging.getLogger().removeHandler(handler)
    ops_logging.SECRETS.clear()


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    """Our test logger's lines (asyncio may log its selector choice at DEBUG)."""
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "oexec.test"]


def test_json_line_with_context(stream: io.StringIO) -> None:
    log = logging.getLogger("oexec.test")
    with log_context(correlation="c-1", request="r-1", order="o-1"):
        log.info("placed %s", "BTCUSDT", extra={"symbol": "BTCUSDT", "qty": "0.001"})
    log.info("outside")
    inside, outside = _lines(stream)
    assert inside["message"] == "placed BTCUSDT"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "oexec.test"
    assert (inside["correlation_id"], inside["request_id"], inside["order_id"]) == (
        "c-1",
        "r-1",
        "o-1",
    )
    assert inside["symbol"] == "BTCUSDT"
    assert "timestamp" in inside
    assert outside["request_id"] is None


async def test_context_follows_tasks(stream: io.StringIO) -> None:
    log = logging.getLogger("oexec.test")

    async def work() -> None:
        log.info("in task")

    with log_context(request="r-task"):
        await asyncio.create_task(work())
    assert _lines(stream)[0]["request_id"] == "r-task"


def test_secret_in_message_args_and_extra_is_masked(stream: io.StringIO) -> None:
    log = logging.getLogger("oexec.test")
    log.warning("key is " + SECRET)
    log.warning("args %s %r", SECRET, {"k": API_KEY})
    log.warning("extra", extra={"headers": {"X-MBX-APIKEY": API_KEY}, "raw": [SECRET]})
    log.warning("pem %s", PEM)
    text = stream.getvalue()
    assert SECRET not in text
    assert API_KEY not in text
    assert PEM_BODY not in text
    assert text.count("***") >= 5


def test_secret_in_traceback_is_masked(stream: io.StringIO) -> None:
    log = logging.getLogger("oexec.test")

    def fail() -> None:
        secret_local = SECRET
        raise RuntimeError(f"signing failed with {secret_local}")

    try:
        fail()
    except RuntimeError:
        log.exception("boom")
    (line,) = _lines(stream)
    assert "RuntimeError" in str(line["exc_info"])
    assert SECRET not in stream.getvalue()


def test_stack_info_is_masked(stream: io.StringIO) -> None:
    logging.getLogger("oexec.test").info("here %s", SECRET, stack_info=True)
    assert SECRET not in stream.getvalue()
    assert "Stack" in stream.getvalue()


def test_unregistered_signature_and_api_key_header_are_masked(stream: io.StringIO) -> None:
    url = "GET /fapi/v1/order?symbol=BTCUSDT&timestamp=1&signature=abcdef0123456789"
    logging.getLogger("oexec.test").info("%s headers=%s", url, {"X-MBX-APIKEY": "unregistered1"})
    text = stream.getvalue()
    assert "abcdef0123456789" not in text
    assert "unregistered1" not in text
    assert "signature=***" in text


def test_redact_patterns() -> None:
    assert redact("a=1&signature=ff00&b=2") == "a=1&signature=***&b=2"
    assert redact("X-MBX-APIKEY: abc") == "X-MBX-APIKEY: ***"
    assert redact("Authorization: Bearer tok123") == "Authorization: Bearer ***"
    assert redact("nothing here") == "nothing here"


def test_dict_message_is_redacted(stream: io.StringIO) -> None:
    logging.getLogger("oexec.test").info({"event": "x", "secret": SECRET})
    (line,) = _lines(stream)
    assert line["secret"] == "***"


def test_text_format_is_redacted_and_has_context() -> None:
    buf = io.StringIO()
    handler = configure_logging(LoggingConfig(json=False), [SECRET], stream=buf)
    try:
        with log_context(request="r-9"):
            logging.getLogger("oexec.test").info("secret=%s", SECRET)
    finally:
        logging.getLogger().removeHandler(handler)
        ops_logging.SECRETS.clear()
    text = buf.getvalue()
    assert "r-9" in text
    assert SECRET not in text


def test_reconfigure_replaces_handler(stream: io.StringIO) -> None:
    other = io.StringIO()
    handler = configure_logging(LoggingConfig(), [], stream=other)
    names = [h.get_name() for h in logging.getLogger().handlers]
    assert names.count("oexec") == 1
    logging.getLogger("oexec.test").info("to other")
    assert "to other" in other.getvalue()
    assert stream.getvalue() == ""
    logging.getLogger().removeHandler(handler)
