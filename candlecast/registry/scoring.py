"""Scoring stored forecasts against the candles that arrived later: live error per model version.

Live metrics use the same units as the backtest, and each target defines them
(``Target.realized``, ``Target.live_metrics``): return forecasts get ``live_rmse_ratio`` next to the
``rmse_ratio`` they were promoted on, risk forecasts their live QLIKE and Value-at-Risk hit rates once
all h candles after their cutoff have closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.targets import TARGETS
from candlecast.registry import tracking
from candlecast.registry.prediction_store import prediction_store
from candlecast.schema import timeframe_ms
from candlecast.settings import Settings


@dataclass(frozen=True)
class ScoreOutcome:
    """How many forecast rows had realised outcomes, and the live metrics logged per model version."""

    scored_rows: int
    by_version: dict[str, dict[str, float]]


def score_forecasts(settings: Settings, cfg: RunConfig) -> ScoreOutcome:
    """Join every stored forecast (each target's store) with the realized candles; log live metrics per version's run.

    Each target says when its forecasts are realised and what its live metrics are; a store shared by
    two targets is scored once.
    """
    store = CandleStore(settings.candles_dir)
    candles = {s: store.read(s) for s in cfg.series}
    step_ms = timeframe_ms(cfg.data.timeframe)
    by_kind = {target.store_kind: target for target in TARGETS.values()}
    client = tracking.client(settings)
    by_version: dict[str, dict[str, float]] = {}
    total = 0
    for kind, target in by_kind.items():
        stored = prediction_store(settings, cfg.predict.store_url, kind)
        rows = _concat([target.realized(stored.read_all(s), candles[s], step_ms) for s in cfg.series])
        if rows.empty:
            continue
        total += len(rows)
        for (name, version, run_id), group in rows.groupby(["model_name", "model_version", "run_id"]):
            metrics = target.live_metrics(group)
            by_version[f"{name} v{version}"] = metrics
            for key, value in metrics.items():
                if np.isfinite(value):
                    client.log_metric(run_id, key, value)
    return ScoreOutcome(total, by_version)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
