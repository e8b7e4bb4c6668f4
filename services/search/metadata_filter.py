"""Dify's metadata filtering conditions, evaluated against documents' metadata: which documents a
search may return. As Dify does it: conditions over each document's metadata make an allow-list
of documents, and the search is restricted to them. A condition without a value is ignored
(``empty`` / ``not empty`` need none); a document without the field matches only ``empty``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator

from schemas.documents import MAX_METADATA_CHARS

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


# Bounds of one filter: each document is checked against every condition, so conditions and
# values are what a hostile filter would multiply.
MAX_CONDITIONS = 50
MAX_CONDITION_VALUES = 10_000  # of an "in" / "not in"
# Elasticsearch's index.max_terms_count: the most ids one terms query takes.
MAX_TERMS = 65_536
Text = Annotated[str, Field(max_length=MAX_METADATA_CHARS)]  # as long as a metadata value can be


class Condition(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    comparison_operator: Operator
    # A comma-separated text lists "in" values too: as long as the most values of a list.
    value: Annotated[str, Field(max_length=MAX_CONDITION_VALUES * 64)] | int | float | list[Text] | None = None
    _listed: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("value", mode="before")  # before each value is checked: counting is cheaper
    @classmethod
    def _few_enough_values(cls, value: Any) -> Any:
        count = len(value) if isinstance(value, list) else value.count(",") + 1 if isinstance(value, str) else 1
        if count > MAX_CONDITION_VALUES:
            raise ValueError(f"a condition has at most {MAX_CONDITION_VALUES:,} values, not {count:,}")
        return value

    def model_post_init(self, _context: Any) -> None:
        # Split once here, not once per document checked; a list's values are already texts.
        if self.comparison_operator in ("in", "not in") and self.value is not None:
            self._listed = frozenset(self.value if isinstance(self.value, list) else _listed(self.value))


class MetadataCondition(BaseModel):
    logical_operator: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)

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


def _listed(value: str | int | float) -> list[str]:
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
        return (str(present) in condition._listed) == (operator == "in")
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


class TooManyDocuments(ValueError):
    """A condition's documents cannot be named in the terms lists Elasticsearch takes."""


@dataclass(frozen=True)
class Restriction:
    """The documents a search may return: ``only`` these, or (None) all but ``excluded``."""

    only: frozenset[str] | None
    excluded: frozenset[str]


def restriction(allowed: set[str], rejected: set[str], already_excluded: int = 0) -> Restriction:
    """The documents a condition lets through (``allowed``, of all checked, the others ``rejected``)
    in a terms list of at most MAX_TERMS: by name, or past that, all but those it keeps out
    (``already_excluded`` documents are kept out by the same list). A document written after the
    condition was checked is then not kept out: it is in neither set."""
    if len(allowed) <= MAX_TERMS:
        return Restriction(frozenset(allowed), frozenset())
    if len(rejected) + already_excluded <= MAX_TERMS:
        return Restriction(None, frozenset(rejected))
    raise TooManyDocuments(
        f"the metadata condition lets {len(allowed):,} documents through and keeps {len(rejected):,} out; a "
        f"search is restricted by naming at most {MAX_TERMS:,} of either: narrow the condition"
    )
