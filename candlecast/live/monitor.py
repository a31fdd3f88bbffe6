"""Live scoring and drift per series and champion version: matured forecasts scored, alarms turned into one retrain.

After each stored candle the loop asks ``Monitor.check``: the champion's forecasts of that series whose
horizon has fully closed are scored with the target's own ``realized`` (the existing scoring's join),
each new loss ratio goes to the champion's MLflow run as a metric stepped by candle (the live error
over time, per series), and ``drift.alarms`` judge the whole scored history. The first alarm of a
champion version emits ``candlecast.model.degraded`` once: the retrain record is written before the
event and marked after it, so a crash between the two re-sends the same event (same id), never a second
retrain for that version. A volatility champion's ratio is its QLIKE over the classical baseline its
gate named best, refitted causally at each cutoff (candlecast.live.baseline), judged by the same checks.
Every ``plot_every`` scorings the series' figure in the champion's run is redrawn (candlecast.live.report);
``table`` gives the rows a scoring run's Prefect artifact shows, for every version in the store.
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
from candlecast.live.baseline import LiveBaseline, baseline_variances, live_baseline
from candlecast.live.drift import (
    Alarm,
    alarms,
    loss_ratios,
    qlike_ratios,
    realized_returns,
    realized_variances,
    window_of,
)
from candlecast.live.report import SeriesLive, backtest_ratio, plot_live, summarise
from candlecast.live.state import retrain_record, series_state, update_series_state, write_retrain_record
from candlecast.registry import tracking
from candlecast.registry.loading import load_version
from candlecast.registry.prediction import champion_version
from candlecast.registry.prediction_store import RETURNS, ParquetPredictionStore, prediction_store
from candlecast.schema import SeriesKey, timeframe_ms
from candlecast.settings import Settings

log = logging.getLogger(__name__)

#: How the core sends an event: (event name, resource id, payload, a key that makes its id deterministic).
Emit = Callable[[str, str, dict[str, Any], str], None]
DEGRADED = "candlecast.model.degraded"
NAIVE = LiveBaseline("naive", "naive")  # what a returns champion's loss is a ratio to
UNSCORED = LiveBaseline("none", "no baseline the gate named")  # a volatility run without the gate's numbers


def model_resource(model_name: str) -> str:
    """The resource id of a registered model's events."""
    return f"candlecast.model.{model_name}"


