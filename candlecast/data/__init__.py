"""Candles in and out: the ccxt client and pagination, the candle store, imports, resampling, gaps, quarantine.

Everything that touches raw candles before they become features lives here, so a newcomer finds the
exchange boundary, the store and the ingest path in one place. May import the leaves (config,
settings, schema, io) and ``devtools`` (the emulator is a configured exchange endpoint); never
features, forecasting, registry or trading, and never MLflow, Optuna or Prefect.
"""
