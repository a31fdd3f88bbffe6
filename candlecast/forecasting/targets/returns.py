"""The returns target: the next h candles' cumulative log returns, with conformal intervals, next to naive.

The gate reads ``rmse_ratio``: RMSE over the naive random walk's on the same windows. Fold protocol,
metrics and the forecasts container live in candlecast.forecasting.returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting import returns, served
from candlecast.forecasting.baselines import BASELINES, make_baseline
from candlecast.forecasting.interface import Forecaster, quantile_levels
from candlecast.forecasting.splits import Fold
from candlecast.forecasting.targets.base import BacktestResult, Target, Walk
from candlecast.schema import timeframe_ms

if TYPE_CHECKING:
    from candlecast.models import HeadLoss

#: Metrics of the model logged under their own names (the gate reads them); the rest as test_<name>.
_LOGGED_AS = {"rmse_ratio", "mae_ratio", "dm_stat", "dm_pvalue", "naive_rmse", "naive_mae", "naive_mase", "windows"}


class ReturnsTarget(Target):
    """Cumulative log returns over the next h candles: a point and two quantiles per step."""

    key = "returns"
    bundle_key = "returns"
    registry_name = "candlecast-lstm"
    store_kind = served.SERVED["returns"].store_kind
    gate_metric = "rmse_ratio"
    gate_reference = "naive"
    fold_metric = "rmse_ratio"
    objective_name = "rmse_ratio"
    table_columns = returns.TABLE_COLUMNS
    table_prefix = "backtest"
    shown = {
        "rmse_ratio": "RMSE/naive",
        "rmse_ratio_first_step": "step 1",
        "rmse_ratio_last_step": "step H",
        "directional_accuracy": "dir.acc",
        "coverage": "cover",
        "dm_pvalue": "DM p",
        "fit_seconds": "fit s",
    }
    default_models = "naive,drift,snaive,ridge,ets,lstm"
    forecast_plot = True

    def quantiles(self, interval: float) -> list[float]:
        """The two quantiles bounding the central interval, e.g. 0.8 -> [0.1, 0.9]."""
        return quantile_levels(interval)

    def loss(self, quantiles: list[float]) -> HeadLoss:
        """MSE on the point plus pinball on the quantiles."""
        from candlecast.models import PointQuantileLoss

        return PointQuantileLoss(quantiles)

    def decode(self, out: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every output of a step times the step's scale; the quantile bounds sorted."""
        return served.decode_returns(out, scale)

    @property
    def baselines(self) -> Iterable[str]:
        """naive, drift, snaive, ridge and the statistical models."""
        return BASELINES

    def configured_baselines(self, cfg: RunConfig) -> list[str]:
        """``backtest.baselines``."""
        return list(cfg.backtest.baselines)

    def baseline(self, name: str, cfg: RunConfig) -> Forecaster:
        """A return baseline on the run's window and horizon."""
        fc = cfg.features
        return make_baseline(name, fc.lookback, fc.horizon, timeframe_ms(cfg.data.timeframe), cfg.backtest.stat_window)

    def run_fold(self, model: Forecaster, series: list[SeriesArrays], fold: Fold, walk: Walk) -> returns.Forecasts:
        """Fit, calibrate the interval on the calibration block, forecast test with adaptive intervals."""
        views = [self.view(s) for s in series]
        return returns.run_fold(model, views, fold, walk.interval, walk.stride, walk.step_ms, walk.adaptive_rate)

    def score(self, f: returns.Forecasts, walk: Walk) -> dict[str, float]:
        """Accuracy next to naive, interval coverage, Diebold-Mariano against naive."""
        return returns.score(f, walk.interval, walk.stride)

    def run_metrics(self, result: BacktestResult, champion: str | None, walk: Walk) -> dict[str, float]:
        """The model's pooled test metrics, per fold, per series, baselines and the champion on the same windows."""
        summary, per_fold = result.summary, result.per_fold
        results = {(k if k in _LOGGED_AS else f"test_{k}"): float(v) for k, v in summary.loc["model"].items()}
        forecasts = result.pooled("model")
        if champion is not None:
            theirs = result.pooled("champion")
            results["champion.version"] = float(champion)
            results["champion.rmse_ratio"] = float(summary.loc["champion", "rmse_ratio"])
            _, results["champion.dm_pvalue"] = returns.compare(
                forecasts.y - forecasts.point, theirs.y - theirs.point, forecasts.timestamps, walk.stride
            )
        for name in summary.index.drop(["model", *(["champion"] if champion is not None else [])]):
            for k in ("rmse_ratio", "directional_accuracy", "coverage", "dm_pvalue"):
                results[f"baseline.{name}.{k}"] = float(summary.loc[name, k])
        for _, row in per_fold[per_fold["model"] == "model"].iterrows():
            for k in ("rmse_ratio", "coverage"):
                results[f"fold{int(row['fold'])}.{k}"] = float(row[k])
        for name in np.unique(forecasts.series):
            mask = forecasts.series == name
            y, p = forecasts.y[mask], forecasts.point[mask]
            results[f"{name}.rmse_ratio"] = float(np.sqrt(np.mean((y - p) ** 2) / np.mean(y**2)))
        return results

    def shipped(self, last: returns.Forecasts) -> dict[str, Any]:
        """The interval offsets tracked to the end of the last test block."""
        assert last.calibration is not None
        return {"calibration": asdict(last.calibration)}

    def headline(self, results: dict[str, float]) -> str:
        """rmse_ratio, its DM p-value and the interval's coverage."""
        return f"{super().headline(results)}, coverage {results['test_coverage']:.2f}"

    def progress(self, metrics: dict[str, float]) -> str:
        """RMSE over naive's and the interval's coverage."""
        return f"RMSE/naive {metrics['rmse_ratio']:.4f}  coverage {metrics['coverage']:.3f}"

    def frame(
        self, spec: Any, cutoffs: np.ndarray, closes: np.ndarray, point: np.ndarray, bounds: np.ndarray
    ) -> pd.DataFrame:
        """H rows per series: forecast prices with calibrated intervals and the log returns."""
        return served.returns_frame(spec, cutoffs, closes, point, bounds)

    def realized(self, forecasts: pd.DataFrame, candles: pd.DataFrame, step_ms: int) -> pd.DataFrame:
        """Forecast rows whose target candle has closed, with the actual close and log return.

        ``timestamp`` is the open of the forecast candle; its close is the target. The cutoff close is
        looked up in the same candles, so nothing but stored, validated candles is used.
        """
        if forecasts.empty:
            return forecasts
        closes = candles.set_index("timestamp")["close"]
        out = forecasts.assign(
            actual=forecasts["timestamp"].map(closes), cutoff_close=forecasts["cutoff"].map(closes)
        ).dropna(subset=["actual", "cutoff_close"])
        return out.assign(actual_log_return=np.log(out["actual"] / out["cutoff_close"]))

    def live_metrics(self, rows: pd.DataFrame) -> dict[str, float]:
        """Live error next to the naive random walk's (whose RMSE is the returns' root mean square), coverage, hits."""
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


RETURNS = ReturnsTarget()
