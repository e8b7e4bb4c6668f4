"""Dify's metadata filtering conditions against documents' metadata, operator by operator."""

from __future__ import annotations

import pytest

from services.search.metadata_filter import Condition, MetadataCondition, matches

DOC = {"author": "Ann Lee", "year": 2023, "category": "faq", "published": 1704067200, "summary": ""}


@pytest.mark.parametrize("name, operator, value, expected", [
    ("author", "contains", "Lee", True), ("author", "not contains", "Lee", False),
    ("author", "start with", "Ann", True), ("author", "end with", "Ann", False),
    ("author", "is", "Ann Lee", True), ("author", "is not", "Ann Lee", False),
    ("year", "is", 2023, True), ("year", "=", 2023.0, True), ("year", "≠", 2023, False), ("year", "!=", 2024, True),
    ("year", ">", 2022, True), ("year", "<", 2023, False), ("year", "≥", 2023, True), ("year", ">=", 2024, False),
    ("year", "≤", 2023, True), ("year", "<=", 2022, False),
    ("published", "before", 1704067201, True), ("published", "after", 1704067200, False),
    ("category", "in", ["faq", "guide"], True), ("category", "in", "guide, faq", True),
    ("category", "not in", ["faq"], False), ("category", "in", [], False), ("category", "not in", [], True),
    ("summary", "empty", None, True), ("missing", "empty", None, True), ("author", "not empty", None, True),
    ("missing", "not contains", "x", False),  # no value: only "empty" matches it, as SQL's NULL
    ("author", ">", 3, False),  # a text is no number
])
def test_each_operator(name, operator, value, expected):
    assert matches(DOC, Condition(name=name, comparison_operator=operator, value=value)) is expected


def test_conditions_combine_and_one_without_a_value_is_ignored():
    both = [Condition(name="year", comparison_operator=">", value=2020),
            Condition(name="category", comparison_operator="is", value="guide")]
    assert not MetadataCondition(logical_operator="and", conditions=both).allows(DOC)
    assert MetadataCondition(logical_operator="or", conditions=both).allows(DOC)
    ignored = [Condition(name="category", comparison_operator="is", value=None)]
    assert MetadataCondition(conditions=ignored).allows(DOC)
