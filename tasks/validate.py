"""Data-contract tasks: the candle contract gates every batch, the stored series and the feature files.

Each check publishes a Prefect artifact (the verdict, the failed expectations with offending rows and
the Data Docs link), then fails the task on a critical failure with a message naming every one.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from candlecast.config import RunConfig
from candlecast.expectations import gate
from candlecast.expectations.runner import ValidationReport
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


def _publish(report: ValidationReport, key: str, title: str) -> None:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    key = "".join(c if c.isalnum() else "-" for c in key.lower())
    create_markdown_artifact(key=key, markdown=report.markdown(title), description=f"{title}: {report.status}")
    if report.failures:
        create_table_artifact(key=f"{key}-failures", table=report.table(), description=report.summary().splitlines()[0])


@task(name="validate", task_run_name="validate-{series.slug}")
def validate_batch(series: SeriesKey, staged: Path) -> dict:
    """A failing batch goes to quarantine with its report and the flow fails; nothing is stored."""
    report, entry = gate.check_batch(Settings(), series, staged)
    _publish(report, f"validation-{series.slug}", f"Candle batch {series}")
    gate.raise_if_failed(report, f"batch {Path(staged).name}", entry)
    return report.to_dict()


@task(name="validate-stored", task_run_name="validate-stored-{series.slug}")
def validate_stored(series: SeriesKey, live: bool = False, cfg: RunConfig | None = None) -> dict:
    """The stored series as a whole, before training (historical) or prediction (live: closed and fresh).

    ``cfg`` gives the exchange's clock for the live checks (a pinned demo market is fresh at its own end).
    """
    report = gate.check_stored(Settings(), series, gate.now_ms(cfg) if live else None)
    _publish(report, f"validation-stored-{series.slug}", f"Stored candles {series}")
    gate.raise_if_failed(report, "the stored candles")
    return report.to_dict()


@task(name="validate-features")
def validate_features(cfg: RunConfig, feature_paths: dict[str, Path]) -> list[dict]:
    """The feature contract on every feature file, before the sweep trains on them."""
    reports = gate.check_features(Settings(), cfg, feature_paths)
    for report in reports:
        _publish(report, f"validation-features-{report.series}", f"Features {report.series}")
        gate.raise_if_failed(report, "the feature file")
    return [r.to_dict() for r in reports]
