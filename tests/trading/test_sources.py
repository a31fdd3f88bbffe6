"""Forecast sources: the walk-forward adapter (real engine), the prediction store's prices, saved files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trading_helpers import HOUR, forecast_frame

from candlecast.config import RunConfig
from candlecast.forecasting.backtest import Source, run_backtest
from candlecast.trading.forecasts import ForecastError, validate_forecasts
from candlecast.trading.sources import (
    ALWAYS_LONG,
    NAIVE,
    every_hold,
    from_backtest,
    from_prediction_store,
    naive_references,
    read_forecast_file,
    write_forecast_file,
)

TINY = {"features": {"horizon": 6, "lookback": 24}, "split": {"test_folds": 2}}


@pytest.fixture(scope="module")
def walk_forward():
    from candlecast.devtools.synthetic import synthetic_candles

    candles = synthetic_candles("BTC/USDT", 1_717_200_000_000, 2500, seed=3)
    source = Source("binance_BTC-USDT_1h", "BTC/USDT", "1h", candles)
    out = run_backtest(source, ["naive", "drift"], RunConfig.model_validate(TINY))
    return source, out[0] if isinstance(out, tuple) else out


def test_walk_forward_forecasts_become_a_frame_that_passes_the_stamp_checks(walk_forward):
    source, result = walk_forward
    frames = from_backtest(result, ["naive", "drift"], {source.name: source.symbol}, "1h", hold=6, coverage=0.8)
    pooled = result.pooled("drift")
    for frame in frames.values():
        checked, window = validate_forecasts(frame, {"BTC/USDT": source.candles}, "1h")
        assert len(checked) == len(frame) > 10
        assert (np.diff(checked["cutoff"]) % (6 * HOUR) == 0).all()  # one origin per holding period
        assert window.horizon == 6
    drift = frames["drift"].set_index("cutoff")
    at = {int(t): i for i, t in enumerate(pooled.timestamps)}
    for cutoff, row in drift.head(5).iterrows():
        i = at[cutoff]
        assert row["forecast"] == pooled.point[i, 5] and row["upper"] == pooled.upper[i, 5]  # the 6-step column
    assert (frames["naive"]["forecast"] == 0).all()


def test_a_hold_beyond_the_backtest_horizon_is_refused(walk_forward):
    source, result = walk_forward
    with pytest.raises(ForecastError, match="hold 7 is outside the backtest's horizon 1..6"):
        from_backtest(result, ["naive"], {source.name: source.symbol}, "1h", hold=7, coverage=0.8)


def _stored(candles: pd.DataFrame, version: str = "3") -> pd.DataFrame:
    """Rows shaped like the prediction store's: price forecasts per step, lineage columns."""
    rows = []
    for cutoff, close in zip(candles["timestamp"].iloc[30:60], candles["close"].iloc[30:60], strict=True):
        steps = np.arange(1, 5)
        log_ret = 0.001 * steps
        rows.append(
            pd.DataFrame(
                {
                    "cutoff": cutoff,
                    "step": steps,
                    "timestamp": cutoff + steps * HOUR,
                    "forecast": close * np.exp(log_ret),
                    "lower": close * np.exp(log_ret - 0.01),
                    "upper": close * np.exp(log_ret + 0.02),
                    "forecast_log_return": log_ret,
                    "symbol": "BTC/USDT",
                    "timeframe": "1h",
                    "model_name": "m",
                    "model_version": version,
                    "run_id": "r",
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_prediction_store_prices_become_log_returns_from_the_close_the_model_saw(pair):
    candles = pair["BTC/USDT"]
    frame = from_prediction_store(_stored(candles), hold=4, coverage=0.8)
    assert (np.diff(frame["cutoff"]) == 4 * HOUR).all()
    np.testing.assert_allclose(frame["forecast"], 0.004)
    np.testing.assert_allclose(frame["lower"], -0.006)
    np.testing.assert_allclose(frame["upper"], 0.024)
    validate_forecasts(frame, {"BTC/USDT": candles}, "1h")  # the recovered close is the candle's close
    assert frame[["model_name", "model_version", "run_id"]].iloc[0].tolist() == ["m", "3", "r"]


def test_prediction_store_with_two_versions_needs_a_choice(pair):
    rows = pd.concat([_stored(pair["BTC/USDT"], "3"), _stored(pair["BTC/USDT"], "4")])
    with pytest.raises(ForecastError, match=r"holds versions \['3', '4'\]: choose one"):
        from_prediction_store(rows, hold=4, coverage=0.8)
    assert set(from_prediction_store(rows, 4, 0.8, version="4")["model_version"]) == {"4"}
    with pytest.raises(ForecastError, match="not hold 9"):
        from_prediction_store(rows, hold=9, coverage=0.8, version="4")


def test_naive_references_share_the_models_origins_and_intervals(pair):
    frame = forecast_frame(pair, {s: np.full(len(c), -0.01) for s, c in pair.items()}, horizon=2)
    refs = naive_references(frame)
    assert (refs[NAIVE]["forecast"] == 0).all()
    assert (refs[ALWAYS_LONG]["forecast"] > 0).all()
    for ref in refs.values():
        assert ref[["cutoff", "lower", "upper"]].equals(frame[["cutoff", "lower", "upper"]])


def test_every_hold_keeps_a_grid_per_symbol(pair):
    frame = forecast_frame(pair)
    kept = every_hold(frame, 5, HOUR)
    for _, rows in kept.groupby("symbol"):
        assert (np.diff(rows["cutoff"]) == 5 * HOUR).all()


def test_forecast_files_round_trip_by_model(pair, tmp_path):
    frames = {"a": forecast_frame(pair, model="a"), "b": forecast_frame(pair, model="b")}
    path = write_forecast_file(frames, tmp_path / "f.parquet")
    back = read_forecast_file(path)
    assert list(back) == ["a", "b"]
    pd.testing.assert_frame_equal(back["a"], frames["a"])
    with pytest.raises(ForecastError, match="does not exist"):
        read_forecast_file(tmp_path / "missing.parquet")
    frames["a"].drop(columns=["close"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ForecastError, match=r"lacks columns \['close'\]"):
        read_forecast_file(tmp_path / "bad.csv")
