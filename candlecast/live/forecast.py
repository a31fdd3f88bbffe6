"""Forecasts of one series at given cutoffs from the @champion, through the lean runtime.

What ``candlecast.candles.stored`` asks for: each candle in ``[first, cutoff]`` gets one forecast made
from the candles up to it (the cutoff it really saw, also after a catch-up), stored with lineage.
A cutoff already forecast by this champion version is skipped, so a replayed event changes nothing.

``forecast_many`` is the loop's path for the series that closed together: the champion looked up and
its bundle loaded once, and every (series, cutoff) window in one forward pass (``predict_groups``).
When that pass fails (one series' gap, a bad window), each series is forecast on its own, so only the
series at fault goes without its forecast.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.runtime import BundleForecaster
from candlecast.forecasting.served import store_kind
from candlecast.registry.loading import load_version
from candlecast.registry.local_registry import reader
from candlecast.registry.prediction import champion_version, check_age, check_timeframe, no_champion, with_lineage
from candlecast.registry.prediction_store import ParquetPredictionStore, SqlPredictionStore, prediction_store
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

log = logging.getLogger(__name__)


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
    return _one_pass(settings, cfg, client, name, version, {series: (first, cutoff)})[series]


# (tracking URI, name, version) -> its bundle: a registered version never changes
_BUNDLES: dict[tuple[str, str, str], BundleForecaster] = {}
_BUNDLES_LOCK = threading.Lock()


def _bundle(settings: Settings, client: Any, name: str, version: str) -> BundleForecaster:
    """The version's bundle, loaded once per process (the loop forecasts with it every candle)."""
    key = (settings.tracking_uri, name, version)
    with _BUNDLES_LOCK:
        if key not in _BUNDLES:
            _BUNDLES.clear()  # a new champion: the old one's bundle is not needed again
            _BUNDLES[key] = load_version(client, name, version)
        return _BUNDLES[key]


def forecast_many(
    settings: Settings, cfg: RunConfig, ranges: dict[SeriesKey, tuple[int, int]]
) -> dict[SeriesKey, SeriesForecasts]:
    """``forecast_cutoffs`` for many series (series -> (first, cutoff)) with one forward pass; never raises.

    A series that fails (also in the per-series fallback) is logged and left out of the answer.
    """
    name = cfg.promotion.model_name
    client = reader(settings)
    version = champion_version(client, name)
    if version is None:
        return {s: SeriesForecasts(None, skipped=no_champion(name).skipped) for s in ranges}
    try:
        return _one_pass(settings, cfg, client, name, version, ranges)
    except Exception:  # each series on its own: only the one at fault goes without
        log.warning("one forward pass for %d series failed; forecasting each on its own", len(ranges), exc_info=True)
    out = {}
    for series, (first, cutoff) in ranges.items():
        try:
            out[series] = forecast_cutoffs(settings, cfg, series, first, cutoff)
        except Exception:
            log.exception("%s: forecast failed; the next close's event asks again", series)
    return out


def _one_pass(
    settings: Settings, cfg: RunConfig, client: Any, name: str, version: str, ranges: dict[SeriesKey, tuple[int, int]]
) -> dict[SeriesKey, SeriesForecasts]:
    out_store = prediction_store(settings, cfg.predict.store_url, store_kind(cfg.target))
    store = CandleStore(settings.candles_dir)
    bundle: BundleForecaster | None = None
    groups: list[tuple[str | None, pd.DataFrame]] = []
    owners, answer = [], {}
    for series, (first, cutoff) in ranges.items():
        candles = store.read(series)
        wanted = candles.loc[candles["timestamp"].between(first, cutoff), "timestamp"].astype("int64").tolist()
        done = stored_cutoffs(out_store, series, version)
        todo = [c for c in wanted if c not in done]
        answer[series] = SeriesForecasts(version, written=todo, already=sorted(set(wanted) & done))
        if not todo:
            continue
        if bundle is None:
            bundle = _bundle(settings, client, name, version)
            check_timeframe(name, version, bundle.spec.timeframe, cfg)
        ts = candles["timestamp"].to_numpy()
        for c in todo:
            check_age(name, version, bundle.spec.train_end, c, cfg.predict.max_model_age_days)
            groups.append((series.symbol if bundle.series_names else None, candles[ts <= c]))
            owners.append(series)
    if bundle is None:  # nothing to forecast: every cutoff was already done
        return answer
    frame = bundle.predict_groups(groups)
    rows = len(frame) // len(groups)
    run_id = client.get_model_version(name, version).run_id
    created_at = datetime.now(UTC).isoformat()
    for i, series in enumerate(owners):
        forecast = frame.iloc[i * rows : (i + 1) * rows].drop(columns="symbol", errors="ignore").reset_index(drop=True)
        out_store.write(series, with_lineage(forecast, series, name, version, run_id, created_at))
    return answer
