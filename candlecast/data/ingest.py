"""Ingestion: fetch new closed candles for many series into staging, gate them, store them, report gaps.

Nothing reaches the candle store unchecked: a batch is staged, validated by the gate the caller
passes in (the candle contract; the core does not import it), then upserted. A batch that fails stays
in staging for inspection and stops its series there, so the store never holds a later batch on top
of a hole (the next run refetches from the last stored candle). Every step can be repeated: staging
names are deterministic and upserts are idempotent, so a crashed run is completed by running again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.exchange import FetchStats, RetryPolicy, make_exchange
from candlecast.data.gaps import Gap, classify
from candlecast.data.pagination import FetchJob, fetch_many
from candlecast.data.validations import record_validation
from candlecast.devtools.emulator import synthetic_emulator
from candlecast.io import write_json, write_parquet
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_CONCURRENCY = 4
DEFAULT_CHUNK_ROWS = 200_000  # about 20 MB of parsed candles in memory per series at most


class GateReport(Protocol):
    """What a gate answers (``expectations.runner.ValidationReport`` is one)."""

    success: bool

    def summary(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


Gate = Callable[[pd.DataFrame, SeriesKey], GateReport]


@dataclass
class SeriesFetch:
    """One series' fetch: staged chunk files in time order, what it cost, and its error if it failed."""

    since: int
    staged: list[Path] = field(default_factory=list)
    stats: FetchStats = field(default_factory=FetchStats)
    error: str | None = None


