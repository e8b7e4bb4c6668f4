"""indexflow services: one package per pipeline stage, all on the shared ``services.runtime``."""
