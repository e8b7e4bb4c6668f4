"""Dify's metadata filtering conditions, evaluated against documents' metadata: which documents a
search may return. As Dify does it: conditions over each document's metadata make an allow-list
of documents, and the search is restricted to them. A condition without a value is ignored
(``empty`` / ``not empty`` need none); a document without the field matches only ``empty``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Operator = Literal[
    "contains", "not contains", "start with", "end with", "is", "is not", "empty", "not empty", "in", "not in",
    "=", "≠", "!=", ">", "<", "≥", ">=", "≤", "<=", "before", "after",
]
_NUMERIC = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, "≥": lambda a, b: a >= b, ">=": lambda a, b: a >= b,
    "≤": lambda a, b: a <= b, "<=": lambda a, b: a <= b, "before": lambda a, b: a < b, "after": lambda a, b: a > b,
}
_TEXT = {
    "contains": lambda a, b: b in a, "not contains": lambda a, b: b not in a,
    "start with": lambda a, b: a.startswith(b), "end with": lambda a, b: a.endswith(b),
}


class Condition(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    comparison_operator: Operator
    value: str | int | float | list[str] | None = None


class MetadataCondition(BaseModel):
    logical_operator: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(default_factory=list, max_length=50)

    def active(self) -> list[Condition]:
        """The conditions that filter: a condition without a value is ignored, as in Dify."""
        return [c for c in self.conditions if c.value is not None or c.comparison_operator in ("empty", "not empty")]

    def allows(self, metadata: Mapping[str, Any]) -> bool:
        active = self.active()
        if not active:
            return True
        results = (matches(metadata, c) for c in active)
        return all(results) if self.logical_operator == "and" else any(results)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _listed(value: str | int | float | list[str]) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",")]


def matches(metadata: Mapping[str, Any], condition: Condition) -> bool:
    operator, wanted = condition.comparison_operator, condition.value
    present = metadata.get(condition.name)
    if operator == "empty":
        return present is None or present == ""
    if operator == "not empty":
        return present is not None and present != ""
    if present is None or wanted is None:
        return False
    if operator in ("in", "not in"):
        return (str(present) in _listed(wanted)) == (operator == "in")
    if operator in _TEXT:
        return _TEXT[operator](str(present), str(wanted))
    if operator in ("is", "=", "is not", "≠", "!="):
        equal_wanted = operator in ("is", "=")
        if isinstance(wanted, int | float):
            number = _number(present)
            return number is not None and (number == float(wanted)) == equal_wanted
        return (str(present) == str(wanted)) == equal_wanted
    number, bound = _number(present), _number(wanted)
    return number is not None and bound is not None and _NUMERIC[operator](number, bound)
