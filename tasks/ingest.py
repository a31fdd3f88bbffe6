"""Ingest tasks: fetch closed candles to staging; store them once the contract (tasks/validate.py) passed."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from candlecast import ingest
from candlecast.config import RunConfig
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@task(name="fetch", task_run_name="fetch-{series.slug}", retries=2, retry_delay_seconds=10)
def fetch_candles(cfg: RunConfig, series: SeriesKey) -> Path | None:
    return ingest.fetch_batch(Settings(), cfg, series)


@task(name="store", task_run_name="store-{series.slug}")
def store_batch(series: SeriesKey, staged: Path) -> int:
    return ingest.store_batch(Settings(), series, staged)
