"""Batch prediction from the registry's champion into the prediction store, with lineage on every row.

The champion is loaded once per run. Every row carries the model name, version, run id, data cutoff
and creation time. Writing the same (series, cutoff, version) again replaces the earlier rows, so a
re-run is idempotent; every write is atomic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.served import store_kind
from candlecast.registry.loading import load_version
from candlecast.registry.local_registry import CHAMPION, alias_version, reader
from candlecast.registry.prediction_store import RISK, prediction_store
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionOutcome:
    """What a prediction run did: the champion version used and the files written, or why it was skipped."""

    model_version: str | None
    files: list[str] = field(default_factory=list)
    skipped: str | None = None


class ChampionRefused(ValueError):
    """The champion may not serve this config (trained on stale data, or for another timeframe)."""


def predict_champion(settings: Settings, cfg: RunConfig) -> PredictionOutcome:
    """Forecast every configured series with models:/<promotion.model_name>@champion, into its target's store."""
    return _predict_with(settings, cfg, cfg.promotion.model_name, store_kind(cfg.target))


def predict_risk_champion(settings: Settings, cfg: RunConfig) -> PredictionOutcome:
    """Beside a return model's forecasts: volatility and VaR from models:/<predict.risk_model_name>@champion.

    Skipped (with the reason) for a config whose own target fills the risk store (its own model is the
    risk model), when ``predict.risk_model_name`` is null, or when no risk model has passed its gate yet.
    """
    if store_kind(cfg.target) == RISK:
        return PredictionOutcome(model_version=None, skipped="this config's own model forecasts the risk")
    if cfg.predict.risk_model_name is None:
        return PredictionOutcome(model_version=None, skipped="predict.risk_model_name is null: no risk forecasts")
    return _predict_with(settings, cfg, cfg.predict.risk_model_name, RISK)


def _predict_with(settings: Settings, cfg: RunConfig, name: str, kind: str) -> PredictionOutcome:
    """Forecast every configured series from its latest stored candles with models:/<name>@champion."""
    client = reader(settings)  # sqlite3 on a local registry: no MLflow store start-up
    version = champion_version(client, name)
    if version is None:
        return no_champion(name)
    model_version = client.get_model_version(name, version)
    model = load_version(client, name, version)  # the lean runtime when the bundle carries its export
    spec = model.spec
    check_timeframe(name, version, spec.timeframe, cfg)
    store = CandleStore(settings.candles_dir)
    out = prediction_store(settings, cfg.predict.store_url, kind)
    created_at = datetime.now(UTC).isoformat()
    files = []
    for series in cfg.series:
        candles = store.read(series)
        if candles.empty:
            raise ValueError(f"no candles stored for {series}: ingest it before predicting")
        check_age(name, version, spec.train_end, int(candles["timestamp"].iloc[-1]), cfg.predict.max_model_age_days)
        forecast = model.predict(candles.tail(spec.min_candles + 1).reset_index(drop=True), symbol=series.symbol)
        files.append(out.write(series, with_lineage(forecast, series, name, version, model_version.run_id, created_at)))
    return PredictionOutcome(model_version=version, files=files)


def with_lineage(
    forecast: pd.DataFrame, series: SeriesKey, name: str, version: str, run_id: str | None, created_at: str
) -> pd.DataFrame:
    """A series' forecast rows with what made them: the series, the model version and run, the time."""
    return forecast.assign(
        exchange=series.exchange,
        symbol=series.symbol,
        timeframe=series.timeframe,
        model_name=name,
        model_version=version,
        run_id=run_id,
        created_at=created_at,
    )


def champion_version(client: Any, name: str) -> str | None:
    """The version models:/<name>@champion points at, or None before any model has passed the gate."""
    return alias_version(client, name, CHAMPION)


def no_champion(name: str) -> PredictionOutcome:
    """A skipped prediction, with the reason logged: nothing has passed the promotion gate yet."""
    reason = f"no @champion for {name} yet: no model has passed the promotion gate, nothing to predict"
    log.warning(reason)
    return PredictionOutcome(model_version=None, skipped=reason)


def check_timeframe(name: str, version: str, trained_on: str, cfg: RunConfig) -> None:
    """Refuse a champion trained on another timeframe than the config predicts."""
    if trained_on != cfg.data.timeframe:
        raise ChampionRefused(
            f"{name} v{version} was trained on {trained_on} candles but this config predicts "
            f"{cfg.data.timeframe}: train a model for {cfg.data.timeframe} or change data.timeframe"
        )


def check_age(name: str, version: str, train_end: int | None, newest: int, max_days: float | None) -> None:
    """Refuse a champion whose training data ends too long before the newest stored candle."""
    if max_days is None or train_end is None:
        return
    age_days = (newest - train_end) / 86_400_000
    if age_days > max_days:
        raise ChampionRefused(
            f"{name} v{version} was trained on candles up to {_iso(train_end)}, {age_days:.1f} days before the "
            f"newest stored candle ({_iso(newest)}), over predict.max_model_age_days={max_days}: retrain "
            "(candlecast run, or the train deployment) or raise the limit"
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
