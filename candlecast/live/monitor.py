"""Live scoring and drift per series and champion version: matured forecasts scored, alarms turned into one retrain.

After each stored candle the loop asks ``Monitor.check``: the champion's forecasts of that series whose
horizon has fully closed are scored with the target's own ``realized`` (the existing scoring's join),
each new loss ratio goes to the champion's MLflow run as a metric stepped by candle (the live error
over time, per series), and ``drift.alarms`` judge the whole scored history. The first alarm of a
champion version emits ``candlecast.model.degraded`` once: the retrain record is written before the
event and marked after it, so a crash between the two re-sends the same event (same id), never a second
retrain for that version. Return models only; a volatility champion's live baseline is not built yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.served import store_kind
from candlecast.live.drift import Alarm, alarms, loss_ratios, realized_returns
from candlecast.live.state import retrain_record, series_state, update_series_state, write_retrain_record
from candlecast.registry import tracking
from candlecast.registry.loading import load_version
from candlecast.registry.prediction import champion_version
from candlecast.registry.prediction_store import RETURNS, prediction_store
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

#: How the core sends an event: (event name, resource id, payload, a key that makes its id deterministic).
Emit = Callable[[str, str, dict[str, Any], str], None]
DEGRADED = "candlecast.model.degraded"


def model_resource(model_name: str) -> str:
    """The resource id of a registered model's events."""
    return f"candlecast.model.{model_name}"


class Monitor:
    """Scores and judges one config's champion, series by series; safe to call from the series' threads."""

    def __init__(self, settings: Settings, cfg: RunConfig, emit: Emit):
        self.settings, self.cfg, self.emit = settings, cfg, emit
        self.client = tracking.client(settings)
        self._train_end: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def check(self, series: SeriesKey) -> list[Alarm]:
        """Score the series' matured forecasts of the champion, log the new ones, emit degraded on an alarm."""
        if store_kind(self.cfg.target) != RETURNS:
            return []
        name = self.cfg.promotion.model_name
        version = champion_version(self.client, name)
        if version is None:
            return []
        forecasts = prediction_store(self.settings, self.cfg.predict.store_url, RETURNS).read_all(series)
        if forecasts.empty:
            return []
        forecasts = forecasts[forecasts["model_version"].astype(str) == version]
        candles = CandleStore(self.settings.candles_dir).read(series)
        step = timeframe_ms(series.timeframe)
        rows = realized_returns(forecasts, candles)
        ratios = loss_ratios(rows, self.cfg.features.horizon, self.cfg.live.loss_ratio_cap)
        self._log_new(series, version, ratios, forecasts)
        newest = int(candles["timestamp"].iloc[-1]) if len(candles) else None
        found = alarms(ratios, self.cfg.live, step, self._train_end_of(name, version), newest)
        if found:
            self._degrade(name, version, series, found)
        return found

    def _log_new(self, series: SeriesKey, version: str, ratios: pd.Series, forecasts: pd.DataFrame) -> None:
        """Each newly matured forecast's loss ratio as a metric of the champion's run, stepped by candle."""
        from mlflow.entities import Metric

        scored = series_state(self.settings, series).get("scored", {})
        through = int(scored.get(version, -1))
        new = ratios[ratios.index > through]
        if new.empty:
            return
        run_id = str(forecasts["run_id"].iloc[0])
        step = timeframe_ms(series.timeframe)
        key = f"live_loss_ratio_{series.slug}"
        metrics = [Metric(key, float(v), int(c), int(c) // step) for c, v in new.items()]
        self.client.log_batch(run_id, metrics=metrics)
        update_series_state(self.settings, series, scored=scored | {version: int(new.index[-1])})

    def _train_end_of(self, name: str, version: str) -> int | None:
        if version not in self._train_end:
            self._train_end[version] = load_version(self.client, name, version).spec.train_end
        return self._train_end[version]

    def _degrade(self, name: str, version: str, series: SeriesKey, found: list[Alarm]) -> None:
        """Emit ``model.degraded`` for this champion version once (recorded before, marked after)."""
        with self._lock:
            record = retrain_record(self.settings, name, version)
            if record.get("emitted"):
                return
            if not record:
                record = {
                    "model_name": name, "version": version, "series": str(series),
                    "reasons": [a.reason for a in found], "details": [a.detail for a in found],
                    "at": found[0].at, "recorded_at": datetime.now(UTC).isoformat(),
                }  # fmt: skip
                write_retrain_record(self.settings, name, version, record)
            payload = {k: record[k] for k in ("version", "series", "reasons", "details", "at")}
            self.emit(DEGRADED, model_resource(name), payload, f"degraded:{name}:{version}")
            write_retrain_record(self.settings, name, version, record | {"emitted": True})
            log.warning("%s v%s degraded (%s): retrain requested", name, version, "; ".join(record["details"]))
