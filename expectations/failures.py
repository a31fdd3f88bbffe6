"""Turn GX's validation results into flat, JSON-safe failure dicts for the ValidationReport.

GX's result objects differ per expectation (row-wise, aggregate, schema) and hide expectations that
crashed inside GX behind ``success=False`` with an ``exception_info``; this module is the one place
that knows those shapes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from candlecast.expectations.candles import CRITICAL

SAMPLE_SIZE = 5
_SCHEMA_EXPECTATIONS = {"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set"}


def failures_of(results: list[Any], df: pd.DataFrame) -> list[dict[str, Any]]:
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
