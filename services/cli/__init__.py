"""The ``indexflow`` command line."""
