"""Topic declarations: every topic indexflow reads or writes, and how to create them."""

from topics.apply import ApplyReport, apply_topics, missing_topics
from topics.catalog import CATALOG, TOPICS, TopicSpec

__all__ = ["CATALOG", "TOPICS", "ApplyReport", "TopicSpec", "apply_topics", "missing_topics"]
