"""Ingestion: fetch new closed candles for many series into staging (``fetching``), gate them, store them.

Nothing reaches the candle store unchecked: a batch is staged, validated by the gate the caller
passes in (the candle contract; the core does not import it), then upserted. A batch that fails moves
to quarantine with its report (``gate_batch``, the same for the flow, the CLI and imports) and stops
its series there, so the store never holds a later batch on top of a hole (the next run refetches
from the last stored candle). Every step can be repeated: staging
names are deterministic and upserts are idempotent, so a crashed run is completed by running again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from candlecast.data.candle_store import CandleStore, CorruptPartition
from candlecast.data.fetching import SeriesFetch, fetch_batch, fetch_to_staging
from candlecast.data.gaps import Gap, classify
from candlecast.data.provenance import Source
from candlecast.data.quarantine import QuarantineEntry, quarantine_batch
from candlecast.data.validations import record_validation
from candlecast.io import write_json
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

__all__ = ["Gate", "GateReport", "SeriesReport", "fetch_batch", "gate_batch", "ingest", "store_batch", "store_staged",
           "summarize"]  # fmt: skip

log = logging.getLogger(__name__)


class GateReport(Protocol):
    """What a gate answers (``expectations.runner.ValidationReport`` is one)."""

    @property
    def success(self) -> bool:
        """True when the batch may be stored; read-only, so a frozen report satisfies the protocol."""

    def summary(self) -> str:
        """One line for logs and the CLI."""

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, for validation records and quarantine sidecars."""


Gate = Callable[[pd.DataFrame, SeriesKey], GateReport]
R = TypeVar("R", bound=GateReport)


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
        """A JSON-ready dict: one row of the ingest report."""
        return asdict(self)


def gate_batch(
    settings: Settings, series: SeriesKey, staged: Path, gate: Callable[[pd.DataFrame, SeriesKey], R]
) -> tuple[R, QuarantineEntry | None]:
    """Check a staged batch: one that fails moves to quarantine with its report, from any entry point.

    The verdict is recorded (a refused batch beside the stored data's verdict, not over it), so
    `candlecast status` and `quarantine list|show|release` see every refusal, whether the flow, the
    CLI's ingest or an import met it.
    """
    report = gate(pd.read_parquet(staged), series)
    if report.success:
        record_validation(settings, series, report.to_dict())
        return report, None
    entry = quarantine_batch(settings, series, staged, report.to_dict())
    record_validation(settings, series, report.to_dict() | {"quarantine": entry.id}, refused_batch=True)
    return report, entry


def refusal_message(series: SeriesKey, what: str, report: GateReport, entry: QuarantineEntry) -> str:
    """What to say about a refused batch: first line for tables, then the contract's summary."""
    return (
        f"{series}: {what} failed the candle contract, nothing stored; it waits in quarantine as {entry.id} "
        f"(`candlecast quarantine show {entry.id}`, fix it, then `candlecast quarantine release {entry.id}`)\n"
        f"{report.summary()}"
    )


def store_staged(
    settings: Settings,
    series: SeriesKey,
    staged: list[Path],
    gate: Gate,
    source: Source | None = None,
    allow_source_change: bool = False,
) -> tuple[int, str | None]:
    """Gate then store each staged chunk in time order; the first refused one goes to quarantine and stops it.

    Stopping there keeps the store free of a later batch above a hole; the next run refetches from the
    last stored candle. ``source`` is recorded with the candles (see ``CandleStore.upsert``).

    Returns:
        (new candles stored, the refusal's message or None).
    """
    stored = 0
    for i, path in enumerate(staged):
        report, entry = gate_batch(settings, series, path, gate)
        if entry is not None:
            for later in staged[i + 1 :]:  # refetched by the next run, after the quarantined range
                Path(later).unlink(missing_ok=True)
            return stored, refusal_message(series, f"batch {Path(path).name}", report, entry)
        try:
            stored += store_batch(settings, series, path, source, allow_source_change)
        except CorruptPartition as err:  # the batch stays staged; the repair refetches the partition anyway
            return stored, f"CorruptPartition: {err}"
    return stored, None


def ingest(
    settings: Settings,
    exchange_id: str,
    series: list[SeriesKey],
    since_ms: int,
    gate: Gate,
    *,
    source: Source | None = None,
    allow_source_change: bool = False,
    **fetch_options: Any,
) -> list[SeriesReport]:
    """Fetch, gate and store many series of one exchange, then report coverage and gaps per series.

    ``fetch_options`` go to ``fetch_to_staging``. A failing series (exchange error, refused batch)
    is reported with its error; the others are stored regardless.

    Raises:
        provenance.SourceConflict: A series is recorded from another source than ``source`` (and
            ``allow_source_change`` is off); checked for every series before anything is fetched or written.
        ValueError: The exchange does not list a symbol (``fetching.check_markets``), before anything is written.
    """
    check_sources(settings, series, source, allow_source_change)
    fetched = fetch_to_staging(settings, exchange_id, series, since_ms, **fetch_options)
    stored = {
        key: store_staged(settings, key, f.staged, gate, source, allow_source_change) for key, f in fetched.items()
    }
    return summarize(settings, fetched, stored)


def check_sources(settings: Settings, series: list[SeriesKey], source: Source | None, allow_change: bool) -> None:
    """Refuse, before anything is written, to bring candles from ``source`` into a series recorded from another."""
    if source is None:
        return
    store = CandleStore(settings.candles_dir)
    for key in series:
        store.check_source(key, source, allow_change)


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
    manifests = {k: _readable_manifest(store, k) for k in keys}
    own = {k: [Gap(g["start"], g["end"], g["missing"]) for g in m.get("gaps", [])] for k, m in manifests.items()}
    spans = {k: (m["first"], m["last"]) for k, m in manifests.items() if m.get("first") is not None}
    classified = classify(own, spans)
    return {k: classified.get(k, []) for k in series}


def _readable_manifest(store: CandleStore, series: SeriesKey) -> dict[str, Any]:
    """The series' manifest, or {} when a file is unreadable: its gaps are unknown until it is repaired."""
    try:
        return store.manifest(series) or {}
    except CorruptPartition:
        return {}


def store_batch(
    settings: Settings,
    series: SeriesKey,
    staged: Path,
    source: Source | None = None,
    allow_source_change: bool = False,
) -> int:
    """Upsert a validated staged batch into the store (recording ``source``), then drop the staging file."""
    n_new = CandleStore(settings.candles_dir).upsert(series, pd.read_parquet(staged), source, allow_source_change)
    Path(staged).unlink(missing_ok=True)
    return n_new
