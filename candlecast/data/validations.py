"""The last contract check of each series, as the MLflow run that used the data records it.

The validate task keeps one JSON record per series (``<home>/validation/<slug>.json``, written through
``record_validation``); a training run copies its verdict and links to it, so a model
can be traced to the check that let its data through.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from candlecast.io import read_json, write_json
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


def validation_record_path(settings: Settings, series: SeriesKey) -> str:
    return str(settings.validation_dir / f"{series.slug}.json")


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
    return tags


def record_validation(settings: Settings, series: SeriesKey, report: dict) -> Path:
    """Keep the last validation result of a series for `candlecast status`."""
    path = settings.validation_dir / f"{series.slug}.json"
    write_json(report, path)
    return path
