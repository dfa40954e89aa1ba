"""docs/wire.md is the spec: it must name the code's version, every op and every code."""

from __future__ import annotations

import re
from pathlib import Path

from oexec.errors import ErrorCode
from oexec.service.ports import EventTopics
from oexec.wire import OPS, WIRE_VERSION

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "wire.md").read_text()


def test_spec_names_the_same_version() -> None:
    match = re.search(r"^Wire protocol version: (\d+)$", SPEC, re.MULTILINE)
    assert match is not None
    assert int(match.group(1)) == WIRE_VERSION


def test_spec_documents_every_op_code_and_topic() -> None:
    assert [op for op in OPS if f"### {op}" not in SPEC and f", {op}" not in SPEC] == []
    assert [code.value for code in ErrorCode if f"`{code.value}`" not in SPEC] == []
    assert [topic for topic in EventTopics.ALL if f"`{topic}`" not in SPEC] == []
