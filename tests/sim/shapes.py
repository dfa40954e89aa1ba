"""Compare a reply's JSON shape with a documented example: keys, casing, JSON types,
integers where the example has integers, and decimals as strings where the example has
decimal strings. Lists: every element against the example's first element."""

from __future__ import annotations

import re
from typing import Any

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(
    reply: Any, example: Any, where: str = "$", tolerate: frozenset[str] = frozenset()
) -> list[str]:
    """Every way ``reply`` departs from ``example``; ``tolerate`` names keys (``$.a.b`` with
    list indexes written ``[]``) whose absence or presence is a documented difference."""
    problems: list[str] = []
    if where in tolerate:  # the whole value differs, knowingly
        return problems
    kind, expected = _kind(reply), _kind(example)
    if kind != expected:
        return [f"{where}: {kind} {reply!r:.40}, documented {expected} {example!r:.40}"]
    if isinstance(example, bool):
        return problems
    if isinstance(example, int) and not isinstance(reply, int):
        problems.append(f"{where}: {reply!r} is not an integer")
    elif isinstance(example, str) and _DECIMAL.match(example) and not _DECIMAL.match(reply):
        problems.append(f"{where}: {reply!r} is not a decimal string like {example!r}")
    elif isinstance(example, dict):
        for key in sorted(set(example) | set(reply)):
            path = f"{where}.{key}"
            if key not in reply:
                if path not in tolerate:
                    problems.append(f"{path}: missing")
            elif key not in example:
                if path not in tolerate:
                    problems.append(f"{path}: not documented")
            else:
                problems += differences(reply[key], example[key], path, tolerate)
    elif isinstance(example, list) and example and reply:
        if len({_kind(x) for x in example}) > 1:  # a row of columns (klines)
            if len(reply) != len(example) and f"{where}[]" not in tolerate:
                problems.append(f"{where}: {len(reply)} columns, documented {len(example)}")
            for index, (got, want) in enumerate(zip(reply, example, strict=False)):
                problems += differences(got, want, f"{where}[{index}]", tolerate)
        elif all(isinstance(x, dict) and "filterType" in x for x in example):
            documented = {x["filterType"]: x for x in example}  # exchangeInfo filters
            for item in reply:
                kind_name = item.get("filterType")
                path = f"{where}[{kind_name}]"
                if kind_name not in documented:
                    if path not in tolerate:
                        problems.append(f"{where}[]: filterType {kind_name!r} not documented")
                    continue
                problems += differences(item, documented[kind_name], path, tolerate)
        else:
            for item in reply:
                problems += differences(item, example[0], f"{where}[]", tolerate)
    return list(dict.fromkeys(problems))
