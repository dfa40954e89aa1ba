"""The one cattrs converter for models: Decimal <-> string, enums <-> values.

Encoding rules (every backend, wire map and event uses these):
- ``Decimal`` -> plain string without exponent (``"0.010"``); parsed back exactly.
- ``StrEnum`` -> its value string.
- ``None`` fields are kept as ``None`` (msgpack nil / JSON null), never dropped, so a
  reader can tell "no price" from "field missing".
- ints stay ints (ms timestamps, versions); bools stay bools.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import cattrs

from oexec.models.decimals import format_decimal
from oexec.models.order import Fill, Order

T = TypeVar("T")

converter = cattrs.Converter()
converter.register_unstructure_hook(Decimal, format_decimal)
converter.register_structure_hook(Decimal, lambda value, _: Decimal(str(value)))


def order_to_dict(order: Order) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(order)
    return result


def order_from_dict(data: dict[str, Any]) -> Order:
    return converter.structure(data, Order)


def fill_to_dict(fill: Fill) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(fill)
    return result


def fill_from_dict(data: dict[str, Any]) -> Fill:
    return converter.structure(data, Fill)
