"""The wire protocol version: the one constant. docs/wire.md must name the same number."""

from __future__ import annotations

#: Bumped only for an incompatible change; additive changes (new optional fields, new
#: ops, new error codes) keep it. Every request and reply carries it as ``v``.
WIRE_VERSION = 1
