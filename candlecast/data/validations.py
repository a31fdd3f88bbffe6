"""The last contract check of each series, as `candlecast status` shows it and the MLflow run records it.

One JSON record per series (``<home>/validation/<slug>.json``, written through ``record_validation``).
Its top level is the verdict on what the store holds: the last check of the stored series, or of a
batch that was then stored. A batch refused at the gate never reached the store, so it cannot change
that verdict: it is kept beside it as ``last_refused`` (with its quarantine id), and `status` shows
both. A training run copies the verdict and links to the record, so a model can be traced to the check
that let its data through. The live loop writes a close's Data Docs pages after its forecasts: each
page's link is added to the record later (``link_data_docs``), when the record still holds that check.
Records are rewritten whole (atomically) under one lock, so a late link never undoes a newer verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from candlecast.io import file_lock, read_json, write_json
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

LAST_REFUSED = "last_refused"
#: Marks a top level that is only a copy of a refused batch: nothing was checked and stored before it.
REFUSED_ONLY = "refused_batch"


def validation_record_path(settings: Settings, series: SeriesKey) -> str:
    """Where the series' validation record lives (a string: it is logged as an MLflow tag)."""
    return str(settings.validation_dir / f"{series.slug}.json")


def read_validation(settings: Settings, series: SeriesKey) -> dict[str, Any] | None:
    """The series' record: the stored data's verdict, with ``last_refused`` beside it when a batch was refused."""
    return read_json(settings.validation_dir / f"{series.slug}.json")


def validation_tags(settings: Settings, series: Iterable[SeriesKey]) -> dict[str, str]:
    """``validation.<slug>.*`` tags: status, suite, when, the record's path and the Data Docs page."""
    tags: dict[str, str] = {}
    for s in series:
        path = validation_record_path(settings, s)
        record = read_json(settings.validation_dir / f"{s.slug}.json")
        prefix = f"validation.{s.slug}"
        if record is None:
            tags[f"{prefix}.status"] = "not validated"
            continue
        failures = record.get("failures") or []
        status = record.get("status") or ("passed" if record.get("success") else "FAILED")
        tags |= {
            f"{prefix}.status": status,
            f"{prefix}.suite": str(record.get("suite", "")),
            f"{prefix}.checked_at": str(record.get("checked_at", "")),
            f"{prefix}.failed": ", ".join(sorted({f["expectation"] for f in failures})) or "none",
            f"{prefix}.result": path,
        }
        if record.get("data_docs"):
            tags[f"{prefix}.data_docs"] = str(record["data_docs"])
        refused = record.get(LAST_REFUSED)
        if refused:
            tags[f"{prefix}.last_refused"] = f"{refused.get('checked_at', '')} quarantine {refused.get('quarantine')}"
    return tags


def record_validation(
    settings: Settings, series: SeriesKey, report: dict[str, Any], *, refused_batch: bool = False
) -> Path:
    """Keep a check of the series for `candlecast status` and the training run's lineage.

    Args:
        settings: Where the record lives.
        series: The series checked.
        report: The gate's report as a dict (``success``, ``status``, ``checked_at``, ``failures``, ...).
        refused_batch: The report refused a batch that therefore never reached the store: it goes beside
            the stored data's verdict as ``last_refused`` and leaves the verdict as it was (when there is
            none yet, it stands in for one, marked ``refused_batch``).
    """
    path = settings.validation_dir / f"{series.slug}.json"
    with _locked(settings):
        previous = read_json(path) or {}
        if not refused_batch:
            record = dict(report) | ({LAST_REFUSED: previous[LAST_REFUSED]} if previous.get(LAST_REFUSED) else {})
        elif "success" in previous and not previous.get(REFUSED_ONLY):
            record = previous | {LAST_REFUSED: dict(report)}
        else:
            record = dict(report) | {REFUSED_ONLY: True, LAST_REFUSED: dict(report)}
        write_json(record, path)
    return path


def link_data_docs(settings: Settings, series: SeriesKey, report: dict[str, Any], url: str) -> bool:
    """Add the Data Docs page of a check written after its verdict (``report``, as it was recorded) to the record.

    The page goes where the record still holds that check: the stored data's verdict, ``last_refused``, or
    both; when a newer check has replaced it, nothing changes (False).
    """
    path = settings.validation_dir / f"{series.slug}.json"
    check = json.loads(json.dumps(report, default=str))  # as write_json stored it
    check.pop("data_docs", None)

    def holds(entry: Any) -> bool:
        return isinstance(entry, dict) and all(entry.get(k) == v for k, v in check.items())

    with _locked(settings):
        record = read_json(path)
        if record is None or not (holds(record) or holds(record.get(LAST_REFUSED))):
            return False
        if holds(record):
            record["data_docs"] = url
        if holds(record.get(LAST_REFUSED)):
            record[LAST_REFUSED]["data_docs"] = url
        write_json(record, path)
    return True


def _locked(settings: Settings) -> AbstractContextManager[None]:
    """The records' lock: a read-modify-write (a refusal beside the verdict, a late page) sees the newest record."""
    return file_lock(settings.validation_dir / ".lock")
