"""The sizing's volatility from a risk model: walk-forward forecasts in a backtest, the @champion's today.

A risk forecast at cutoff ``c`` (the OPEN time of the last candle it saw, as in every forecast frame)
is the variance of the next ``h`` candles' log return. A forecast frame row at cutoff ``t`` takes the
newest risk forecast with ``c <= t`` made less than ``h`` candles before it, so it is sized only with
what was known when its bar closed. Its holding-period volatility is ``sqrt(variance * hold / h)``
(the variance of ``h`` candles spread evenly over them). Rows with no such risk forecast keep the
interval's sigma (policy.horizon_sigma); the caller is told how many, to say so in one line.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from candlecast.trading.forecasts import ForecastError
from candlecast.trading.policy import horizon_sigma

log = logging.getLogger(__name__)

#: A risk frame: one row per (symbol, cutoff), the variance of the next ``horizon`` candles.
RISK_COLUMNS = ["symbol", "cutoff", "horizon", "variance"]


def risk_from_forecasts(forecasts: Any, symbol_of: dict[str, str], horizon: int) -> pd.DataFrame:
    """A walk-forward ``RiskForecasts`` (series, timestamps, forecast variance) as a risk frame."""
    unknown = sorted(set(np.unique(forecasts.series)) - set(symbol_of))
    if unknown:
        raise ForecastError(f"no symbol given for risk backtest series {unknown}: map each series to its symbol")
    return pd.DataFrame(
        {
            "symbol": [symbol_of[s] for s in forecasts.series],
            "cutoff": np.asarray(forecasts.timestamps, dtype="int64"),
            "horizon": int(horizon),
            "variance": np.asarray(forecasts.forecast, dtype="float64"),
        }
    )


def risk_from_store(rows: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Rows of the risk prediction store (or the risk champion's own output) for one symbol as a risk frame."""
    need = ["cutoff", "horizon", "forecast_variance"]
    missing = [c for c in need if c not in rows.columns]
    if missing:
        raise ForecastError(f"risk forecasts lack columns {missing}: they come from a `target: volatility` model")
    return pd.DataFrame(
        {
            "symbol": symbol,
            "cutoff": rows["cutoff"].to_numpy("int64"),
            "horizon": rows["horizon"].to_numpy("int64"),
            "variance": rows["forecast_variance"].to_numpy("float64"),
        }
    )


def with_risk_volatility(frame: pd.DataFrame, risk: pd.DataFrame, step_ms: int) -> tuple[pd.DataFrame, int]:
    """``frame`` with its ``volatility`` column from the newest live risk forecast at or before each cutoff.

    Returns the frame (same rows, same order) and how many rows had no live risk forecast and keep the
    interval's sigma. A risk forecast is live for ``h`` candles after its bar closes, as a return forecast is.
    """
    if frame.empty:
        return frame.assign(volatility=np.zeros(0)), 0
    bad = risk["variance"].to_numpy("float64")
    if not np.all(np.isfinite(bad) & (bad >= 0)):
        raise ForecastError("risk forecasts hold negative, NaN or infinite variances: check the risk model's output")
    hold = frame["horizon"].to_numpy("int64")
    fallback = horizon_sigma(frame)
    order = np.argsort(frame["cutoff"].to_numpy("int64"), kind="stable")
    left = frame.iloc[order].assign(_row=order, cutoff=lambda f: f["cutoff"].astype("int64"))
    right = risk[RISK_COLUMNS].rename(columns={"cutoff": "risk_cutoff", "horizon": "risk_horizon"})
    right = right.assign(risk_cutoff=right["risk_cutoff"].astype("int64")).sort_values("risk_cutoff")
    joined = pd.merge_asof(
        left[["_row", "symbol", "cutoff"]],
        right,
        left_on="cutoff",
        right_on="risk_cutoff",
        by="symbol",
        direction="backward",  # at or before the cutoff: never a forecast made after the bar it sizes
    ).sort_values("_row")
    age = joined["cutoff"].to_numpy("int64") - joined["risk_cutoff"].fillna(-np.inf).to_numpy()
    live = age < joined["risk_horizon"].fillna(0).to_numpy() * step_ms
    variance = joined["variance"].to_numpy("float64")
    scale = hold / np.maximum(joined["risk_horizon"].fillna(1).to_numpy("float64"), 1.0)
    vol = np.where(live, np.sqrt(np.where(live, variance, 0.0) * scale), fallback)
    return frame.assign(volatility=vol, risk_cutoff=np.where(live, joined["risk_cutoff"], np.nan)), int((~live).sum())


def risk_champion_version(settings: Any, cfg: Any) -> tuple[tuple[Any, str, str] | None, str]:
    """The risk @champion as (MLflow client, model name, version), or None and why not (one line)."""
    from candlecast.registry.local_registry import CHAMPION, alias_version, reader

    name = cfg.predict.risk_model_name
    if name is None:
        return None, "predict.risk_model_name is null"
    client = reader(settings)  # sqlite3 on a local registry: no MLflow store start-up
    version = alias_version(client, name, CHAMPION)
    if version is None:
        return None, f"no @champion for {name} yet"
    return (client, name, version), ""


def champion_risk(settings: Any, cfg: Any, candles: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame | None, str]:
    """The risk @champion's forecast from each symbol's latest candles, or None and why not (one line).

    The model is ``predict.risk_model_name`` (``candlecast-risk``); a config whose own model forecasts
    risk has no separate risk model to read.
    """
    from candlecast.registry.loading import load_version

    found, why = risk_champion_version(settings, cfg)
    if found is None:
        return None, why
    client, name, version = found
    bundle = load_version(client, name, version)  # the lean runtime, as the return champion loads
    if bundle.spec.timeframe != cfg.data.timeframe:
        return None, f"{name} v{version} forecasts {bundle.spec.timeframe} candles, not {cfg.data.timeframe}"
    tails = [c.tail(bundle.spec.min_candles + 1).assign(symbol=symbol) for symbol, c in candles.items()]
    out = bundle.predict_many(pd.concat(tails, ignore_index=True))
    parts = [risk_from_store(rows, str(symbol)) for symbol, rows in out.groupby("symbol", sort=False)]
    return pd.concat(parts, ignore_index=True), f"{name} v{version}"


def stored_risk(settings: Any, cfg: Any, candles: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame | None, str]:
    """The latest risk forecast of each configured series from the risk prediction store, or None and why."""
    from candlecast.registry.prediction_store import RISK, prediction_store

    store = prediction_store(settings, cfg.predict.store_url, RISK)
    parts = []
    for key in cfg.series:
        latest = store.latest(key) if key.symbol in candles else None
        if latest is not None and not latest.empty:
            parts.append(risk_from_store(latest, key.symbol))
    if not parts:
        return None, "the risk prediction store is empty"
    return pd.concat(parts, ignore_index=True), "the stored risk forecasts"


def sizing_volatility(
    settings: Any, cfg: Any, frame: pd.DataFrame, candles: dict[str, pd.DataFrame], source: str, step_ms: int
) -> tuple[pd.DataFrame, str]:
    """Today's forecast frame with the risk model's volatility, and one line saying where it came from."""
    risk, origin = (stored_risk if source == "store" else champion_risk)(settings, cfg, candles)
    if risk is None:
        return frame, f"volatility from the return forecast's interval: {origin}"
    frame, missing = with_risk_volatility(frame, risk, step_ms)
    note = f"volatility from {origin}"
    if missing:
        note += f"; {missing} of {len(frame)} symbols had no live risk forecast and use the interval's"
    return frame, note
