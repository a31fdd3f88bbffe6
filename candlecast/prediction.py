"""Batch prediction from the registry's champion into the prediction store, with lineage on every row.

The store holds one parquet file per (series, cutoff, model version): re-running a prediction for
the same cutoff and version rewrites the same file (idempotent), and every write is atomic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pandas as pd

from candlecast import registry, tracking
from candlecast.config import RunConfig
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from candlecast.store import CandleStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionOutcome:
    model_version: str | None
    files: list[str] = field(default_factory=list)
    skipped: str | None = None


def predict_champion(settings: Settings, cfg: RunConfig) -> PredictionOutcome:
    """Forecast every configured series from its latest stored candles with models:/<name>@champion."""
    client = tracking.client(settings)
    name = cfg.promotion.model_name
    version = registry.alias_version(client, name, registry.CHAMPION)
    if version is None:
        reason = f"no @champion for {name} yet: no model has passed the promotion gate, nothing to predict"
        log.warning(reason)
        return PredictionOutcome(model_version=None, skipped=reason)
    run_id = client.get_model_version(name, version).run_id
    model = mlflow.pyfunc.load_model(f"models:/{name}@{registry.CHAMPION}")
    store = CandleStore(settings.candles_dir)
    created_at = datetime.now(UTC).isoformat()
    files = []
    for series in cfg.series:
        candles = store.read(series)
        if candles.empty:
            raise ValueError(f"no candles stored for {series}: ingest it before predicting")
        forecast = model.predict(candles.tail(_rows_needed(model)).reset_index(drop=True))
        forecast = forecast.assign(
            exchange=series.exchange,
            symbol=series.symbol,
            timeframe=series.timeframe,
            model_name=name,
            model_version=version,
            run_id=run_id,
            created_at=created_at,
        )
        path = prediction_path(settings, series, int(forecast["cutoff"].iloc[0]), version)
        write_parquet(forecast, path)
        files.append(str(path))
    return PredictionOutcome(model_version=version, files=files)


def _rows_needed(model: mlflow.pyfunc.PyFuncModel) -> int:
    """The champion's own minimum window (feature warm-up + lookback), plus one spare candle."""
    return model.unwrap_python_model().forecaster.spec.min_candles + 1


def prediction_path(settings: Settings, series: SeriesKey, cutoff: int, version: str) -> Path:
    return settings.predictions_dir / series.slug / f"cutoff={cutoff}_v{version}.parquet"


def latest_predictions(settings: Settings, series: SeriesKey) -> pd.DataFrame | None:
    files = sorted(
        (settings.predictions_dir / series.slug).glob("cutoff=*.parquet"),
        key=lambda p: (int(p.stem.split("=")[1].split("_v")[0]), p.stat().st_mtime),
    )
    return pd.read_parquet(files[-1]) if files else None
