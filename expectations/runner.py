"""Run a contract on a frame and turn GX's result into a small, JSON-safe report.

Callers (the tasks, the CLI, the importers) need a yes/no gate plus a readable reason; they should not
have to know GX's result objects, whose shape differs per expectation and which hide expectations that
crashed inside GX behind ``success=False`` with an ``exception_info``.

Without ``state_root`` a frame is validated in an in-memory context (nothing written); with it, through
the state folder's GX file context (expectations/project.py), which stores the result and rebuilds the
Data Docs page that the report then links.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
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

from candlecast.config import FeatureConfig
from candlecast.features.compute import feature_columns, warmup_rows
from expectations.candles import CRITICAL, CandleBounds, candle_suite, live_parameters
from expectations.features import feature_suite
from expectations.project import gx_project

SAMPLE_SIZE = 5
_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
_SCHEMA_EXPECTATIONS = {"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set"}
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
        failures: One dict per failed expectation with keys expectation, description, columns,
            unexpected_count, sample, rows (a few offending rows, for row-wise checks), severity and
            error (GX's exception message when the expectation crashed, else None).
        data_docs: URL of this result's Data Docs page, when validated against a state folder.
    """

    success: bool
    series: str
    suite: str
    n_rows: int
    n_expectations: int
    checked_at: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def failed_expectations(self) -> list[str]:
        """Expectation types that failed, in report order (a type may repeat, e.g. one per column)."""
        return [f["expectation"] for f in self.failures]

    @property
    def status(self) -> str:
        """'passed', 'passed with warnings' or 'FAILED': one word for tags, tables and logs."""
        if not self.success:
            return "FAILED"
        return "passed with warnings" if self.failures else "passed"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that ``json.dumps`` accepts, for logs, MLflow and quarantine sidecars."""
        return {**asdict(self), "status": self.status}

    def summary(self, rows: int = 3) -> str:
        """Human-readable outcome: a header line, then each failed expectation with a few offending rows."""
        where = ", ".join(p for p in (self.suite, self.series) if p)
        if not self.failures:
            return f"passed {self.n_expectations} expectations on {self.n_rows} rows ({where})"
        n_critical = sum(f["severity"] == CRITICAL for f in self.failures)
        verdict = "FAILED" if not self.success else "passed with warnings"
        lines = [
            f"{verdict}: {len(self.failures)} of {self.n_expectations} expectations failed "
            f"({n_critical} critical) on {self.n_rows} rows ({where})"
        ]
        for f in self.failures:
            lines.append(f"  - [{f['severity']}] {_headline(f)}")
            if f.get("error"):
                lines.append(f"      error: {f['error']}")
            elif f.get("rows"):
                lines += [f"      {format_row(r)}" for r in f["rows"][:rows]]
            elif f.get("sample") is not None:
                lines.append(f"      {_observed(f['sample'])}")
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def table(self) -> list[dict[str, Any]]:
        """One row per failed expectation, for a Prefect table artifact."""
        return [
            {
                "severity": f["severity"],
                "expectation": f["expectation"],
                "columns": f["columns"],
                "unexpected": f["unexpected_count"],
                "what it checks": f.get("description") or "",
            }
            for f in self.failures
        ]

    def markdown(self, title: str = "Validation") -> str:
        """The report as Markdown: verdict, Data Docs link, the failed expectations and offending rows."""
        lines = [f"# {title}: {self.status}", "", f"**{self.suite}** on {self.n_rows} rows of `{self.series or '-'}`"]
        lines.append(f"({self.n_expectations} expectations, checked {self.checked_at})")
        if self.data_docs:
            lines += ["", f"Data Docs: [{self.data_docs}]({self.data_docs})"]
        if not self.failures:
            return "\n".join(lines)
        lines += ["", "| severity | expectation | columns | unexpected | what it checks |", "|---|---|---|---|---|"]
        for row in self.table():
            lines.append("| " + " | ".join(str(v) if v is not None else "-" for v in row.values()) + " |")
        for f in self.failures:
            detail = f.get("rows") or ([] if f.get("error") else None)
            lines += ["", f"**{_headline(f)}**"]
            if f.get("error"):
                lines.append(f"error: `{f['error']}`")
            elif detail:
                lines += ["", "| " + " | ".join(detail[0]) + " |", "|" + "---|" * len(detail[0])]
                lines += ["| " + " | ".join(_cell(k, v) for k, v in r.items()) + " |" for r in detail]
            else:
                lines.append(f"`{_observed(f.get('sample'))}`")
        return "\n".join(lines)


def _headline(f: Mapping[str, Any]) -> str:
    cols = f" on {f['columns']}" if f["columns"] else ""
    count = f": {f['unexpected_count']} unexpected" if f["unexpected_count"] is not None else ""
    what = f" ({f['description']})" if f.get("description") else ""
    return f"{f['expectation']}{cols}{count}{what}"


def _cell(key: str, value: Any) -> str:
    if key == "timestamp" and isinstance(value, int):
        return f"{value} ({pd.Timestamp(value, unit='ms', tz='UTC'):%Y-%m-%d %H:%M})"
    return "-" if value is None else str(value)


def format_row(row: Mapping[str, Any]) -> str:
    """One offending row on one line, its open time also in UTC."""
    return "  ".join(f"{k}={_cell(k, v)}" for k, v in row.items())


def _observed(sample: Any) -> str:
    """An aggregate's observed value and, for gaps, the largest holes; anything else shortened."""
    if isinstance(sample, Mapping) and {"missing", "extra"} <= set(sample):
        return f"missing columns: {sample['missing']}; extra columns: {sample['extra']}; expected {sample['expected']}"
    if not isinstance(sample, Mapping) or "observed" not in sample:
        return _short(sample)
    text = f"observed: {sample['observed']}"
    details = sample.get("details") or {}
    if details.get("largest"):
        holes = ", ".join(f"{g['from']}..{g['to']} ({g['missing']})" for g in details["largest"])
        text += f"; {details['gaps']} gaps, {details['missing']} missing candles; largest: {holes}"
    return text


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    params = live_parameters(timeframe, now_ms, max_staleness_ms) if live else {}
    return _run(df, _candle_suite(timeframe, live, bounds or CandleBounds()), series, params, state_root)


