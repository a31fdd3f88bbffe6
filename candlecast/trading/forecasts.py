"""The forecast frame every trading path reads, and the strict checks that keep look-ahead out.

One row per (symbol, forecast origin). ``cutoff`` is the OPEN time (ms) of the last candle the
forecaster saw, so the forecast is known at that candle's close, ``cutoff + one candle``, and may be
acted on only on the bar that closes then. ``close`` is the close the forecaster saw: checking it
against the candles catches a forecast stamped one candle early (which would trade on the future)
as surely as a forecast for another market. ``forecast``, ``lower`` and ``upper`` are the
``horizon``-candle cumulative log return and its central ``coverage`` interval; ``volatility``
(optional) is a predicted standard deviation of that return, used instead of the interval's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from candlecast.schema import timeframe_ms

REQUIRED = ["symbol", "timeframe", "cutoff", "horizon", "close", "forecast", "lower", "upper", "coverage"]
NUMERIC = ["close", "forecast", "lower", "upper", "coverage"]
OPTIONAL = ["volatility", "model", "model_name", "model_version", "run_id"]
_CLOSE_RTOL = 1e-6


class ForecastError(ValueError):
    """A forecast frame that cannot be traded on these candles; the message says why and what to do."""


@dataclass(frozen=True)
class TradeWindow:
    """The bars a forecast frame trades: bar close times (ms) from ``start`` to ``end``, inclusive.

    Positions are opened from ``start`` on and everything is flat after the bar closing at ``end``.
    """

    start: int
    end: int
    horizon: int


def validate_forecasts(
    frame: pd.DataFrame, candles: dict[str, pd.DataFrame], timeframe: str, min_coverage: float = 0.9
) -> tuple[pd.DataFrame, TradeWindow]:
    """Check a forecast frame against the candles it will trade; returns it sorted, and its window.

    Raises ForecastError (one line) for: missing columns, no rows, NaN or infinite values, another
    timeframe or symbol than the candles, a mixed or non-positive horizon, lower above upper,
    duplicate origins, a cutoff that is no candle's open time, a ``close`` that is not the close of
    the cutoff candle (a forecast stamped one candle early or late), and forecasts that leave more
    than ``1 - min_coverage`` of any symbol's bars in the window without a live forecast.
    """
    _check_shape(frame)
    frame = frame.assign(cutoff=frame["cutoff"].astype("int64"), horizon=frame["horizon"].astype("int64"))
    _check_values(frame, timeframe)
    _check_symbols(frame, candles)
    frame = frame.sort_values(["symbol", "cutoff"]).reset_index(drop=True)
    step = timeframe_ms(timeframe)
    for symbol, rows in frame.groupby("symbol", sort=True):
        _check_stamps(symbol, rows, candles[symbol], step)
    window = trade_window(frame, step)
    for symbol, rows in frame.groupby("symbol", sort=True):
        _check_coverage(symbol, rows, candles[symbol], step, window, min_coverage)
    return frame, window


def trade_window(frame: pd.DataFrame, step: int) -> TradeWindow:
    """From the first bar a forecast may act on to the bar whose close ends the last holding period.

    A forecast usable at bar close T speaks about the next ``horizon`` candles, so its position is
    held over the bars closing T + step .. T + horizon * step and closed at the last of them.
    """
    horizon = int(frame["horizon"].iloc[0])
    usable = frame["cutoff"].to_numpy("int64") + step
    return TradeWindow(int(usable.min()), int(usable.max()) + horizon * step, horizon)


def _check_shape(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ForecastError(f"forecast frame lacks columns {missing}: it needs {REQUIRED} (optional: {OPTIONAL})")
    if frame.empty:
        raise ForecastError("forecast frame has no rows: nothing to trade")
    bad = [c for c in ["cutoff", "horizon", *NUMERIC] if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ForecastError(f"forecast columns {bad} are not numeric: write numbers (cutoff in ms, returns as logs)")


def _check_values(frame: pd.DataFrame, timeframe: str) -> None:
    values = frame[NUMERIC].to_numpy("float64")
    if "volatility" in frame.columns:
        values = np.column_stack([values, frame["volatility"].to_numpy("float64")])
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        first = int(frame.loc[~finite, "cutoff"].min())
        raise ForecastError(
            f"{int((~finite).sum())} forecast rows hold NaN or infinite values (first at cutoff {first}): "
            "drop or recompute them; a missing forecast is not a zero forecast"
        )
    other = sorted(set(frame["timeframe"].astype(str)) - {timeframe})
    if other:
        raise ForecastError(
            f"forecasts are for {other} candles but the bars are {timeframe}: pass candles of the forecasts' "
            "timeframe or forecasts made on these candles"
        )
    horizons = frame["horizon"].unique()
    if len(horizons) != 1 or horizons[0] < 1:
        raise ForecastError(f"forecasts mix horizons {sorted(horizons)}: trade one holding period per frame")
    if ((frame["coverage"] <= 0) | (frame["coverage"] >= 1)).any():
        raise ForecastError("forecast coverage must lie strictly between 0 and 1 (e.g. 0.8 for an 80% interval)")
    crossed = frame["lower"] > frame["upper"]
    if crossed.any():
        raise ForecastError(
            f"{int(crossed.sum())} forecast rows have lower > upper (first at cutoff "
            f"{int(frame.loc[crossed, 'cutoff'].min())}): the interval bounds are swapped or broken"
        )
    if "volatility" in frame.columns and (frame["volatility"] <= 0).any():
        raise ForecastError("forecast volatility must be positive: it divides the target exposure")


def _check_symbols(frame: pd.DataFrame, candles: dict[str, pd.DataFrame]) -> None:
    symbols = set(frame["symbol"].astype(str))
    extra, unforecast = sorted(symbols - set(candles)), sorted(set(candles) - symbols)
    if extra:
        raise ForecastError(
            f"forecasts are for {extra} but the candles are for {sorted(candles)}: pass the candles of "
            f"{extra} (--data) or a forecast file made for {sorted(candles)}"
        )
    if unforecast:
        raise ForecastError(f"no forecasts for {unforecast}: drop those candles or add their forecasts")
    duplicated = frame.duplicated(["symbol", "cutoff"])
    if duplicated.any():
        row = frame[duplicated].iloc[0]
        raise ForecastError(
            f"{int(duplicated.sum())} duplicate forecasts (first: {row['symbol']} at cutoff {int(row['cutoff'])}): "
            "keep one forecast per symbol and origin"
        )


def _check_stamps(symbol: str, rows: pd.DataFrame, candles: pd.DataFrame, step: int) -> None:
    """Every cutoff is a candle's open time and the forecast's close is that candle's close."""
    closes = pd.Series(candles["close"].to_numpy("float64"), index=candles["timestamp"].to_numpy("int64"))
    cutoffs = rows["cutoff"].to_numpy("int64")
    known = np.isin(cutoffs, closes.index)
    if not known.all():
        raise ForecastError(
            f"{int((~known).sum())} {symbol} forecasts have a cutoff that is no candle's open time (first "
            f"{int(cutoffs[~known][0])}): the candles do not reach that far, or cutoffs are not candle open times"
        )
    seen = rows["close"].to_numpy("float64")
    actual = closes.reindex(cutoffs).to_numpy()
    wrong = ~np.isclose(seen, actual, rtol=_CLOSE_RTOL, atol=0.0)
    if not wrong.any():
        return
    early = np.isclose(seen, closes.reindex(cutoffs + step).to_numpy(), rtol=_CLOSE_RTOL, atol=0.0)
    late = np.isclose(seen, closes.reindex(cutoffs - step).to_numpy(), rtol=_CLOSE_RTOL, atol=0.0)
    first = int(cutoffs[wrong][0])
    if early[wrong].mean() > 0.5:
        raise ForecastError(
            f"{symbol} forecasts are stamped one candle early ({int(wrong.sum())} rows, first cutoff {first}): "
            "each saw the close of the candle after its cutoff, so trading them would use the future; "
            "stamp a forecast with the open time of the LAST candle it saw"
        )
    if late[wrong].mean() > 0.5:
        raise ForecastError(
            f"{symbol} forecasts are stamped one candle late ({int(wrong.sum())} rows, first cutoff {first}): "
            "stamp a forecast with the open time of the last candle it saw"
        )
    raise ForecastError(
        f"{int(wrong.sum())} {symbol} forecasts saw a close that is not the candles' close at their cutoff "
        f"(first cutoff {first}: {seen[wrong][0]} vs {actual[wrong][0]}): they were made on other candles"
    )


