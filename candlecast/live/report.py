"""The live error where users look: one row per series and model version, and a figure in the model's run.

``SeriesLive`` is what the Prefect artifact of a scoring run shows (forecasts scored, live ratio,
recent geometric mean, the backtest's ratio, alarm state); ``plot_live`` draws the per-forecast loss
ratios, their rolling geometric mean and the backtest's promise into ``plots/live_loss_ratio_<series>.png``
of the version's run, next to the backtest's forecast-vs-actual figures.

Units: a returns model's live ratio is squared error over the naive forecast's, so the backtest's
``rmse_ratio`` is drawn squared (its MSE ratio); a volatility model's is QLIKE over the baseline's,
the same units as the backtest's ``qlike_ratio``. The backtest's is a ratio of mean losses, the live
geometric mean one of per-forecast ratios: close for a stationary champion, not identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from candlecast.registry.prediction_store import RETURNS
from candlecast.schema import SeriesKey


@dataclass(frozen=True)
class SeriesLive:
    """One series' live error for one model version: the row of a scoring run's artifact."""

    series: str
    version: str
    scored: int  # matured forecasts scored
    live_ratio: float  # geometric mean loss ratio over them all
    recent_ratio: float  # over the last guard_days (what the guard reads)
    backtest_ratio: float  # the backtest's, in the live ratio's units (NaN when the run lacks it)
    reference: str  # what the ratio is over: naive, or the volatility baseline
    alarm: str  # "none", or each check's first alarm; "retrain asked" once model.degraded was sent

    def row(self) -> dict[str, Any]:
        """The artifact's table row, numbers rounded for reading."""
        out = asdict(self)
        for key in ("live_ratio", "recent_ratio", "backtest_ratio"):
            out[key] = None if not np.isfinite(out[key]) else round(float(out[key]), 4)
        return out


def geometric_mean(ratios: pd.Series) -> float:
    """exp(mean(log ratio)), NaN for none."""
    return float(np.exp(np.log(ratios).mean())) if len(ratios) else float("nan")


def summarise(
    series: SeriesKey, version: str, ratios: pd.Series, backtest: float, reference: str, alarm: str, window: int
) -> SeriesLive:
    """The row of one series and version from its scored history."""
    recent = geometric_mean(ratios.iloc[-window:])
    return SeriesLive(str(series), version, len(ratios), geometric_mean(ratios), recent, backtest, reference, alarm)


def backtest_ratio(client: MlflowClient, run_id: str, series: SeriesKey, kind: str) -> float:
    """The version's backtest ratio in the live ratio's units: rmse_ratio squared, or qlike_ratio (this series')."""
    metrics = client.get_run(run_id).data.metrics
    if kind == RETURNS:
        return float(metrics.get(f"{series.slug}.rmse_ratio", metrics.get("rmse_ratio", float("nan")))) ** 2
    return float(metrics.get(f"series.{series.slug}.qlike_ratio", metrics.get("qlike_ratio", float("nan"))))


def plot_live(
    client: MlflowClient, run_id: str, series: SeriesKey, live: SeriesLive, ratios: pd.Series, window: int, guard: float
) -> str:
    """Draw the live loss ratios of one series into the version's run; the artifact's path.

    A bare ``Figure`` on the Agg canvas, not pyplot: the loop's series threads may draw at the same time,
    and pyplot's current-figure state is shared by the process.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    when = pd.to_datetime(ratios.index, unit="ms", utc=True)
    rolling = np.exp(np.log(ratios).rolling(window, min_periods=1).mean())
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.scatter(when, ratios.to_numpy(), s=6, color="tab:grey", alpha=0.5, label="each matured forecast")
    ax.plot(when, rolling.to_numpy(), color="tab:blue", lw=1.5, label=f"geometric mean, last {window} forecasts")
    if np.isfinite(live.backtest_ratio):
        ax.axhline(live.backtest_ratio, color="tab:green", ls="--", label=f"backtest {live.backtest_ratio:.3f}")
    ax.axhline(guard, color="tab:red", ls=":", label=f"guard {guard:g}")
    ax.axhline(1.0, color="black", lw=0.5)
    ax.set_yscale("log")
    ax.set_ylabel(f"loss ratio to {live.reference}")
    ax.set_title(f"{live.series} v{live.version}: live error vs what the backtest promised ({live.alarm})")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    path = f"plots/live_loss_ratio_{series.slug}.png"
    client.log_figure(run_id, fig, path)
    return path


def markdown(model_name: str, rows: list[SeriesLive]) -> str:
    """A short heading for the table artifact's description."""
    alarms = sum(r.alarm != "none" for r in rows)
    return f"{model_name}: {len(rows)} series x version scored live, {alarms} with an alarm"
