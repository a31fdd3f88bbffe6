"""Forecasts of one series at given cutoffs from the @champion, through the lean runtime.

What ``candlecast.candles.stored`` asks for: each candle in ``[first, cutoff]`` gets one forecast made
from the candles up to it (the cutoff it really saw, also after a catch-up), stored with lineage.
A cutoff already forecast by this champion version is skipped, so a replayed event changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.served import store_kind
from candlecast.registry.loading import load_version
from candlecast.registry.local_registry import reader
from candlecast.registry.prediction import champion_version, check_age, check_timeframe, no_champion, with_lineage
from candlecast.registry.prediction_store import ParquetPredictionStore, SqlPredictionStore, prediction_store
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


@dataclass(frozen=True)
class SeriesForecasts:
    """What one live prediction did for a series: the champion version, cutoffs written and skipped."""

    model_version: str | None
    written: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    skipped: str | None = None


def stored_cutoffs(store: ParquetPredictionStore | SqlPredictionStore, series: SeriesKey, version: str) -> set[int]:
    """Cutoffs of the series already forecast by ``version``."""
    if isinstance(store, ParquetPredictionStore):
        files = (store.root / series.slug).glob(f"cutoff=*_v{version}.parquet")
        return {int(f.stem.split("=")[1].split("_v")[0]) for f in files}
    rows = store.read_all(series)
    if rows.empty:
        return set()
    return set(rows.loc[rows["model_version"].astype(str) == version, "cutoff"].astype("int64"))


def forecast_cutoffs(settings: Settings, cfg: RunConfig, series: SeriesKey, first: int, cutoff: int) -> SeriesForecasts:
    """One forecast per stored candle of ``series`` opened in ``[first, cutoff]`` not yet forecast by the champion."""
    name = cfg.promotion.model_name
    client = reader(settings)  # sqlite3 on a local registry: no MLflow store start-up
    version = champion_version(client, name)
    if version is None:
        return SeriesForecasts(None, skipped=no_champion(name).skipped)
    out = prediction_store(settings, cfg.predict.store_url, store_kind(cfg.target))
    candles = CandleStore(settings.candles_dir).read(series)
    wanted = candles.loc[candles["timestamp"].between(first, cutoff), "timestamp"].astype("int64").tolist()
    done = stored_cutoffs(out, series, version)
    todo = [c for c in wanted if c not in done]
    if not todo:
        return SeriesForecasts(version, already=sorted(set(wanted) & done))
    bundle = load_version(client, name, version)  # the lean runtime when the bundle carries its export
    check_timeframe(name, version, bundle.spec.timeframe, cfg)
    run_id = client.get_model_version(name, version).run_id
    created_at = datetime.now(UTC).isoformat()
    ts = candles["timestamp"].to_numpy()
    for c in todo:
        check_age(name, version, bundle.spec.train_end, c, cfg.predict.max_model_age_days)
        seen = candles[ts <= c].tail(bundle.spec.min_candles + 1).reset_index(drop=True)
        forecast = bundle.predict(seen, symbol=series.symbol if bundle.series_names else None)
        out.write(series, with_lineage(forecast, series, name, version, run_id, created_at))
    return SeriesForecasts(version, written=todo, already=sorted(set(wanted) & done))
