"""The trading layer: forecasts become positions, fills, equity and decisions.

It sits above the registry (it may read registered versions and their prediction store) and is the
only place NautilusTrader is imported, lazily, inside the functions that run the engine: importing
this package, its config or its policies never loads NautilusTrader, so the CLI starts fast.
"""
