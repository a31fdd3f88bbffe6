"""Import task: a candle file into the store through the candle contract, the core function `candlecast import` runs."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from candlecast.data.importing import import_candles
from candlecast.data.quarantine import get_entry
from candlecast.expectations import gate
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@task(name="import", task_run_name="import-{series.slug}")
def import_file(
    path: Path, series: SeriesKey, fmt: str = "auto", time_unit: str = "auto", allow_source_change: bool = False
) -> int:
    """New candles stored; a refused file's candles go to quarantine and the task fails, naming each failure.

    A series fetched from an exchange fails the task before anything is written unless ``allow_source_change``.
    """
    settings = Settings()
    outcome = import_candles(
        settings,
        path,
        series,
        gate.candle_gate(),
        fmt=fmt,
        time_unit=time_unit,
        allow_source_change=allow_source_change,
    )
    entry = None if outcome.quarantine is None else get_entry(settings, outcome.quarantine)
    gate.raise_if_failed(outcome.report, f"the file {Path(path).name}", entry)
    return outcome.new
