"""Scoring stored forecasts against the candles that arrived later: live error per model version.

Live metrics use the same units as the backtest (cumulative log return from the cutoff close), so
an MLflow run shows ``live_rmse_ratio`` next to the ``rmse_ratio`` it was promoted on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.registry import tracking
from candlecast.registry.prediction_store import prediction_store
from candlecast.settings import Settings


@dataclass(frozen=True)
class ScoreOutcome:
    scored_rows: int
    by_version: dict[str, dict[str, float]]


def realized(forecasts: pd.DataFrame, candles: pd.DataFrame) -> pd.DataFrame:
    """Forecast rows whose target candle has closed, with the actual close and log return.

    ``timestamp`` is the open of the forecast candle; its close is the target. The cutoff close is
    looked up in the same candles, so nothing but stored, validated candles is used.
    """
    closes = candles.set_index("timestamp")["close"]
    out = forecasts.assign(
        actual=forecasts["timestamp"].map(closes), cutoff_close=forecasts["cutoff"].map(closes)
    ).dropna(subset=["actual", "cutoff_close"])
    return out.assign(actual_log_return=np.log(out["actual"] / out["cutoff_close"]))


def live_metrics(rows: pd.DataFrame) -> dict[str, float]:
    err = rows["actual_log_return"] - rows["forecast_log_return"]
    naive_rmse = float(np.sqrt(np.mean(rows["actual_log_return"] ** 2)))
    rmse = float(np.sqrt(np.mean(err**2)))
    moved = rows["actual_log_return"] != 0
    hits = np.sign(rows.loc[moved, "forecast_log_return"]) == np.sign(rows.loc[moved, "actual_log_return"])
    return {
        "live_mae": float(np.mean(np.abs(err))),
        "live_rmse": rmse,
        "live_naive_rmse": naive_rmse,
        "live_rmse_ratio": rmse / naive_rmse if naive_rmse > 0 else float("nan"),
        "live_coverage": float(np.mean((rows["actual"] >= rows["lower"]) & (rows["actual"] <= rows["upper"]))),
        "live_directional_accuracy": float(hits.mean()) if len(hits) else float("nan"),
        "live_scored_rows": float(len(rows)),
    }


def score_forecasts(settings: Settings, cfg: RunConfig) -> ScoreOutcome:
    """Join every stored forecast with the realized candles; log live metrics on each version's run."""
    store = CandleStore(settings.candles_dir)
    predictions = prediction_store(settings, cfg.predict.store_url)
    frames = [realized(predictions.read_all(s), store.read(s)) for s in cfg.series]
    rows = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(len(f) for f in frames) else None
    if rows is None:
        return ScoreOutcome(0, {})
    client = tracking.client(settings)
    by_version = {}
    for (version, run_id), group in rows.groupby(["model_version", "run_id"]):
        metrics = live_metrics(group)
        by_version[str(version)] = metrics
        for key, value in metrics.items():
            if np.isfinite(value):
                client.log_metric(run_id, key, value)
    return ScoreOutcome(len(rows), by_version)
