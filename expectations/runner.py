"""Run the candle contract on a frame and turn GX's result into a small, JSON-safe report.

Callers (the ingest task, the CLI) need a yes/no gate plus a readable reason; they should not have to
know GX's result objects, whose shape differs per expectation and which hide expectations that
crashed inside GX behind ``success=False`` with an ``exception_info``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from expectations.candles import CRITICAL, candle_suite

SAMPLE_SIZE = 5
_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
_SCHEMA_EXPECTATION = "expect_table_columns_to_match_ordered_list"
_SOURCE, _ASSET, _BATCH = "candlecast_frames", "candles", "whole_frame"

# GX's dataframe asset shares one execution engine and one batch id across all frames it validates,
# so two threads validating at once can read each other's frame (seen: 8 wrong results out of 200
# with 8 threads). Prefect runs tasks on threads, hence one lock around every validation.
_GX_LOCK = threading.Lock()


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of one contract check: the gate decision plus enough detail to act on a failure.

    Attributes:
        success: True when no critical expectation failed (warnings are reported but do not block).
        series: The series the frame belongs to, e.g. 'binance:BTC/USDT:1h'; free text, may be empty.
        suite: Name of the suite that was run.
        n_rows: Rows in the validated frame.
        n_expectations: Expectations evaluated.
        checked_at: When the check ran, ISO 8601 UTC.
        failures: One dict per failed expectation with keys expectation, columns, unexpected_count,
            sample, severity and error (GX's exception message when the expectation crashed, else None).
    """

    success: bool
    series: str
    suite: str
    n_rows: int
    n_expectations: int
    checked_at: str
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_expectations(self) -> list[str]:
        """Expectation types that failed, in report order (a type may repeat, e.g. one per column)."""
        return [f["expectation"] for f in self.failures]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that ``json.dumps`` accepts, for logs, MLflow and quarantine sidecars."""
        return asdict(self)

    def summary(self) -> str:
        """Human-readable outcome: one header line, then one line per failed expectation."""
        where = ", ".join(p for p in (self.suite, self.series) if p)
        if not self.failures:
            return f"passed {self.n_expectations} expectations on {self.n_rows} rows ({where})"
        verdict = "FAILED" if not self.success else "passed with warnings"
        lines = [
            f"{verdict}: {len(self.failures)} of {self.n_expectations} expectations failed "
            f"on {self.n_rows} rows ({where})"
        ]
        for f in self.failures:
            cols = f" on {f['columns']}" if f["columns"] else ""
            count = f"{f['unexpected_count']} unexpected" if f["unexpected_count"] is not None else "failed"
            detail = f"error: {f['error']}" if f.get("error") else f"sample: {f['sample']}"
            lines.append(f"  - [{f['severity']}] {f['expectation']}{cols}: {count}; {detail}")
        return "\n".join(lines)


def validate_candles(df: pd.DataFrame, timeframe: str, series: str = "") -> ValidationReport:
    """Check a candle frame against the candle contract for its timeframe.

    Never raises for bad data: a frame with missing, extra or mistyped columns yields a failed report.

    Args:
        df: Candle frame with the CANDLE_COLUMNS columns (timestamp = open time, epoch ms UTC).
        timeframe: ccxt timeframe of the series, e.g. '1h'; fixes the timestamp grid.
        series: Label for the report, e.g. str(SeriesKey).

    Returns:
        The report; ``report.success`` is the gate.

    Raises:
        TypeError: If df is not a pandas DataFrame (a caller bug, not bad data).
        ValueError: If the timeframe is not a ccxt timeframe.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_candles needs a pandas DataFrame, got {type(df).__name__}")
    suite = _suite(timeframe)
    checked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with _GX_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format=_RESULT_FORMAT)
    failures = _failures(result.results)
    return ValidationReport(
        success=not any(f["severity"] == CRITICAL for f in failures),
        series=series,
        suite=suite.name,
        n_rows=len(df),
        n_expectations=int(result.statistics.get("evaluated_expectations", len(result.results))),
        checked_at=checked_at,
        failures=failures,
    )


@functools.cache
def _suite(timeframe: str) -> gx.ExpectationSuite:
    """One suite per timeframe per process; building it is cheap but needless on every batch."""
    return candle_suite(timeframe)


