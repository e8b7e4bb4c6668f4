"""The one way extraction fails: the document yields no text, for a reason an operator can act on."""


class UnextractableDocument(Exception):
    """The document yields no text, for the reason given."""