def validate_features(
    df: pd.DataFrame, cfg: FeatureConfig, timeframe: str, series: str = "", *, state_root: Path | None = None
) -> ValidationReport:
    """Check a feature frame (as written by build_feature_file) against the feature contract.

    The inputs checked are the frame's own (``feature_columns``): which ones exist depends on the config.
    """
    _check_frame(df, "validate_features")
    suite = _feature_suite(tuple(feature_columns(df)), warmup_rows(cfg, timeframe), cfg.horizon)
    return _run(df, suite, series, {}, state_root)


def _check_frame(df: Any, caller: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{caller} needs a pandas DataFrame, got {type(df).__name__}")


def _run(
    df: pd.DataFrame, suite: gx.ExpectationSuite, series: str, params: dict[str, Any], state_root: Path | None
) -> ValidationReport:
    checked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    docs = None
    with _GX_LOCK:
        if state_root is None:
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(suite, result_format=_RESULT_FORMAT, expectation_parameters=params)
        else:
            result, docs = gx_project(state_root).validate(df, suite, params)
    failures = _failures(result.results, df)
    return ValidationReport(
        success=not any(f["severity"] == CRITICAL for f in failures),
        series=series,
        suite=suite.name,
        n_rows=len(df),
        n_expectations=int(result.statistics.get("evaluated_expectations", len(result.results))),
        checked_at=checked_at,
        failures=failures,
        data_docs=docs,
    )


@functools.cache
def _candle_suite(timeframe: str, live: bool, bounds: CandleBounds) -> gx.ExpectationSuite:
    """One suite per timeframe and mode per process; building it is cheap but needless on every batch."""
    return candle_suite(timeframe, live, bounds)


@functools.cache
def _feature_suite(features: tuple[str, ...], warmup: int, horizon: int) -> gx.ExpectationSuite:
    return feature_suite(features, warmup, horizon)


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


def _failures(results: list[Any], df: pd.DataFrame) -> list[dict[str, Any]]:
    """Failure dicts for every result that failed or raised, minus noise from missing columns.

    When the schema check finds columns missing, every expectation on those columns raises inside GX
    ("column not found"); those repeats are dropped and counted in the schema failure instead.
    """
    failures = [_failure(r, df) for r in results if not r.success or _exception_message(r.exception_info)]
    missing: set[str] = set()
    for f in failures:
        if f["expectation"] in _SCHEMA_EXPECTATIONS and isinstance(f["sample"], dict):
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
        if f["expectation"] in _SCHEMA_EXPECTATIONS and isinstance(f["sample"], dict):
            f["sample"]["not_run"] = not_run
    return kept


def _failure(result: Any, df: pd.DataFrame) -> dict[str, Any]:
    """One failed GX result as a flat, JSON-safe dict."""
    config = result.expectation_config
    kwargs: dict[str, Any] = dict(config.kwargs)
    meta = config.meta or {}
    severity = meta.get("severity") or getattr(config, "severity", None) or CRITICAL
    error = _exception_message(result.exception_info)
    body: Mapping[str, Any] = result.result or {}
    rows: list[dict[str, Any]] | None = None
    if config.type in _SCHEMA_EXPECTATIONS and not error:
        expected = kwargs.get("column_list") or kwargs.get("column_set") or []
        sample: Any = _schema_sample(expected, body.get("observed_value"))
    elif "partial_unexpected_list" in body:
        sample = _row_sample(body)
        rows = _offending_rows(df, body.get("partial_unexpected_index_list"))
    elif "observed_value" in body:
        params = {k: v for k, v in kwargs.items() if k not in {"column", "batch_id", "result_format"}}
        sample = {"observed": body["observed_value"], **params}
        if isinstance(body.get("details"), Mapping):
            sample["details"] = body["details"]
    else:
        sample = None
    count = body.get("unexpected_count")
    return {
        "expectation": config.type,
        "description": getattr(config, "description", None),
        "columns": "" if config.type in _SCHEMA_EXPECTATIONS else _columns(kwargs),
        "unexpected_count": None if count is None else int(count),
        "sample": _json_safe(sample),
        "rows": _json_safe(rows),
        "severity": str(getattr(severity, "value", severity)),
        "error": error,
    }


def _offending_rows(df: pd.DataFrame, index: Any) -> list[dict[str, Any]] | None:
    """The whole rows behind GX's sampled index labels: the context a user needs to fix them."""
    labels = list(index or [])[:SAMPLE_SIZE]
    if not labels or not df.index.is_unique or not all(label in df.index for label in labels):
        return None
    return [{"row": label, **df.loc[[label]].to_dict("records")[0]} for label in labels]


def _columns(kwargs: Mapping[str, Any]) -> str:
    """The column(s) a row-wise expectation looks at; empty for table-level ones (call only for those)."""
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(map(str, kwargs["column_list"]))
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
