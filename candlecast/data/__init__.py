"""Candles in and out: the exchange client, the candle store, imports, ingest, quarantine and repair.

The package holds the ccxt client and pagination, staging fetches, the candle store, imports, resampling,
gaps, quarantine, ingest, validation records and store maintenance (repair, removal).

Everything that touches raw candles before they become features lives here, so a newcomer finds the
exchange boundary, the store and the ingest path in one place: ``exchange`` (client, retry policy),
``pagination`` (``fetch_many``), ``fetching`` (into staging), ``ingest`` (gate, quarantine, store),
``importing`` (a file through the same gate), ``maintenance`` (``store repair``/``store rm``). May import
the leaves (config, settings, schema, io) only: never ``devtools`` (the caller hands in an
``exchange.Endpoint``, the emulator's or the real exchange's), features, forecasting, registry or
trading, and never MLflow, Optuna or Prefect.
"""
