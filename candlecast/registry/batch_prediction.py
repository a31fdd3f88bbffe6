"""Batch prediction of many series in one call: the champion's ``predict_many`` over a chunk of symbols.

The same rows, lineage and store as ``candlecast.registry.prediction.predict_champion`` (which
forecasts one series per call), but every series of a chunk goes through one forward pass, and the
champion is loaded once per chunk. The prediction flow maps chunks of ``multi_series.predict_chunk``
symbols as Prefect tasks, so a Dask cluster forecasts a large universe chunk by chunk in parallel.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.forecasting.runtime import BundleForecaster
from candlecast.forecasting.served import store_kind
from candlecast.registry import tracking
from candlecast.registry.loading import load_version
from candlecast.registry.prediction import (
    PredictionOutcome,
    champion_version,
    check_age,
    check_timeframe,
    no_champion,
    with_lineage,
)
from candlecast.registry.prediction_store import prediction_store
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


def symbol_chunks(cfg: RunConfig) -> list[list[str]]:
    """The configured symbols in order, cut into chunks of ``multi_series.predict_chunk``."""
    size = cfg.multi_series.predict_chunk
    symbols = list(cfg.data.symbols)
    return [symbols[i : i + size] for i in range(0, len(symbols), size)]


def predict_chunk(settings: Settings, cfg: RunConfig, symbols: list[str]) -> PredictionOutcome:
    """Forecast ``symbols`` (of this config's exchange and timeframe) with the @champion, in one call."""
    name = cfg.promotion.model_name
    kind = store_kind(cfg.target)
    client = tracking.client(settings)
    version = champion_version(client, name)
    if version is None:
        return no_champion(name)
    run_id = client.get_model_version(name, version).run_id
    bundle = load_version(client, name, version)  # the lean runtime when the bundle carries its export
    check_timeframe(name, version, bundle.spec.timeframe, cfg)
    keys = [SeriesKey(cfg.exchange.id, symbol, cfg.data.timeframe) for symbol in symbols]
    frame = _latest_candles(settings, cfg, keys, bundle, name, version)
    forecasts = bundle.predict_many(frame)
    out = prediction_store(settings, cfg.predict.store_url, kind)
    created_at = datetime.now(UTC).isoformat()
    files = []
    for key in keys:
        rows = forecasts[forecasts["symbol"] == key.symbol].drop(columns="symbol").reset_index(drop=True)
        files.append(out.write(key, with_lineage(rows, key, name, version, run_id, created_at)))
    return PredictionOutcome(model_version=version, files=files)


def merge_outcomes(outcomes: list[PredictionOutcome]) -> PredictionOutcome:
    """One outcome for all chunks: their files in chunk order; skipped only if every chunk skipped."""
    if not outcomes:
        return PredictionOutcome(model_version=None, skipped="no symbols configured: nothing to predict")
    if all(o.skipped for o in outcomes):
        return outcomes[0]
    versions = {o.model_version for o in outcomes if not o.skipped and o.model_version is not None}
    if len(versions) != 1:
        raise RuntimeError(f"the chunks were forecast by different champion versions {sorted(versions)}: run again")
    return PredictionOutcome(model_version=versions.pop(), files=[f for o in outcomes for f in o.files])


def _latest_candles(
    settings: Settings, cfg: RunConfig, keys: list[SeriesKey], bundle: BundleForecaster, name: str, version: str
) -> pd.DataFrame:
    """Each series' newest candles (enough for one window), with a symbol column; refuses a stale champion."""
    store = CandleStore(settings.candles_dir)
    tails = []
    for key in keys:
        candles = store.read(key)
        if candles.empty:
            raise ValueError(f"no candles stored for {key}: ingest it before predicting")
        check_age(
            name, version, bundle.spec.train_end, int(candles["timestamp"].iloc[-1]), cfg.predict.max_model_age_days
        )
        tails.append(candles.tail(bundle.spec.min_candles + 1).assign(symbol=key.symbol))
    return pd.concat(tails, ignore_index=True)
