"""The one error a consumer sees for a record it cannot read."""

from __future__ import annotations


class MalformedRecord(Exception):
    """A record that is not valid JSON or does not match its topic's contract.

    Retrying cannot help: the consumer routes the original bytes to the dead-letter topic.
    """

    def __init__(self, contract: str, reason: str):
        super().__init__(f"malformed {contract} record: {reason}")
        self.contract = contract
        self.reason = reason
