"""The forecast frame's checks: bad input gets one clear line, and a well-stamped frame passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from trading_helpers import HOUR, forecast_frame

from candlecast.trading.forecasts import ForecastError, live_mask, validate_forecasts


def _check(frame, candles, **kw):
    return validate_forecasts(frame, candles, "1h", **kw)


def test_a_well_stamped_frame_passes_and_its_window_starts_at_the_first_cutoffs_close(pair):
    frame = forecast_frame(pair, horizon=3)
    checked, window = _check(frame, pair)
    assert len(checked) == len(frame)
    assert window.start == int(frame["cutoff"].min()) + HOUR  # usable only once the cutoff candle has closed
    assert window.end == int(frame["cutoff"].max()) + HOUR + 3 * HOUR  # its position closes 3 bars later
    assert window.horizon == 3


def test_forecasts_stamped_one_candle_early_are_refused_with_the_reason(pair):
    frame = forecast_frame(pair)
    early = frame.assign(cutoff=frame["cutoff"] - HOUR)  # each forecast now claims to precede the close it saw
    with pytest.raises(ForecastError, match="stamped one candle early.*use the future"):
        _check(early, pair)


def test_forecasts_stamped_one_candle_late_are_refused_too(pair):
    frame = forecast_frame(pair)
    with pytest.raises(ForecastError, match="stamped one candle late"):
        _check(frame.assign(cutoff=frame["cutoff"] + HOUR), pair)


def test_forecasts_made_on_other_candles_are_refused(pair):
    frame = forecast_frame(pair)
    with pytest.raises(ForecastError, match="not the candles' close"):
        _check(frame.assign(close=frame["close"] * 1.01), pair)


def test_a_forecast_file_for_another_symbol_names_both(pair):
    frame = forecast_frame({"SOL/USDT": pair["BTC/USDT"]})
    with pytest.raises(ForecastError, match=r"forecasts are for \['SOL/USDT'\] but the candles are for"):
        _check(frame, {"BTC/USDT": pair["BTC/USDT"]})


def test_candles_without_forecasts_are_refused(pair):
    frame = forecast_frame({"BTC/USDT": pair["BTC/USDT"]})
    with pytest.raises(ForecastError, match=r"no forecasts for \['ETH/USDT'\]"):
        _check(frame, pair)


def test_a_forecast_file_for_another_timeframe_is_refused(pair):
    frame = forecast_frame(pair).assign(timeframe="4h")
    with pytest.raises(ForecastError, match=r"forecasts are for \['4h'\] candles but the bars are 1h"):
        _check(frame, pair)


def test_nan_forecasts_are_refused_not_read_as_zero(pair):
    frame = forecast_frame(pair)
    frame.loc[7, "forecast"] = np.nan
    with pytest.raises(ForecastError, match="1 forecast rows hold NaN.*not a zero forecast"):
        _check(frame, pair)


def test_forecasts_that_do_not_cover_the_bars_are_refused_with_the_gap(pair):
    frame = forecast_frame(pair)
    btc = frame["symbol"] == "BTC/USDT"
    cut = int(frame[btc]["cutoff"].iloc[300])
    holed = frame[~(btc & (frame["cutoff"] > cut) & (frame["cutoff"] < cut + 400 * HOUR))]
    with pytest.raises(ForecastError, match=r"BTC/USDT forecasts cover \d+% .*longest uncovered stretch 399 bars"):
        _check(holed, pair)
    _check(holed, pair, min_coverage=0.5)  # the user may accept gaps explicitly


def test_forecasts_that_miss_the_candles_entirely_are_refused(pair):
    frame = forecast_frame(pair)
    shifted = frame.assign(cutoff=frame["cutoff"] + 10_000 * HOUR)
    with pytest.raises(ForecastError, match="no candle's open time"):
        _check(shifted, pair)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["close"]), r"lacks columns \['close'\]"),
        (lambda f: f.iloc[0:0], "has no rows"),
        (lambda f: f.assign(lower=f["upper"] + 0.1), "lower > upper"),
        (lambda f: f.assign(horizon=np.arange(len(f)) % 2 + 1), "mix horizons"),
        (lambda f: f.assign(coverage=1.5), "coverage must lie strictly between 0 and 1"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate forecasts"),
        (lambda f: f.assign(forecast="up"), "not numeric"),
        (lambda f: f.assign(volatility=-0.01), "volatility must be positive"),
    ],
)
def test_malformed_frames_get_one_clear_line(pair, change, message):
    with pytest.raises(ForecastError, match=message) as info:
        _check(change(forecast_frame(pair)), pair)
    assert "\n" not in str(info.value)


def test_live_mask_expires_a_forecast_after_its_holding_period():
    usable = np.array([0, 10 * HOUR])
    bars = np.arange(0, 16) * HOUR
    live = live_mask(bars, usable, 3 * HOUR)
    assert live.tolist() == [True] * 3 + [False] * 7 + [True] * 3 + [False] * 3