def _check_coverage(
    symbol: str, rows: pd.DataFrame, candles: pd.DataFrame, step: int, window: TradeWindow, min_coverage: float
) -> None:
    """Most bars in the window must have a live forecast (made at most horizon - 1 bars before)."""
    bar_close = candles["timestamp"].to_numpy("int64") + step
    bar_close = bar_close[(bar_close >= window.start) & (bar_close < window.end)]  # the end bar only closes
    usable = rows["cutoff"].to_numpy("int64") + step
    live = live_mask(bar_close, usable, window.horizon * step)
    share = float(live.mean()) if len(live) else 0.0
    if share >= min_coverage:
        return
    gap = _longest_gap(bar_close, live)
    raise ForecastError(
        f"{symbol} forecasts cover {share:.0%} of its {len(bar_close)} bars between {_day(window.start)} and "
        f"{_day(window.end)} (need {min_coverage:.0%}; longest uncovered stretch {gap}): forecast the missing "
        "period, trade a shorter one, or lower min_coverage"
    )


def live_mask(bar_close: np.ndarray, usable: np.ndarray, life_ms: int) -> np.ndarray:
    """Whether each bar has a forecast made no more than ``life_ms`` before it (usable sorted ascending)."""
    idx = np.searchsorted(usable, bar_close, side="right") - 1
    ok = idx >= 0
    age = np.where(ok, bar_close - usable[np.clip(idx, 0, None)], life_ms)
    return ok & (age < life_ms)


def _longest_gap(bar_close: np.ndarray, live: np.ndarray) -> str:
    if len(bar_close) == 0:
        return "all of it (no candles in the window)"
    best, start, run = (0, 0, 0), 0, 0
    for i, ok in enumerate(live):
        run = 0 if ok else run + 1
        start = i if run == 1 else start
        best = max(best, (run, start, i))
    n, first, last = best
    return f"{n} bars, {_day(int(bar_close[first]))}..{_day(int(bar_close[last]))}"


def _day(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")
