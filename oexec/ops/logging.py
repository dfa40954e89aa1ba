"""JSON-lines logging with request context and secret redaction.

Every record carries ``correlation_id``, ``request_id`` and ``order_id`` from
contextvars, so one grep follows an order through the pipeline without threading ids
through every call. Secrets (API key, API secret, bearer token, PEM key lines) are
registered once in :func:`configure_logging` and replaced by ``***`` twice over: in the
record (message, args, extra fields, traceback text) before formatting, and again in
the finished line, so a secret cannot leak through an odd formatter path. Values after
``signature=`` and ``X-MBX-APIKEY`` are redacted even when nobody registered them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from oexec.config import LoggingConfig

MASK = "***"
_HANDLER_NAME = "oexec"

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)
_CONTEXT_VARS = {"correlation_id": correlation_id, "request_id": request_id, "order_id": order_id}

# Credentials that appear in venue URLs and headers; redacted whether registered or not.
_PATTERNS = (
    re.compile(r"(?i)(signature=)[^&\s'\",}]+"),
    re.compile(r"(?i)(x-mbx-apikey['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?bearer\s+)[^'\"\s,}]+"),
)
# Standard LogRecord attributes; anything else on a record came in via ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class SecretRegistry:
    """The values to mask. A PEM block also registers each of its body lines."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        found = {secret.strip(), *_pem_lines(secret)}
        found.update(_json_escaped(v) for v in list(found))
        found.discard("")
        # Longest first, so a secret containing another is masked whole.
        self._values = tuple(sorted(set(self._values) | found, key=len, reverse=True))

    def clear(self) -> None:
        self._values = ()

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(r"\1" + MASK, text)
        return text


def _pem_lines(secret: str) -> list[str]:
    lines = [ln.strip() for ln in secret.splitlines()]
    if len(lines) < 2:
        return []
    return [ln for ln in lines if len(ln) >= 8 and not ln.startswith("-----")]


def _json_escaped(value: str) -> str:
    return json.dumps(value)[1:-1]


SECRETS = SecretRegistry()
"""Process-wide: a log line may be written by any daemon in the process."""


def redact(text: str) -> str:
    """Mask registered secrets and credential patterns in ``text``."""
    return SECRETS.redact(text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return redact(str(value))


class ContextFilter(logging.Filter):
    """Copies the context ids onto the record (``None`` when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT_VARS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class RedactionFilter(logging.Filter):
    """Masks secrets in the message, its args, extra fields, traceback and stack text.

    The message is rendered here (``msg % args``) so an arg can never smuggle a secret
    past the mask; the traceback is rendered to ``exc_text`` for the same reason.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            record.msg = _redact_value(record.msg)
            record.args = _redact_value(record.args) if record.args else record.args
        else:
            record.msg = redact(record.getMessage())
            record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines; the finished line is redacted again as a last line of defence."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    """Human-readable lines for a terminal; same redaction guarantee."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_JSON_FIELDS = ("levelname", "name", "message", "correlation_id", "request_id", "order_id")
_TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s %(request_id)s %(order_id)s] "
    "%(message)s"
)


def build_handler(config: LoggingConfig, stream: IO[str] | None = None) -> logging.Handler:
    """A stderr handler (journald captures it) with context and redaction filters."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    formatter: logging.Formatter
    if config.json:
        formatter = RedactingJsonFormatter(
            list(_JSON_FIELDS),
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    else:
        formatter = RedactingTextFormatter(_TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    return handler


def configure_logging(
    config: LoggingConfig, secrets: Iterable[str], *, stream: IO[str] | None = None
) -> logging.Handler:
    """Install the oexec handler on the root logger (replacing a previous one).

    Filters sit on the handler, not the logger: logger filters would not see records
    propagated from child loggers. Returns the handler (tests and shutdown flush it).
    """
    for secret in secrets:
        if secret:
            SECRETS.add(secret)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = build_handler(config, stream)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    return handler


@contextlib.contextmanager
def log_context(
    *,
    correlation: str | None = None,
    request: str | None = None,
    order: str | None = None,
) -> Iterator[None]:
    """Bind context ids for the enclosed code (and tasks it creates); restore after."""
    values = {"correlation_id": correlation, "request_id": request, "order_id": order}
    tokens = [(_CONTEXT_VARS[k], _CONTEXT_VARS[k].set(v)) for k, v in values.items() if v]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
