"""The contract as a gate: validate against the state folder, record the verdict, quarantine what fails.

The tasks call these (one line each) and add Prefect artifacts; the CLI calls them too. Every check
writes its result into ``<home>/gx`` (with a Data Docs page) and the series' validation record, which
`candlecast status` shows and the training run links from MLflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.fetching import exchange_clock_ms
from candlecast.data.ingest import gate_batch
from candlecast.data.quarantine import QuarantineEntry
from candlecast.data.validations import link_data_docs, record_validation
from candlecast.expectations.runner import (
    ValidationReport,
    validate_candles,
    validate_candles_many,
    validate_features,
)
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


class ContractViolation(ValueError):
    """Data failed a critical expectation; the message names each one and shows offending rows."""


def now_ms(cfg: RunConfig | None = None) -> int:
    """'Now' for live checks: the configured exchange's clock (a pinned demo market's end), else the wall clock."""
    return exchange_clock_ms(cfg) if cfg is not None else int(time.time() * 1000)


def candle_gate(settings: Settings | None = None, now: int | None = None) -> CandleGate:
    """The candle contract as the core's gate (``candlecast.data.ingest.Gate``), for ingest and import.

    With ``settings`` each result is kept in ``<home>/gx`` with its Data Docs page; with ``now`` the
    live checks (closed candles, freshness) run too, as for a batch fetched from an exchange.
    """
    return CandleGate(None if settings is None else settings.root, now)


@dataclass(frozen=True)
class CandleGate:
    """The candle contract at one exchange time: one frame (``gate(frame, series)``) or a close's frames (``many``).

    ``many`` is the live loop's hot path: every frame checked in memory, the series that closed
    together in one GX run (runner.validate_candles_many). With a state folder, each series' GX result
    and Data Docs page are written by ``keep``, which the loop runs after the forecasts, and the page's
    link is then added to the series' validation record (written by the ingest step with the verdict)
    while the record still holds that verdict. When pages fall behind (an accelerated clock), each
    series' newest frame gets its page; a record replaced by a newer verdict meanwhile waits for that one's.
    """

    root: Path | None
    now: int | None

    def __call__(self, frame: pd.DataFrame, series: SeriesKey) -> ValidationReport:
        """One frame through the contract (its GX result and page written now, with a state folder)."""
        return validate_candles(frame, series.timeframe, str(series), now_ms=self.now, state_root=self.root)

    def many(self, frames: list[tuple[SeriesKey, pd.DataFrame]]) -> list[ValidationReport]:
        """Each frame's report, in order; frames of one timeframe at a live time are checked in one run."""
        timeframes = {series.timeframe for series, _ in frames}
        if self.now is None or len(timeframes) != 1:
            return [self(df, s) for s, df in frames]  # each its own run, its page written now
        reports = validate_candles_many([(str(s), df) for s, df in frames], timeframes.pop(), now_ms=self.now)
        if self.root is not None:
            with _PAGES_LOCK:
                _PAGES.update(
                    {(self.root, s): (df, self.now, r.to_dict()) for (s, df), r in zip(frames, reports, strict=True)}
                )
        return reports

    def keep(self) -> None:
        """Write the pending frames' GX results and Data Docs pages (one caller at a time; others return)."""
        if self.root is None or not _KEEPING.acquire(blocking=False):
            return
        try:
            while True:
                with _PAGES_LOCK:
                    pending = [(k, v) for k, v in _PAGES.items() if k[0] == self.root]
                    for k, _ in pending:
                        del _PAGES[k]
                if not pending:
                    return
                for (root, series), (df, now, verdict) in pending:
                    page = validate_candles(df, series.timeframe, str(series), now_ms=now, state_root=root)
                    if page.data_docs:
                        link_data_docs(Settings(home=root), series, verdict, page.data_docs)
        finally:
            _KEEPING.release()


# frames waiting for their Data Docs page: (state folder, series) -> (the newest frame, its exchange time, the
# verdict ``many`` gave it: the validation record the page's link goes into)
_PAGES: dict[tuple[Path, SeriesKey], tuple[pd.DataFrame, int, dict[str, Any]]] = {}
_PAGES_LOCK = threading.Lock()
_KEEPING = threading.Lock()


def check_batch(
    settings: Settings, series: SeriesKey, staged: Path, now: int | None = None
) -> tuple[ValidationReport, QuarantineEntry | None]:
    """Validate a staged batch from a live exchange; a failing batch moves to quarantine, not the store.

    The same core step (``gate_batch``) as the CLI's ingest and import, so a refusal looks the same
    from every entry point.
    """
    gate = candle_gate(settings, now_ms() if now is None else now)
    return gate_batch(settings, series, staged, gate)


def check_stored(
    settings: Settings, series: SeriesKey, now: int | None = None, max_staleness_ms: int | None = None
) -> ValidationReport:
    """Validate a series' stored candles as a whole (cross-batch gaps and moves only show up here).

    With ``now`` the series is treated as live (closed-candle and freshness checks), as before prediction;
    ``max_staleness_ms`` is the freshness limit (default: the contract's).
    """
    candles = CandleStore(settings.candles_dir).read(series)
    report = validate_candles(
        candles, series.timeframe, str(series), now_ms=now, max_staleness_ms=max_staleness_ms, state_root=settings.root
    )
    record_validation(settings, series, report.to_dict())
    return report


def check_features(settings: Settings, cfg: RunConfig, feature_paths: Mapping[str, Path]) -> list[ValidationReport]:
    """Validate each feature file against the feature contract."""
    return [
        validate_features(pd.read_parquet(path), cfg.features, cfg.data.timeframe, name, state_root=settings.root)
        for name, path in sorted(feature_paths.items())
    ]


def raise_if_failed(report: ValidationReport, what: str, entry: QuarantineEntry | None = None) -> None:
    """Fail with a message naming each failed critical expectation, a few offending rows and what to do."""
    if report.success:
        return
    critical = sorted({f["expectation"] for f in report.failures if f["severity"] == "critical"})
    lines = [f"{report.series or what}: {what} failed the {report.suite} contract ({', '.join(critical)})."]
    if entry is not None:
        lines.append(
            f"Nothing was stored: the batch is quarantined as {entry.id}. Inspect it with "
            f"`candlecast quarantine show {entry.id}`, fix it, then `candlecast quarantine release {entry.id}`."
        )
    lines.append(report.summary())
    raise ContractViolation("\n".join(lines))
