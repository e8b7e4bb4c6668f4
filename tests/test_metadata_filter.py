"""Dify's metadata filtering conditions against documents' metadata, operator by operator."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from services.gateway.requests import RetrieveRequest
from services.search.metadata_filter import (
    MAX_CONDITION_VALUES, MAX_TERMS, Condition, MetadataCondition, Restriction, TooManyDocuments, matches, restriction,
)

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


@pytest.mark.parametrize("value", [
    [f"v{n}" for n in range(MAX_CONDITION_VALUES + 1)],
    ",".join(f"v{n}" for n in range(MAX_CONDITION_VALUES + 1)),
], ids=["list", "comma-separated"])
def test_a_condition_with_more_values_than_the_limit_is_refused_naming_it(value):
    with pytest.raises(ValidationError, match=f"at most {MAX_CONDITION_VALUES:,} values"):
        Condition(name="category", comparison_operator="in", value=value)


def test_values_are_read_once_per_condition_not_once_per_document():
    documents = [{"category": f"c{n}", "author": f"a{n}", "tag": f"t{n}"} for n in range(3000)]
    wanted = [f"v{n}" for n in range(MAX_CONDITION_VALUES - 1)]
    condition = MetadataCondition(logical_operator="or", conditions=[
        Condition(name=field, comparison_operator="in", value=[*wanted, "c1" if field == "category" else "x"])
        for field in ("category", "author", "tag")
    ])
    started = time.perf_counter()
    allowed = [d for d in documents if condition.allows(d)]
    assert time.perf_counter() - started < 1.0  # per document and condition: one set lookup
    assert allowed == [documents[1]]


def test_a_restriction_never_names_more_documents_than_elasticsearch_takes():
    every = {f"d{n}" for n in range(2 * MAX_TERMS + 10)}
    few = {"d1", "d2"}
    assert restriction(few, every - few) == Restriction(only=frozenset(few), excluded=frozenset())
    most = every - few
    assert restriction(most, few) == Restriction(only=None, excluded=frozenset(few))
    half = set(sorted(every)[: len(every) // 2])
    with pytest.raises(TooManyDocuments, match=f"{MAX_TERMS:,}"):
        restriction(half, every - half)
    with pytest.raises(TooManyDocuments):
        restriction(most, few, already_excluded=MAX_TERMS)  # with the hidden documents, over the limit


def test_a_search_kept_to_all_but_some_documents_leaves_those_out_beside_the_hidden_ones():
    scope = RetrieveRequest(query="q").scope("t", "d", Restriction(only=None, excluded=frozenset({"x"})), ["hidden"])
    assert scope.document_ids == () and set(scope.hidden_documents) == {"hidden", "x"}
    only = RetrieveRequest(query="q", document_ids=["a", "b"]).scope("t", "d", Restriction(frozenset({"b"}), frozenset()))
    assert only.document_ids == ("b",)
