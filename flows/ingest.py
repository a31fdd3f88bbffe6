"""Ingest flow: fetch every series' closed candles, gate each staged batch with the candle contract, store it."""

from __future__ import annotations

from prefect import flow

from candlecast.config import RunConfig
from candlecast.schema import SeriesKey
from candlecast.tasks.endpoint import endpoint_source
from candlecast.tasks.ingest import fetch_candles, report_ingest, store_batch
from candlecast.tasks.validate import validate_batch


@flow(name="candlecast-ingest", log_prints=True)
def ingest_flow(config: RunConfig | None = None) -> dict[str, int]:
    """Fetch, gate and store every configured series; a refused batch fails the run after the rest is stored.

    Returns:
        New candles stored per series.
    """
    cfg = config or RunConfig()
    fetched = fetch_candles(cfg)
    source = endpoint_source(cfg)
    stored = {series: 0 for series in fetched}
    refused: dict[SeriesKey, str] = {}
    for series, fetch in fetched.items():
        for staged in fetch.staged:  # in time order: after a refused batch its series stores nothing more
            check = validate_batch(series, staged, return_state=True)
            if check.is_failed():
                refused[series] = check.message or "refused by the candle contract"
                break
            stored[series] += store_batch(series, staged, source)
    report_ingest(fetched, stored, refused)  # fails the run, naming each refused series, after the rest is stored
    return {str(series): n for series, n in stored.items()}
