"""Scoring stored forecasts against the candles that arrived later: live error per model version.

Live metrics use the same units as the backtest (cumulative log return from the cutoff close), so
an MLflow run shows ``live_rmse_ratio`` next to the ``rmse_ratio`` it was promoted on; risk forecasts
get their live QLIKE and Value-at-Risk hit rates once all h candles after their cutoff have closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.risk_metrics import qlike
from candlecast.registry import tracking
from candlecast.registry.prediction_store import RISK, prediction_store
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings


@dataclass(frozen=True)
class ScoreOutcome:
    """How many forecast rows had realised outcomes, and the live metrics logged per model version."""

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
    """Live error of realised return forecasts next to the naive random walk's, interval coverage and hit rate.

    The naive forecast of a log return is zero, so its RMSE is the realised returns' root mean square.
    """
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


def risk_realized(forecasts: pd.DataFrame, candles: pd.DataFrame, step_ms: int) -> pd.DataFrame:
    """Risk forecast rows whose h candles after the cutoff have all closed, with their realised variance and return."""
    if forecasts.empty:
        return forecasts
    log_close = np.log(candles.set_index("timestamp")["close"])
    out = []
    for _, row in forecasts.iterrows():
        path = log_close.reindex(int(row["cutoff"]) + step_ms * np.arange(int(row["horizon"]) + 1))
        if path.notna().all():  # a missing candle would make the realised variance a guess
            steps = np.diff(path.to_numpy())
            out.append(
                row.to_dict() | {"realised_variance": float(np.sum(steps**2)), "realised_return": float(steps.sum())}
            )
    return pd.DataFrame(out)


def live_risk_metrics(rows: pd.DataFrame) -> dict[str, float]:
    """Live QLIKE of realised variance forecasts and, where VaR was stored, the VaR hit rates."""
    metrics = {
        "live_qlike": float(
            np.nanmean(qlike(rows["realised_variance"].to_numpy(), rows["forecast_variance"].to_numpy()))
        ),
        "live_risk_rows": float(len(rows)),
    }
    for level in ("var95", "var99"):
        if f"{level}_return" in rows:
            metrics[f"live_{level}_hit_rate"] = float(np.mean(rows["realised_return"] < rows[f"{level}_return"]))
    return metrics


def score_forecasts(settings: Settings, cfg: RunConfig) -> ScoreOutcome:
    """Join every stored forecast (returns and risk) with the realized candles; log live metrics per version's run."""
    store = CandleStore(settings.candles_dir)
    candles = {s: store.read(s) for s in cfg.series}
    returns = prediction_store(settings, cfg.predict.store_url)
    risk = prediction_store(settings, cfg.predict.store_url, RISK)
    step_ms = timeframe_ms(cfg.data.timeframe)
    scored = [
        (_concat([realized(returns.read_all(s), candles[s]) for s in cfg.series]), live_metrics),
        (_concat([risk_realized(risk.read_all(s), candles[s], step_ms) for s in cfg.series]), live_risk_metrics),
    ]
    client = tracking.client(settings)
    by_version: dict[str, dict[str, float]] = {}
    total = 0
    for rows, metrics_of in scored:
        if rows.empty:
            continue
        total += len(rows)
        for (name, version, run_id), group in rows.groupby(["model_name", "model_version", "run_id"]):
            metrics = metrics_of(group)
            by_version[f"{name} v{version}"] = metrics
            for key, value in metrics.items():
                if np.isfinite(value):
                    client.log_metric(run_id, key, value)
    return ScoreOutcome(total, by_version)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
