"""CLI command modules; each has ``register(app)``. Shared helpers live in ``common``."""
