"""Data-contract tasks: the candle contract gates every batch before it is stored."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task

from candlecast import ingest
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from expectations.runner import validate_candles


@task(name="validate", task_run_name="validate-{series.slug}")
def validate_batch(series: SeriesKey, staged: Path) -> dict:
    """Blocks the flow on a failing batch; the batch stays in staging, nothing is stored."""
    report = validate_candles(pd.read_parquet(staged), series.timeframe, str(series))
    ingest.record_validation(Settings(), series, report.to_dict())
    if not report.success:
        raise ValueError(f"{series}: batch {staged} failed the candle contract, nothing stored.\n{report.summary()}")
    return report.to_dict()
