"""Ingest tasks: fetch closed candles to staging; store them once the contract (tasks/validate.py) passed."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from candlecast.config import RunConfig
from candlecast.data import fetching, ingest
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@task(name="fetch", retries=2, retry_delay_seconds=10, tags=["exchange-api"])  # server-wide exchange limit
def fetch_candles(cfg: RunConfig) -> dict[SeriesKey, fetching.SeriesFetch]:
    """Every configured series at once (async ccxt, bounded concurrency, one rate limiter per exchange)."""
    return fetching.fetch_for_config(Settings(), cfg)


@task(name="store", task_run_name="store-{series.slug}")
def store_batch(series: SeriesKey, staged: Path) -> int:
    return ingest.store_batch(Settings(), series, staged)


@task(name="ingest-report")
def report_ingest(
    fetched: dict[SeriesKey, fetching.SeriesFetch], stored: dict[SeriesKey, int], refused: dict[SeriesKey, str]
) -> list[ingest.SeriesReport]:
    """Gaps per series, classified; fails the flow if a series was not fetched or refused (the rest is stored)."""
    reports = ingest.summarize(Settings(), fetched, {k: (n, refused.get(k)) for k, n in stored.items()})
    ingest.raise_on_errors(reports)
    return reports
