"""Ingest flow: for each series, fetch closed candles, gate them with the candle contract, store them."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from tasks.ingest import fetch_candles, store_batch
from tasks.validate import validate_batch


@flow(name="candlecast-ingest", log_prints=True)
def ingest_flow(config: RunConfig | None = None) -> dict[str, int]:
    cfg = config or RunConfig()
    stored: dict[str, int] = {}
    for series in cfg.series:
        staged = fetch_candles(cfg, series)
        if staged is None:
            stored[str(series)] = 0
            continue
        validate_batch(series, staged)
        stored[str(series)] = store_batch(series, staged)
    return stored