@functools.cache
def _batch_definition() -> BatchDefinition:
    """The process-wide ephemeral context's whole-dataframe batch definition, made on first use.

    Ephemeral, so validating writes nothing to disk. Progress bars are off (GX otherwise prints tqdm
    'Calculating Metrics' to stderr on every validation). ``analytics_enabled=False`` is set on the
    context config rather than through ``GX_ANALYTICS_ENABLED`` so the caller's environment is not
    touched; GX 1.24.1 ships no analytics client, so this only records intent for later versions.
    Note that ``gx.get_context`` also makes this context GX's process-wide "current project".
    """
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas(name=_SOURCE).add_dataframe_asset(name=_ASSET)
    return asset.add_batch_definition_whole_dataframe(_BATCH)


def _failures(results: list[Any]) -> list[dict[str, Any]]:
    """Failure dicts for every result that failed or raised, minus noise from missing columns.

    When the schema check finds columns missing, every expectation on those columns raises inside GX
    ("column not found"); those repeats are dropped and counted in the schema failure instead.
    """
    failures = [_failure(r) for r in results if not r.success or _exception_message(r.exception_info)]
    missing: set[str] = set()
    for f in failures:
        if f["expectation"] == _SCHEMA_EXPECTATION and isinstance(f["sample"], dict):
            missing.update(f["sample"].get("missing", []))
    if not missing:
        return failures
    kept, not_run = [], 0
    for f in failures:
        if f["error"] and missing.intersection(c.strip() for c in f["columns"].split(",")):
            not_run += 1
        else:
            kept.append(f)
    for f in kept:
        if f["expectation"] == _SCHEMA_EXPECTATION and isinstance(f["sample"], dict):
            f["sample"]["not_run"] = not_run
    return kept


def _failure(result: Any) -> dict[str, Any]:
    """One failed GX result as a flat, JSON-safe dict."""
    config = result.expectation_config
    kwargs: dict[str, Any] = dict(config.kwargs)
    meta = config.meta or {}
    severity = meta.get("severity") or getattr(config, "severity", None) or CRITICAL
    error = _exception_message(result.exception_info)
    body: Mapping[str, Any] = result.result or {}
    if config.type == _SCHEMA_EXPECTATION and not error:
        sample: Any = _schema_sample(kwargs.get("column_list") or [], body.get("observed_value"))
    elif "partial_unexpected_list" in body:
        sample = _row_sample(body)
    elif "observed_value" in body:
        params = {k: v for k, v in kwargs.items() if k not in {"column", "batch_id", "result_format"}}
        sample = {"observed": body["observed_value"], **params}
    else:
        sample = None
    count = body.get("unexpected_count")
    return {
        "expectation": config.type,
        "columns": _columns(kwargs),
        "unexpected_count": None if count is None else int(count),
        "sample": _json_safe(sample),
        "severity": str(getattr(severity, "value", severity)),
        "error": error,
    }


def _columns(kwargs: Mapping[str, Any]) -> str:
    """The column(s) an expectation looks at; empty for table-level expectations."""
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return ""


def _schema_sample(expected: list[str], observed: Any) -> dict[str, Any]:
    """Name missing and extra columns: GX itself only lists position-by-position mismatches."""
    seen = [str(c) for c in observed] if isinstance(observed, list | tuple) else []
    want = [str(c) for c in expected]
    return {  # multiset differences, so a duplicated column shows up as extra
        "missing": list((Counter(want) - Counter(seen)).elements()),
        "extra": list((Counter(seen) - Counter(want)).elements()),
        "expected": want,
        "observed": seen,
    }


def _row_sample(body: Mapping[str, Any]) -> list[Any]:
    """The first few offending values, paired with their index labels when GX provides them."""
    values = list(body.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
    index = list(body.get("partial_unexpected_index_list") or [])
    if len(index) >= len(values):
        return [{"index": i, "value": v} for i, v in zip(index, values, strict=False)]
    return values


def _exception_message(info: Any) -> str | None:
    """GX's exception message for a result, or None when nothing raised.

    ``exception_info`` is either one ``{"raised_exception", "exception_message", ...}`` dict or a dict
    of those keyed by metric id, depending on where in GX the error happened.
    """
    if not isinstance(info, Mapping) or not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages = [
        str(e.get("exception_message") or "expectation raised inside GX") for e in entries if e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _json_safe(value: Any) -> Any:
    """Convert numpy/pandas scalars, tuples and non-finite floats to plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Index):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
