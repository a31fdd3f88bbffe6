"""A volatility champion's live reference: the classical baseline its gate named best, refitted causally.

The gate judged the champion by QLIKE over the best configured classical volatility model's on the same
windows (``best_baseline_index`` into ``backtest.risk_baselines``; per coin for a pooled model). Live,
that baseline forecasts each matured cutoff from the stored candles up to that cutoff only: fitted on
the candles up to the first cutoff it has not forecast yet, each forecast then from the candles up to
its own cutoff (the live loop adds one cutoff at a time, so each is refitted at its cutoff; a batch
catching up shares one fit). Only the cheap ones are refitted live (naive volatility, EWMA, GARCH,
GJR-GARCH: one pass over the returns, a GARCH fit in tens of ms); when the gate's best is of the HAR
family, the live reference is the configured cheap baseline with the lowest backtest QLIKE, and its
label says so. Forecasts are appended to ``<home>/live/baselines/<series>_<name>.jsonl``, so each
cutoff is fitted once and a restart resumes.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from candlecast.io import append_jsonl, read_jsonl
from candlecast.live.state import live_dir
from candlecast.schema import Range, SeriesKey
from candlecast.settings import Settings

CHEAP = ("naive_vol", "ewma", "garch", "gjr_garch")  # refitted at every cutoff without slowing the loop


@dataclass(frozen=True)
class LiveBaseline:
    """Which baseline the live ratio is over, and in words why (the gate's best, or the cheap stand-in)."""

    name: str
    label: str


def live_baseline(client: MlflowClient, run_id: str, series: SeriesKey) -> LiveBaseline:
    """The baseline the champion's gate named best on this series (the run's numbers), or its cheap stand-in."""
    metrics = client.get_run(run_id).data.metrics
    index = metrics.get(f"series.{series.slug}.best_baseline_index", metrics.get("best_baseline_index"))
    if index is None:
        raise ValueError(
            f"run {run_id} records no best_baseline_index (not a volatility run the gate judged): "
            "retrain the model with this candlecast to have it scored live"
        )
    with tempfile.TemporaryDirectory() as tmp:  # the gate's references: the run's backtest.risk_baselines
        path = client.download_artifacts(run_id, "config/run_config.json", tmp)
        names = list(json.loads(Path(path).read_text())["backtest"]["risk_baselines"])
    best = names[int(index)]
    if best in CHEAP:
        return LiveBaseline(best, f"{best} (the gate's best)")
    cheap = [n for n in names if n in CHEAP and np.isfinite(metrics.get(f"baseline.{n}.qlike", np.nan))]
    if not cheap:
        raise ValueError(f"the gate's best baseline {best} is not refitted live and none of {CHEAP} was configured")
    stand_in = min(cheap, key=lambda n: metrics[f"baseline.{n}.qlike"])
    return LiveBaseline(stand_in, f"{stand_in} (the gate's best, {best}, is not refitted live)")


def _cache(settings: Settings, series: SeriesKey, name: str) -> Path:
    return live_dir(settings) / "baselines" / f"{series.slug}_{name}.jsonl"


def baseline_variances(
    settings: Settings,
    series: SeriesKey,
    name: str,
    horizon: int,
    step_ms: int,
    candles: pd.DataFrame,
    cutoffs: list[int],
) -> pd.Series:
    """The baseline's variance forecast of the next ``horizon`` candles at each cutoff, from candles up to it."""
    path = _cache(settings, series, name)
    known = {int(r["cutoff"]): float(r["variance"]) for r in read_jsonl(path) if int(r["horizon"]) == horizon}
    todo = sorted(set(cutoffs) - set(known))
    if todo:
        for cutoff, variance in _forecast(name, horizon, step_ms, candles, todo).items():
            append_jsonl({"cutoff": cutoff, "horizon": horizon, "variance": variance}, path)
            known[cutoff] = variance
    return pd.Series(known, dtype="float64").reindex(cutoffs)


def _forecast(name: str, horizon: int, step_ms: int, candles: pd.DataFrame, cutoffs: list[int]) -> dict[int, float]:
    """Fit on the candles up to the first cutoff, forecast each cutoff from the candles up to it."""
    from candlecast.features.windows import SeriesArrays  # the risk baselines' row type (loads torch: risk only)
    from candlecast.forecasting.risk_baselines import make_risk_baseline
    from candlecast.forecasting.splits import Fold

    seen = candles[candles["timestamp"] <= cutoffs[-1]]
    ts = seen["timestamp"].to_numpy("int64")
    n = len(ts)
    arrays = SeriesArrays(
        "live", ts, np.empty((n, 0)), np.full((n, 1), np.nan), seen["close"].to_numpy("float64"), columns=[]
    )
    train = Range(int(ts[0]), cutoffs[0])
    model = make_risk_baseline(name, horizon, step_ms)
    model.fit([arrays], Fold(train, train, train, train))
    rows = np.minimum(np.searchsorted(ts, cutoffs), n - 1)
    point, _ = model.forecast(arrays, rows)
    out = zip(cutoffs, ts[rows], point[:, 0], strict=True)
    return {c: float(v) for c, t, v in out if t == c and np.isfinite(v)}  # a cutoff with no stored candle: none
