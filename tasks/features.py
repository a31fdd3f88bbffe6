"""Feature task: causal features and targets per stored series, written to the feature folder."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from candlecast.config import RunConfig
from candlecast.features.compute import build_feature_file
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@task(name="features", task_run_name="features-{series.slug}")
def build_features(cfg: RunConfig, series: SeriesKey) -> Path:
    """Write the series' feature file (causal features and targets) and return its path."""
    return build_feature_file(Settings(), cfg, series)
