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
def import_file(path: Path, series: SeriesKey, fmt: str = "auto", time_unit: str = "auto") -> int:
    """New candles stored; a refused file's candles go to quarantine and the task fails, naming each failure."""
    settings = Settings()
    outcome = import_candles(settings, path, series, gate.candle_gate(), fmt=fmt, time_unit=time_unit)
    entry = None if outcome.quarantine is None else get_entry(settings, outcome.quarantine)
    gate.raise_if_failed(outcome.report, f"the file {Path(path).name}", entry)
    return outcome.new
