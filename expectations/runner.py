"""Run a contract on a frame and turn GX's result into a small, JSON-safe report.

Callers (the tasks, the CLI, the importers) need a yes/no gate plus a readable reason; they should not
have to know GX's result objects. The report itself lives in report.py, the translation of GX's
results into failures in failures.py; ``ValidationReport`` stays importable from here.

Without ``state_root`` a frame is validated in an in-memory context (nothing written); with it, through
the state folder's GX file context (expectations/project.py), which stores the result and rebuilds the
Data Docs page that the report then links.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from candlecast.config import FeatureConfig
from candlecast.expectations.batch import frames_at_fault, screen_suite, stackable, stacked
from candlecast.expectations.candles import CRITICAL, FRESHEST, CandleBounds, candle_suite, live_parameters
from candlecast.expectations.failures import SAMPLE_SIZE, failures_of
from candlecast.expectations.features import feature_suite
from candlecast.expectations.project import gx_project
from candlecast.expectations.report import ValidationReport, format_row
from candlecast.features.compute import feature_columns, warmup_rows
from candlecast.schema import timeframe_ms

__all__ = [
    "SAMPLE_SIZE", "ValidationReport", "format_row", "validate_candles", "validate_candles_many", "validate_features",
]  # fmt: skip

_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
# the screen needs every failing row (batch.frames_at_fault), not a sample
_SCREEN_FORMAT: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": SAMPLE_SIZE}
_SOURCE, _ASSET, _BATCH = "candlecast_frames", "candles", "whole_frame"

# GX's dataframe asset shares one execution engine and one batch id across all frames it validates,
# so two threads validating at once can read each other's frame (seen: 8 wrong results out of 200
# with 8 threads). Prefect runs tasks on threads, hence one lock around every validation.
_GX_LOCK = threading.Lock()


def validate_candles(
    df: pd.DataFrame,
    timeframe: str,
    series: str = "",
    *,
    now_ms: int | None = None,
    max_staleness_ms: int | None = None,
    bounds: CandleBounds | None = None,
    state_root: Path | None = None,
) -> ValidationReport:
    """Check a candle frame against the candle contract for its timeframe.

    Never raises for bad data: a frame with missing, extra or mistyped columns yields a failed report.

    Args:
        df: Candle frame with the CANDLE_COLUMNS columns (timestamp = open time, epoch ms UTC).
        timeframe: ccxt timeframe of the series, e.g. '1h'; fixes the timestamp grid.
        series: Label for the report, e.g. str(SeriesKey).
        now_ms: For a live series, the exchange clock: adds the closed-candle (critical) and freshness
            (warning) checks. Leave None for historical files, which have no "now".
        max_staleness_ms: How far the newest closed candle may lag ``now_ms`` (default three candles).
        bounds: Gap and move limits; the defaults when None.
        state_root: The state folder whose gx/ stores the result and its Data Docs page; None keeps
            everything in memory.

    Returns:
        The report; ``report.success`` is the gate.

    Raises:
        TypeError: If df is not a pandas DataFrame (a caller bug, not bad data).
        ValueError: If the timeframe is not a ccxt timeframe or max_staleness_ms is negative.
    """
    _check_frame(df, "validate_candles")
    live = now_ms is not None
    params = {} if now_ms is None else live_parameters(timeframe, now_ms, max_staleness_ms)
    return _run(df, _candle_suite(timeframe, live, bounds or CandleBounds()), series, params, state_root)


def validate_candles_many(
    frames: list[tuple[str, pd.DataFrame]],
    timeframe: str,
    *,
    now_ms: int,
    max_staleness_ms: int | None = None,
    bounds: CandleBounds | None = None,
) -> list[ValidationReport]:
    """``validate_candles`` (live, in memory) of many series' frames: one GX run, plus one per frame at fault.

    The frames are stacked and checked by the screen suite (expectations/batch.py). A frame with no
    failing row in it gets a passing report of that run (the screen is stricter than its own suite); a
    frame with one, or one that cannot be stacked, is validated on its own by the per-series suite, whose
    report is returned. When a screen failure names no rows, every frame is validated on its own.

    Args:
        frames: (series label, candle frame) pairs; the reports come back in their order.
        timeframe: As for ``validate_candles``.
        now_ms: The exchange clock, as for ``validate_candles`` (the screen is the live contract).
        max_staleness_ms: As for ``validate_candles``.
        bounds: As for ``validate_candles``.
    """
    for _, df in frames:
        _check_frame(df, "validate_candles_many")

    def alone(series: str, df: pd.DataFrame) -> ValidationReport:
        return validate_candles(df, timeframe, series, now_ms=now_ms, max_staleness_ms=max_staleness_ms, bounds=bounds)

    fit = [i for i, (_, df) in enumerate(frames) if stackable(df)]
    if len(fit) < 2:
        return [alone(series, df) for series, df in frames]
    stack = stacked([frames[i][1] for i in fit])
    params = live_parameters(timeframe, now_ms, max_staleness_ms)
    suite = _screen_suite(timeframe, params[FRESHEST], bounds or CandleBounds())
    checked_at = _now()
    result, _ = _validate(stack, suite, params, None, _SCREEN_FORMAT)
    at_fault = frames_at_fault(result.results, stack)
    screened = {i for k, i in enumerate(fit) if at_fault is not None and k not in at_fault}
    n = _n_expectations(result)
    return [
        ValidationReport(
            success=True, series=series, suite=suite.name, n_rows=len(df), n_expectations=n, checked_at=checked_at
        )
        if i in screened
        else alone(series, df)
        for i, (series, df) in enumerate(frames)
    ]


def validate_features(
    df: pd.DataFrame, cfg: FeatureConfig, timeframe: str, series: str = "", *, state_root: Path | None = None
) -> ValidationReport:
    """Check a feature frame (as written by build_feature_file) against the feature contract.

    The inputs checked are the frame's own (``feature_columns``): which ones exist depends on the config.
    """
    _check_frame(df, "validate_features")
    step = timeframe_ms(timeframe)
    suite = _feature_suite(tuple(feature_columns(df)), warmup_rows(cfg, timeframe), cfg.horizon, step)
    return _run(df, suite, series, {}, state_root)


def _check_frame(df: Any, caller: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{caller} needs a pandas DataFrame, got {type(df).__name__}")


def _run(
    df: pd.DataFrame, suite: gx.ExpectationSuite, series: str, params: dict[str, Any], state_root: Path | None
) -> ValidationReport:
    checked_at = _now()
    result, docs = _validate(df, suite, params, state_root, _RESULT_FORMAT, series)
    failures = failures_of(result.results, df)
    return ValidationReport(
        success=not any(f["severity"] == CRITICAL for f in failures),
        series=series,
        suite=suite.name,
        n_rows=len(df),
        n_expectations=_n_expectations(result),
        checked_at=checked_at,
        failures=failures,
        data_docs=docs,
    )


def _validate(
    df: pd.DataFrame,
    suite: gx.ExpectationSuite,
    params: dict[str, Any],
    state_root: Path | None,
    result_format: dict[str, Any],
    series: str = "",
) -> tuple[ExpectationSuiteValidationResult, str | None]:
    """One GX run: the suite on the frame, in memory or through the state folder's checkpoint (with its page).

    The checkpoint's result format is its own (project.py), so ``result_format`` applies in memory only.
    """
    with _GX_LOCK:
        if state_root is None:
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
            return batch.validate(suite, result_format=result_format, expectation_parameters=params), None
        return gx_project(state_root).validate(df, suite, params, series=series)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _n_expectations(result: ExpectationSuiteValidationResult) -> int:
    return int(result.statistics.get("evaluated_expectations", len(result.results)))


@functools.cache
def _candle_suite(timeframe: str, live: bool, bounds: CandleBounds) -> gx.ExpectationSuite:
    """One suite per timeframe and mode per process; building it is cheap but needless on every batch."""
    return candle_suite(timeframe, live, bounds)


@functools.lru_cache(maxsize=4)
def _screen_suite(timeframe: str, freshest_ms: int, bounds: CandleBounds) -> gx.ExpectationSuite:
    """The screen of one close (freshness is a value in it); kept for the few closes a batch may straddle."""
    return screen_suite(timeframe, freshest_ms, bounds)


@functools.cache
def _feature_suite(features: tuple[str, ...], warmup: int, horizon: int, step_ms: int) -> gx.ExpectationSuite:
    return feature_suite(features, warmup, horizon, step_ms)


@functools.cache
def _batch_definition() -> BatchDefinition:
    """The process-wide ephemeral context's whole-dataframe batch definition, made on first use.

    Ephemeral, so validating writes nothing to disk. Progress bars are off (GX otherwise prints tqdm
    'Calculating Metrics' to stderr on every validation). ``analytics_enabled=False`` is set on the
    context config rather than through ``GX_ANALYTICS_ENABLED`` so the caller's environment is not
    touched; GX 1.24.1 ships no analytics client, so this only records intent for later versions.
    """
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas(name=_SOURCE).add_dataframe_asset(name=_ASSET)
    return asset.add_batch_definition_whole_dataframe(_BATCH)
