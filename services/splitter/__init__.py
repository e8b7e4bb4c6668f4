"""The splitter service: cleans extracted text and splits it into token-bounded segments."""
