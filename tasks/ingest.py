"""Ingest tasks: fetch closed candles to staging; store them once the contract (tasks/validate.py) passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from candlecast.config import RunConfig
from candlecast.data import fetching, ingest
from candlecast.data.exchange import TRANSIENT_ERRORS
from candlecast.data.provenance import Source
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.tasks.endpoint import endpoint_source, exchange_endpoint


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry a network or exchange outage, never a mistake that cannot pass.

    An unknown exchange id, a bad symbol or a config error (ValueError and the like) fails the same
    way every time: retrying it only delays the one-line error by the retry delays.
    """
    error = state.result(raise_on_failure=False)
    return isinstance(error, (*TRANSIENT_ERRORS, ConnectionError, TimeoutError))


@task(  # the tag is the server-wide exchange limit (deployments/definitions.py EXCHANGE_TAG)
    name="fetch", retries=2, retry_delay_seconds=10, retry_condition_fn=retry_if_transient, tags=["exchange-api"]
)
def fetch_candles(cfg: RunConfig) -> dict[SeriesKey, fetching.SeriesFetch]:
    """Every configured series at once (async ccxt, bounded concurrency, one rate limiter per exchange).

    A series recorded from another source than the config's fails the task before anything is fetched
    or written (``provenance.SourceConflict``; `candlecast ingest --allow-source-change` does it on purpose).
    """
    ingest.check_sources(Settings(), cfg.series, endpoint_source(cfg), allow_change=False)
    with exchange_endpoint(cfg) as endpoint:
        return fetching.fetch_for_config(Settings(), cfg, endpoint)


@task(name="store", task_run_name="store-{series.slug}")
def store_batch(series: SeriesKey, staged: Path, source: Source | None = None) -> int:
    """Upsert one validated staged batch into the candle store, recording its source; returns the new candles."""
    return ingest.store_batch(Settings(), series, staged, source)


@task(name="ingest-report")
def report_ingest(
    fetched: dict[SeriesKey, fetching.SeriesFetch], stored: dict[SeriesKey, int], refused: dict[SeriesKey, str]
) -> list[ingest.SeriesReport]:
    """Gaps per series, classified; fails the flow if a series was not fetched or refused (the rest is stored)."""
    reports = ingest.summarize(Settings(), fetched, {k: (n, refused.get(k)) for k, n in stored.items()})
    ingest.raise_on_errors(reports)
    return reports