@dataclass
class SeriesReport:
    """One series' ingest outcome: the ingest report's row, also what `candlecast ingest` prints."""

    series: str
    since: int
    fetched: int
    stored: int
    requests: int
    retries: int
    missing: int
    gaps: list[dict[str, Any]]
    bad_pages: list[str]
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def start_ms(store: CandleStore, series: SeriesKey, since_ms: int) -> int:
    """Where fetching resumes: after the last stored candle, else ``since_ms`` rounded up to the grid."""
    step = timeframe_ms(series.timeframe)
    last = store.last_timestamp(series)
    return last + step if last is not None else -(-int(since_ms) // step) * step


def fetch_to_staging(
    settings: Settings,
    exchange_id: str,
    series: list[SeriesKey],
    since_ms: int,
    *,
    now_ms: int | None = None,
    api_url: str | None = None,
    rate_limit: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    policy: RetryPolicy | None = None,
    timeout_ms: int = 10_000,
    limit: int = 1000,
) -> dict[SeriesKey, SeriesFetch]:
    """Fetch the closed candles each series lacks, through one async client, into staging chunk files.

    Args:
        settings: Where the store and staging live.
        exchange_id: The ccxt id every series belongs to.
        series: Series of that exchange.
        since_ms: Backfill start for a series with nothing stored; others resume after their last candle.
        now_ms: The exchange clock (the emulator's in tests); default the local UTC clock.
        api_url: A Binance-shaped emulator's base URL; None talks to the real exchange.
        rate_limit: ccxt's client-side throttle, shared by all series of the exchange.
        concurrency: Series fetched at once.
        chunk_rows: Candles per staged file, bounding memory on long backfills.
        policy: Retries for transient errors and malformed pages.
        timeout_ms: Per-request timeout.
        limit: Candles per request (Binance spot allows at most 1000).
    """
    others = sorted({s.exchange for s in series} - {exchange_id})
    if others:
        raise ValueError(f"fetch_to_staging got series of {others} for exchange {exchange_id!r}: one exchange per call")
    store = CandleStore(settings.candles_dir)
    for key in series:  # a run killed mid-write left debris or a stale manifest: this run finishes its job
        store.repair(key)
    out = {s: SeriesFetch(since=start_ms(store, s, since_ms)) for s in series}

    def on_chunk(key: SeriesKey, chunk: pd.DataFrame) -> None:
        first, last = int(chunk["timestamp"].iloc[0]), int(chunk["timestamp"].iloc[-1])
        path = settings.staging_dir / f"{key.slug}_{first}_{last}.parquet"
        write_parquet(chunk, path)
        out[key].staged.append(path)

    async def run() -> dict[Any, tuple[FetchStats, BaseException | None]]:
        exchange = make_exchange(exchange_id, api_url, rate_limit, timeout_ms)
        try:
            now = int(now_ms) if now_ms is not None else int(exchange.milliseconds())
            jobs = [FetchJob(s, s.symbol, s.timeframe, out[s].since) for s in series]
            return await fetch_many(
                exchange,
                jobs,
                now,
                on_chunk,
                concurrency=concurrency,
                limit=limit,
                chunk_rows=chunk_rows,
                policy=policy or RetryPolicy(),
            )
        finally:
            await exchange.close()

    for key, (stats, error) in _run(run()).items():
        out[key].stats = stats
        out[key].error = None if error is None else f"{type(error).__name__}: {error}"
        log.info("%s: fetched %d candles in %d requests since %d", key, stats.rows, stats.requests, out[key].since)
    return out


def store_staged(settings: Settings, series: SeriesKey, staged: list[Path], gate: Gate) -> tuple[int, str | None]:
    """Gate then store each staged chunk in time order; stop at the first refused one (it stays staged).

    Returns:
        (new candles stored, the refusal's summary or None).
    """
    stored = 0
    for path in staged:
        report = gate(pd.read_parquet(path), series)
        record_validation(settings, series, report.to_dict())
        if not report.success:
            return stored, f"{series}: batch {path} failed the candle contract, nothing stored.\n{report.summary()}"
        stored += store_batch(settings, series, path)
    return stored, None


def ingest(
    settings: Settings,
    exchange_id: str,
    series: list[SeriesKey],
    since_ms: int,
    gate: Gate,
    **fetch_options: Any,
) -> list[SeriesReport]:
    """Fetch, gate and store many series of one exchange, then report coverage and gaps per series.

    ``fetch_options`` go to ``fetch_to_staging``. A failing series (exchange error, refused batch)
    is reported with its error; the others are stored regardless.
    """
    fetched = fetch_to_staging(settings, exchange_id, series, since_ms, **fetch_options)
    stored = {key: store_staged(settings, key, f.staged, gate) for key, f in fetched.items()}
    return summarize(settings, fetched, stored)


def summarize(
    settings: Settings, fetched: dict[SeriesKey, SeriesFetch], stored: dict[SeriesKey, tuple[int, str | None]]
) -> list[SeriesReport]:
    """The ingest report: per series what was fetched and stored, its classified gaps and any error.

    Also written to ``<home>/ingest/last.json``, beside the manifests that `candlecast status` reads.
    """
    gaps = series_gaps(CandleStore(settings.candles_dir), list(fetched))
    reports = []
    for key, f in fetched.items():
        n_stored, refused = stored.get(key, (0, None))
        reports.append(
            SeriesReport(
                series=str(key),
                since=f.since,
                fetched=f.stats.rows,
                stored=n_stored,
                requests=f.stats.requests,
                retries=f.stats.retries,
                missing=sum(g.missing for g in gaps[key]),
                gaps=[g.to_dict() for g in gaps[key]],
                bad_pages=f.stats.bad_pages,
                error=f.error or refused,
            )
        )
    write_json([r.to_dict() for r in reports], settings.root / "ingest" / "last.json")
    return reports


def raise_on_errors(reports: list[SeriesReport]) -> None:
    """Fail loudly, after every healthy series was stored, when any series could not be ingested."""
    failed = [r for r in reports if r.error]
    if failed:
        details = "\n".join(f"- {r.series}: {r.error}" for r in failed)
        raise RuntimeError(f"{len(failed)} of {len(reports)} series were not fully ingested:\n{details}")


def series_gaps(store: CandleStore, series: list[SeriesKey]) -> dict[SeriesKey, list[Gap]]:
    """Each series' gaps from its manifest, classified against every stored series of its exchange."""
    keys = sorted(set(store.list_series()) | set(series))
    manifests = {k: store.manifest(k) or {} for k in keys}
    own = {k: [Gap(g["start"], g["end"], g["missing"]) for g in m.get("gaps", [])] for k, m in manifests.items()}
    spans = {k: (m["first"], m["last"]) for k, m in manifests.items() if m.get("first") is not None}
    classified = classify(own, spans)
    return {k: classified.get(k, []) for k in series}


@contextmanager
def config_endpoint(cfg: RunConfig, now_ms: int | None = None) -> Iterator[tuple[str | None, bool, int]]:
    """(api_url, rate_limit, now) of the configured exchange; with ``exchange.emulator`` a local emulator.

    The emulator's synthetic history runs from ``exchange.synthetic_start`` to now (seeded), so a
    later run sees the same past candles plus the ones that closed since.
    """
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    if not cfg.exchange.emulator:
        yield cfg.exchange.api_url, cfg.exchange.rate_limit, now
        return
    step = timeframe_ms(cfg.data.timeframe)
    start = int(cfg.exchange.synthetic_start.timestamp() * 1000) // step * step
    n = (now - start) // step + 1
    if n < 2:
        raise ValueError(f"exchange.synthetic_start {cfg.exchange.synthetic_start} is not before now")
    with synthetic_emulator(
        cfg.data.symbols, timeframe=cfg.data.timeframe, start_ms=start, n=n, seed=cfg.exchange.seed, now_ms=now
    ) as emulator:
        yield emulator.url, False, now


def fetch_for_config(
    settings: Settings,
    cfg: RunConfig,
    series: list[SeriesKey] | None = None,
    now_ms: int | None = None,
    **fetch_options: Any,
) -> dict[SeriesKey, SeriesFetch]:
    """``fetch_to_staging`` for the run config's series, backfilling ``data.history_days`` when empty."""
    series = list(cfg.series if series is None else series)
    with config_endpoint(cfg, now_ms) as (api_url, rate_limit, now):
        since = now - cfg.data.history_days * 86_400_000
        return fetch_to_staging(
            settings, cfg.exchange.id, series, since, now_ms=now, api_url=api_url, rate_limit=rate_limit,
            **fetch_options,
        )  # fmt: skip


def fetch_batch(settings: Settings, cfg: RunConfig, series: SeriesKey, now_ms: int | None = None) -> Path | None:
    """One series' new closed candles in one staging file; None if up to date. Raises its fetch error."""
    fetched = fetch_for_config(settings, cfg, [series], now_ms, chunk_rows=2**62)[series]
    if fetched.error:
        raise RuntimeError(fetched.error)
    return fetched.staged[0] if fetched.staged else None


def store_batch(settings: Settings, series: SeriesKey, staged: Path) -> int:
    """Upsert a validated staged batch into the store, then drop the staging file."""
    n_new = CandleStore(settings.candles_dir).upsert(series, pd.read_parquet(staged))
    Path(staged).unlink(missing_ok=True)
    return n_new


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even where an event loop already runs (Prefect, Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
