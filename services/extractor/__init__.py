"""The extractor service: turns a document's source into text, page by page, in a sandbox."""