class Monitor:
    """Scores and judges one config's champion, series by series; safe to call from the series' threads."""

    plot_every = 24  # scorings between redraws of a series' live figure (about 0.2 s each, off the forecast path)

    def __init__(self, settings: Settings, cfg: RunConfig, emit: Emit):
        self.settings, self.cfg, self.emit = settings, cfg, emit
        self.client = tracking.client(settings)
        self.kind = store_kind(cfg.target)
        self._train_end: dict[str, int | None] = {}
        self._baselines: dict[tuple[str, str], LiveBaseline] = {}
        self._lock = threading.Lock()
        self._read: dict[str, tuple[pd.DataFrame, set[str]]] = {}  # series -> forecasts read so far, their files

    def check(self, series: SeriesKey) -> list[Alarm]:
        """Score the series' matured forecasts of the champion, log the new ones, emit degraded on an alarm."""
        name = self.cfg.promotion.model_name
        version = champion_version(self.client, name)
        if version is None:
            return []
        forecasts = self._forecasts(series)
        forecasts = forecasts[forecasts["model_version"].astype(str) == version] if len(forecasts) else forecasts
        if forecasts.empty:
            return []
        candles = CandleStore(self.settings.candles_dir).read(series)
        step = timeframe_ms(series.timeframe)
        run_id = str(forecasts["run_id"].iloc[0])
        ratios, reference = self.ratios(series, run_id, forecasts, candles)
        new = self._log_new(series, version, ratios, run_id)
        newest = int(candles["timestamp"].iloc[-1]) if len(candles) else None
        found = alarms(ratios, self.cfg.live, step, self._train_end_of(name, version), newest, reference.name)
        if found:
            self._degrade(name, version, series, found)
        if new:
            self._redraw(series, version, run_id, ratios, reference, found)
        return found

    def ratios(
        self, series: SeriesKey, run_id: str, forecasts: pd.DataFrame, candles: pd.DataFrame
    ) -> tuple[pd.Series, LiveBaseline]:
        """One version's matured forecasts' loss ratios (indexed by cutoff), and what they are a ratio to."""
        cap, horizon = self.cfg.live.loss_ratio_cap, self.cfg.features.horizon
        if self.kind == RETURNS:
            return loss_ratios(realized_returns(forecasts, candles), horizon, cap), NAIVE
        key = (run_id, series.slug)
        if key not in self._baselines:  # one look at the run per version and series
            try:
                self._baselines[key] = live_baseline(self.client, run_id, series)
            except ValueError as exc:  # said once; the loop goes on serving and forecasting
                log.warning("%s: %s; its live error is not scored", series, exc)
                self._baselines[key] = UNSCORED
        base, step = self._baselines[key], timeframe_ms(series.timeframe)
        rows = realized_variances(forecasts, candles, step)
        if rows.empty or base is UNSCORED:
            return pd.Series(dtype="float64", name="loss_ratio"), base
        cutoffs = sorted(int(c) for c in rows["cutoff"].unique())
        variances = baseline_variances(self.settings, series, base.name, horizon, step, candles, cutoffs)
        return qlike_ratios(rows, variances, cap), base

    def table(self) -> list[SeriesLive]:
        """Every series and version of this config's model in the store: the rows of a scoring run's artifact."""
        out = []
        window = window_of(self.cfg.live, timeframe_ms(self.cfg.data.timeframe))
        for series in self.cfg.series:
            forecasts = self._forecasts(series)
            if forecasts.empty:
                continue
            candles = CandleStore(self.settings.candles_dir).read(series)
            for (version, run_id), group in forecasts.groupby(["model_version", "run_id"]):
                ratios, reference = self.ratios(series, str(run_id), group, candles)
                if ratios.empty:
                    continue
                found = alarms(ratios, self.cfg.live, timeframe_ms(series.timeframe), reference=reference.name)
                live = self._summary(series, str(version), str(run_id), ratios, reference, found, window)
                out.append(live)
        return out

    def _forecasts(self, series: SeriesKey) -> pd.DataFrame:
        """The model's stored forecasts of the series; from a parquet store only the files new since the last call."""
        store = prediction_store(self.settings, self.cfg.predict.store_url, self.kind)
        if isinstance(store, ParquetPredictionStore):  # a file is one (cutoff, version): written once, read once
            known, seen = self._read.get(series.slug, (pd.DataFrame(), set()))
            new, seen = store.read_new(series, seen)
            forecasts = known if new.empty else new if known.empty else pd.concat([known, new], ignore_index=True)
            self._read[series.slug] = (forecasts, seen)
        else:
            forecasts = store.read_all(series)
        if forecasts.empty:
            return forecasts
        return forecasts[forecasts["model_name"] == self.cfg.promotion.model_name]

    def _log_new(self, series: SeriesKey, version: str, ratios: pd.Series, run_id: str) -> int:
        """Each newly matured forecast's loss ratio as a metric of the champion's run, stepped by candle; how many."""
        from mlflow.entities import Metric

        scored = series_state(self.settings, series).get("scored", {})
        through = int(scored.get(version, -1))
        new = ratios[ratios.index > through]
        if new.empty:
            return 0
        step = timeframe_ms(series.timeframe)
        key = f"live_loss_ratio_{series.slug}"
        metrics = [Metric(key, float(v), int(c), int(c) // step) for c, v in new.items()]
        self.client.log_batch(run_id, metrics=metrics)
        update_series_state(self.settings, series, scored=scored | {version: int(new.index[-1])})
        return len(new)

    def _summary(
        self,
        series: SeriesKey,
        version: str,
        run_id: str,
        ratios: pd.Series,
        reference: LiveBaseline,
        found: list[Alarm],
        window: int,
    ) -> SeriesLive:
        alarm = ", ".join(f"{a.reason} at {pd.Timestamp(a.at, unit='ms', tz='UTC'):%Y-%m-%d %H:%M}" for a in found)
        alarm = alarm or "none"
        if retrain_record(self.settings, self.cfg.promotion.model_name, version).get("emitted"):
            alarm += " (retrain asked)"
        backtest = backtest_ratio(self.client, run_id, series, self.kind)
        return summarise(series, version, ratios, backtest, reference.label, alarm, window)

    def _redraw(
        self,
        series: SeriesKey,
        version: str,
        run_id: str,
        ratios: pd.Series,
        reference: LiveBaseline,
        found: list[Alarm],
    ) -> None:
        """Redraw the series' live figure in the champion's run once ``plot_every`` forecasts scored since the last."""
        drawn = series_state(self.settings, series).get("plotted", {})
        if version in drawn and len(ratios) - int(drawn[version]) < self.plot_every:
            return
        window = window_of(self.cfg.live, timeframe_ms(series.timeframe))
        live = self._summary(series, version, run_id, ratios, reference, found, window)
        plot_live(self.client, run_id, series, live, ratios, window, self.cfg.live.guard_ratio)
        update_series_state(self.settings, series, plotted=drawn | {version: len(ratios)})

    def _train_end_of(self, name: str, version: str) -> int | None:
        """When the champion's training candles end: loaded once per version, and only if its age is judged."""
        if self.cfg.live.max_model_age_days is None:
            return None
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
