"""Where forecast frames come from: a walk-forward backtest, the prediction store, or a saved file.

The walk-forward adapter reads only ``BacktestResult.pooled(name)`` and the arrays of the
``Forecasts`` it returns (series, timestamps, close, point, lower, upper), so the engine may change
underneath it. Every adapter keeps one forecast per holding period: the ``hold``-candle forecast,
every ``hold`` candles on a grid anchored at the first origin, so positions are held for exactly
the period each forecast speaks about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.io import write_parquet
from candlecast.schema import timeframe_ms
from candlecast.trading.forecasts import OPTIONAL, REQUIRED, ForecastError

#: The label of the buy-and-hold reference; the synthesized naive strategies for one-model sources.
BUY_AND_HOLD = "buy_and_hold"
NAIVE, ALWAYS_LONG = "naive", "always_long"


def from_backtest(
    result: Any, names: list[str], symbol_of: dict[str, str], timeframe: str, hold: int, coverage: float
) -> dict[str, pd.DataFrame]:
    """One frame per model from a walk-forward ``BacktestResult`` (out-of-sample forecasts only)."""
    return {name: from_forecasts(result.pooled(name), name, symbol_of, timeframe, hold, coverage) for name in names}


def from_forecasts(
    forecasts: Any, model: str, symbol_of: dict[str, str], timeframe: str, hold: int, coverage: float
) -> pd.DataFrame:
    """A walk-forward ``Forecasts`` (arrays per window) as a forecast frame for the ``hold``-candle step."""
    horizon = forecasts.point.shape[1]
    if not 1 <= hold <= horizon:
        raise ForecastError(f"hold {hold} is outside the backtest's horizon 1..{horizon}: choose a step it forecast")
    unknown = sorted(set(np.unique(forecasts.series)) - set(symbol_of))
    if unknown:
        raise ForecastError(f"no symbol given for backtest series {unknown}: map each series name to its symbol")
    col = hold - 1
    frame = pd.DataFrame(
        {
            "symbol": [symbol_of[s] for s in forecasts.series],
            "timeframe": timeframe,
            "cutoff": np.asarray(forecasts.timestamps, dtype="int64"),
            "horizon": hold,
            "close": np.asarray(forecasts.close, dtype="float64"),
            "forecast": forecasts.point[:, col],
            "lower": forecasts.lower[:, col],
            "upper": forecasts.upper[:, col],
            "coverage": coverage,
            "model": model,
        }
    )
    return every_hold(frame, hold, timeframe_ms(timeframe))


def from_prediction_store(rows: pd.DataFrame, hold: int, coverage: float, version: str | None = None) -> pd.DataFrame:
    """Stored forecasts of one registered model (price forecasts per step) as a forecast frame.

    The store keeps prices; the forecaster's last close is ``forecast / exp(forecast_log_return)``,
    and the bounds become log returns from it.
    """
    need = ["cutoff", "step", "forecast", "lower", "upper", "forecast_log_return", "symbol", "timeframe"]
    missing = [c for c in need if c not in rows.columns]
    if rows.empty or missing:
        raise ForecastError(f"prediction store rows lack {missing or 'rows'}: run `candlecast predict` first")
    rows = _one_version(rows, version)
    picked = rows[rows["step"] == hold]
    if picked.empty:
        raise ForecastError(f"stored forecasts have steps 1..{int(rows['step'].max())}, not hold {hold}")
    close = picked["forecast"].to_numpy("float64") / np.exp(picked["forecast_log_return"].to_numpy("float64"))
    frame = pd.DataFrame(
        {
            "symbol": picked["symbol"].astype(str).to_numpy(),
            "timeframe": picked["timeframe"].astype(str).to_numpy(),
            "cutoff": picked["cutoff"].to_numpy("int64"),
            "horizon": hold,
            "close": close,
            "forecast": picked["forecast_log_return"].to_numpy("float64"),
            "lower": np.log(picked["lower"].to_numpy("float64") / close),
            "upper": np.log(picked["upper"].to_numpy("float64") / close),
            "coverage": coverage,
            "model": picked["model_name"].astype(str).to_numpy() if "model_name" in picked else "registered",
        }
    )
    for col in ("model_name", "model_version", "run_id"):
        if col in picked.columns:
            frame[col] = picked[col].astype(str).to_numpy()
    timeframe = str(frame["timeframe"].iloc[0])
    return every_hold(frame, hold, timeframe_ms(timeframe))


def _one_version(rows: pd.DataFrame, version: str | None) -> pd.DataFrame:
    versions = sorted(rows["model_version"].astype(str).unique()) if "model_version" in rows else []
    if version is not None:
        picked = rows[rows["model_version"].astype(str) == str(version)] if versions else rows.iloc[0:0]
        if picked.empty:
            raise ForecastError(f"the prediction store holds no forecasts of version {version} (it has {versions})")
        return picked
    if len(versions) > 1:
        raise ForecastError(f"the prediction store holds versions {versions}: choose one (--version)")
    return rows


def every_hold(frame: pd.DataFrame, hold: int, step: int) -> pd.DataFrame:
    """Keep origins on a grid of ``hold`` candles anchored at each symbol's first origin."""
    first = frame.groupby("symbol")["cutoff"].transform("min")
    keep = ((frame["cutoff"] - first) // step) % hold == 0
    return frame[keep].sort_values(["symbol", "cutoff"]).reset_index(drop=True)


def naive_references(model_frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The naive-forecast strategies on the same origins and intervals as a model's frame.

    ``naive``: the random walk forecasts no change, so every policy stays flat. ``always_long``: the
    drift view (crypto went up on average), a positive forecast everywhere, sized with the model's own
    interval, so only the direction differs from the model.
    """
    base = model_frame.drop(columns=[c for c in ("model_name", "model_version", "run_id") if c in model_frame])
    width = (base["upper"] - base["lower"]).abs()
    return {
        NAIVE: base.assign(forecast=0.0, model=NAIVE),
        ALWAYS_LONG: base.assign(forecast=np.maximum(1e-9, 1e-6 * width), model=ALWAYS_LONG),
    }


def write_forecast_file(frames: dict[str, pd.DataFrame], path: Path) -> Path:
    """All models' frames in one parquet file (a ``model`` column tells them apart), written atomically."""
    write_parquet(pd.concat([f.assign(model=name) for name, f in frames.items()], ignore_index=True), path)
    return path


def read_forecast_file(path: Path) -> dict[str, pd.DataFrame]:
    """Frames by model from a parquet or CSV forecast file (no ``model`` column: one model named by the file)."""
    if not path.is_file():
        raise ForecastError(f"forecast file {path} does not exist: run `candlecast trade backtest` with --models")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ForecastError(f"forecast file {path} lacks columns {missing}: it needs {REQUIRED} (optional {OPTIONAL})")
    if "model" not in frame.columns:
        return {path.name.split(".")[0]: frame}
    return {str(name): rows.reset_index(drop=True) for name, rows in frame.groupby("model", sort=False)}
