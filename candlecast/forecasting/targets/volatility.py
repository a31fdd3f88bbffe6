"""The volatility target: the realised variance of the next h candles, and Value-at-Risk derived from it.

The network ends in one log variance per window, trained with QLIKE; every classical volatility model
forecasts the same label through the same interface. The gate reads ``qlike_ratio``: QLIKE over the
best classical model's on the same windows. Fold protocol and VaR live in candlecast.forecasting.risk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting import risk, served
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.risk_baselines import RISK_BASELINES, make_risk_baseline
from candlecast.forecasting.risk_metrics import qlike
from candlecast.forecasting.splits import Fold
from candlecast.forecasting.targets.base import BacktestResult, Target, Walk
from candlecast.schema import timeframe_ms

if TYPE_CHECKING:
    from candlecast.models import HeadLoss


class VolatilityTarget(Target):
    """The next h candles' variance (one number per window) and the 95% and 99% VaR from it."""

    key = "volatility"
    bundle_key = "variance"
    registry_name = "candlecast-risk"
    store_kind = served.SERVED["variance"].store_kind
    gate_metric = "qlike_ratio"
    gate_reference = "the best classical volatility model"
    fold_metric = "qlike"
    objective_name = "qlike_ratio"
    table_columns = risk.RISK_TABLE_COLUMNS
    table_prefix = "risk"
    shown = {
        "qlike": "QLIKE",
        "qlike_ratio_garch": "/GARCH",
        "qlike_ratio_har": "/HAR",
        "dm_p_garch": "DM p GARCH",
        "dm_p_har": "DM p HAR",
        "var95_hit_rate": "VaR95 hits",
        "var99_hit_rate": "VaR99 hits",
        "var99_kupiec_p": "Kupiec p",
        "var99_christoffersen_p": "Christ. p",
        "fit_seconds": "fit s",
    }
    default_models = "naive_vol,ewma,garch,gjr_garch,har,lstm"
    default_references = ("garch", "har")

    def view(self, s: SeriesArrays) -> SeriesArrays:
        """The realised variance of the next h candles as the one target."""
        return risk.variance_view(s)

    def network_horizon(self, horizon: int) -> int:
        """One number per window, whatever h."""
        return 1

    def loss(self, quantiles: list[float]) -> HeadLoss:
        """QLIKE on the log variance."""
        from candlecast.models import LogVarianceQLike

        return LogVarianceQLike()

    def decode(self, out: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The exp of the log of the scaled variance, times the scale."""
        return served.decode_variance(out, scale)

    @property
    def baselines(self) -> Iterable[str]:
        """naive_vol, EWMA, GARCH, GJR-GARCH and the HAR family (HAR-RV, HAR-range, HARQ, HAR-J)."""
        return RISK_BASELINES

    def configured_baselines(self, cfg: RunConfig) -> list[str]:
        """``backtest.risk_baselines``."""
        return list(cfg.backtest.risk_baselines)

    def baseline(self, name: str, cfg: RunConfig) -> Forecaster:
        """A volatility baseline for the run's horizon."""
        return make_risk_baseline(name, cfg.features.horizon, timeframe_ms(cfg.data.timeframe))

    def run_fold(self, model: Forecaster, series: list[SeriesArrays], fold: Fold, walk: Walk) -> risk.RiskForecasts:
        """Fit on the variance view, calibrate VaR on the calibration block, forecast test."""
        return risk.run_risk_fold(model, series, fold, walk.stride, walk.step_ms, walk.adaptive_rate, walk.refit)

    def score(self, f: risk.RiskForecasts, walk: Walk) -> dict[str, float]:
        """QLIKE, log-variance MSE and each VaR's hit rate and tests."""
        return risk.score_risk(f, walk.horizon, walk.step_ms)

    def _references(self, walk: Walk) -> tuple[str, ...]:
        return self.default_references if walk.references is None else walk.references

    def against(self, name: str, f: risk.RiskForecasts, pooled: dict[str, Any], walk: Walk) -> dict[str, float]:
        """QLIKE ratio and Diebold-Mariano p-value against each reference model."""
        out: dict[str, float] = {}
        ours = float(np.nanmean(qlike(f.realised, f.forecast)))
        for ref in self._references(walk):
            if ref in pooled and ref != name:
                out[f"qlike_ratio_{ref}"] = ours / float(np.nanmean(qlike(pooled[ref].realised, pooled[ref].forecast)))
                out[f"dm_p_{ref}"] = risk.compare_risk(f, pooled[ref], walk.horizon, walk.stride)[1]
        return out

    def per_fold_ratios(self, result: BacktestResult, walk: Walk) -> None:
        """Each fold's QLIKE over each reference's on that fold."""
        frame = result.per_fold
        for ref in self._references(walk):
            ref_qlike = frame[frame["model"] == ref].set_index("fold")["qlike"]
            if len(ref_qlike):
                frame[f"qlike_ratio_{ref}"] = frame["qlike"] / frame["fold"].map(ref_qlike)

    def objective(self, model: Forecaster, series: list[SeriesArrays], fold: Fold, walk: Walk, cfg: RunConfig) -> float:
        """QLIKE over naive volatility's on the same fold (cheap: no GARCH fit per trial)."""
        ours = self.run_fold(model, series, fold, walk)
        naive = self.run_fold(self.baseline("naive_vol", cfg), series, fold, walk)
        return float(
            np.nanmean(qlike(ours.realised, ours.forecast)) / np.nanmean(qlike(naive.realised, naive.forecast))
        )

    def run_metrics(self, result: BacktestResult, champion: str | None, walk: Walk) -> dict[str, float]:
        """QLIKE against the best reference baseline (the gate's numbers), VaR per fold, the champion.

        The gate's references are the configured ``backtest.risk_baselines``: configure the HAR family
        (har, har_range, harq, har_j) and the model must beat the best of every configured one.
        """
        summary = result.summary
        baselines = list(self._references(walk))
        results = {f"test_{k}": float(v) for k, v in summary.loc["model"].items() if np.isfinite(v)}
        results |= _gate_numbers(result.pooled, baselines, champion is not None, walk)
        for name in baselines:
            results[f"baseline.{name}.qlike"] = float(summary.loc[name, "qlike"])
            results[f"baseline.{name}.var99_hit_rate"] = float(summary.loc[name, "var99_hit_rate"])
        per_fold = result.per_fold[result.per_fold["model"] == "model"]
        for _, row in per_fold.iterrows():
            for k in ("qlike", "var99_hit_rate", "var99_kupiec_p", "var99_christoffersen_p", "var95_hit_rate"):
                results[f"fold{int(row['fold'])}.{k}"] = float(row[k])
        if champion is not None:
            results["champion.version"] = float(champion)
        names = np.unique(result.pooled("model").series)
        if len(names) > 1:  # one model for many coins (the pooled one): the gate judges it coin by coin
            for name in names:
                pick = partial(_coin, result, str(name))
                numbers = _gate_numbers(pick, baselines, champion is not None, walk, f" on {name}")
                results |= {f"series.{name}.{k}": v for k, v in numbers.items()}
        return results

    def shipped(self, last: risk.RiskForecasts) -> dict[str, Any]:
        """The standardised return quantile per VaR level, tracked to the end of the last test block."""
        return {"var_quantiles": dict(last.quantiles)}

    def progress(self, metrics: dict[str, float]) -> str:
        """QLIKE and the 99% VaR's hit rate."""
        return f"QLIKE {metrics['qlike']:.4f}  VaR99 hits {metrics['var99_hit_rate']:.3f}"

    def frame(
        self, spec: Any, cutoffs: np.ndarray, closes: np.ndarray, point: np.ndarray, bounds: np.ndarray
    ) -> pd.DataFrame:
        """One row per series: the next h candles' variance and volatility, and each VaR as a return and a price."""
        return served.variance_frame(spec, cutoffs, closes, point, bounds)

    def realized(self, forecasts: pd.DataFrame, candles: pd.DataFrame, step_ms: int) -> pd.DataFrame:
        """Rows whose h candles after the cutoff have all closed, with their realised variance and return."""
        if forecasts.empty:
            return forecasts
        log_close = np.log(candles.set_index("timestamp")["close"])
        out = []
        for _, row in forecasts.iterrows():
            path = log_close.reindex(int(row["cutoff"]) + step_ms * np.arange(int(row["horizon"]) + 1))
            if path.notna().all():  # a missing candle would make the realised variance a guess
                steps = np.diff(path.to_numpy())
                out.append(
                    row.to_dict()
                    | {"realised_variance": float(np.sum(steps**2)), "realised_return": float(steps.sum())}
                )
        return pd.DataFrame(out)

    def live_metrics(self, rows: pd.DataFrame) -> dict[str, float]:
        """Live QLIKE of realised variance forecasts and, where VaR was stored, the VaR hit rates."""
        metrics = {
            "live_qlike": float(
                np.nanmean(qlike(rows["realised_variance"].to_numpy(), rows["forecast_variance"].to_numpy()))
            ),
            "live_risk_rows": float(len(rows)),
        }
        for level in risk.VAR_LEVELS:
            if f"{level}_return" in rows:
                metrics[f"live_{level}_hit_rate"] = float(np.mean(rows["realised_return"] < rows[f"{level}_return"]))
        return metrics


def _mean_qlike(f: risk.RiskForecasts) -> float:
    return float(np.nanmean(qlike(f.realised, f.forecast)))


def _coin(result: BacktestResult, name: str, model: str) -> risk.RiskForecasts:
    """One model's forecasts on one coin's windows."""
    f = result.pooled(model)
    return f.subset(f.series == name)


def _gate_numbers(
    pick: Callable[[str], risk.RiskForecasts], baselines: list[str], champion: bool, walk: Walk, where: str = ""
) -> dict[str, float]:
    """The gate's numbers on the windows ``pick`` gives: every window, or one coin's.

    QLIKE over the best configured baseline there with the DM p-value against it; the champion's too.
    """
    qlikes = {b: _mean_qlike(pick(b)) for b in baselines}
    scored = [b for b in baselines if np.isfinite(qlikes[b])]
    if not scored:
        raise ValueError(f"none of the volatility baselines {baselines} scored a QLIKE{where}: fetch more candles")
    best = min(scored, key=qlikes.__getitem__)  # a NaN would win or lose min() by position
    ours = pick("model")
    out = {
        "qlike_ratio": _mean_qlike(ours) / qlikes[best],
        "dm_pvalue": risk.compare_risk(ours, pick(best), walk.horizon, walk.stride)[1],
        "best_baseline_index": float(baselines.index(best)),
    }
    if champion:
        theirs = pick("champion")
        out["champion.qlike_ratio"] = _mean_qlike(theirs) / qlikes[best]
        out["champion.dm_pvalue"] = risk.compare_risk(ours, theirs, walk.horizon, walk.stride)[1]
    return out


VOLATILITY = VolatilityTarget()
