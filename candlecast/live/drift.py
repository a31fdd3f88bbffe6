"""Is the champion still as good as it was promoted to be? Three independent answers, each a reason.

- A sequential change detector (river's Page-Hinkley or ADWIN) on each matured forecast's log loss
  ratio to naive: it notices a sustained rise in the loss, the first forecast after the change that
  tips it is where the alarm is dated.
- A hard guard: the mean loss ratio over the last ``guard_days`` above ``guard_ratio`` (the champion
  is worse than the random walk over a week, whatever the detector says).
- The champion's age: trained on candles ending more than ``max_model_age_days`` before the newest.

The loss ratio of one forecast is its squared error over the naive (zero-return) forecast's, summed
over its horizon, clipped to ``[1/cap, cap]`` so a near-zero naive error is one large value rather than
infinity. A volatility champion's is its QLIKE over the best classical baseline's forecast at the same
cutoff (``qlike_ratios``; the baseline comes from candlecast.live.baseline), judged the same way.
The detector runs on its log, whose noise is symmetric: a stationary champion stays near one level.
Everything here is a pure function of the scored history, so a restarted loop reaches the same verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from candlecast.liveconfig import LiveConfig

DETECTOR, GUARD, AGE = "detector", "guard", "age"


@dataclass(frozen=True)
class Alarm:
    """Why a champion is degraded: which check, the cutoff (ms) of the forecast that raised it, in words."""

    reason: str
    at: int
    detail: str


def realized_returns(forecasts: pd.DataFrame, candles: pd.DataFrame) -> pd.DataFrame:
    """Return forecast rows whose target candle has closed, with the actual close and log return.

    The join of ``ReturnsTarget.realized`` (the existing scoring), here in pandas alone: the targets
    package loads torch, which the loop's hot path never does.
    """
    if forecasts.empty:
        return forecasts
    closes = candles.set_index("timestamp")["close"]
    out = forecasts.assign(actual=forecasts["timestamp"].map(closes), cutoff_close=forecasts["cutoff"].map(closes))
    out = out.dropna(subset=["actual", "cutoff_close"])
    return out.assign(actual_log_return=np.log(out["actual"] / out["cutoff_close"]))


def realized_variances(forecasts: pd.DataFrame, candles: pd.DataFrame, step_ms: int) -> pd.DataFrame:
    """One row per variance forecast whose h candles after the cutoff have all closed, with their realised variance.

    ``VolatilityTarget.realized`` (the existing scoring) in vectorised pandas, for the same reason as above:
    the sum of the h squared log returns after the cutoff; a missing candle leaves the forecast unscored.
    """
    if forecasts.empty:
        return forecasts.assign(realised_variance=pd.Series(dtype="float64"))
    log_close = np.log(candles.set_index("timestamp")["close"].astype("float64"))
    cutoffs = forecasts["cutoff"].to_numpy("int64")
    horizon = int(forecasts["horizon"].iloc[0])
    path = np.column_stack([cutoffs + k * step_ms for k in range(horizon + 1)])
    logs = log_close.reindex(path.ravel()).to_numpy().reshape(path.shape)
    variance = np.sum(np.diff(logs, axis=1) ** 2, axis=1)
    keep = np.isfinite(variance)
    return forecasts[keep].assign(realised_variance=variance[keep])


def qlike_ratios(rows: pd.DataFrame, baseline: pd.Series, cap: float) -> pd.Series:
    """Per matured variance forecast: its QLIKE over the baseline's forecast at the same cutoff, indexed by cutoff.

    Clipped to ``[1/cap, cap]`` as the returns' ratio; a window whose closes never moved (no variance
    proxy: QLIKE is NaN for every model) or with no baseline forecast is left out.
    """
    from candlecast.forecasting.risk_metrics import qlike

    if rows.empty:
        return pd.Series(dtype="float64", name="loss_ratio")
    per = rows.drop_duplicates("cutoff").set_index("cutoff").sort_index()
    realised = per["realised_variance"].to_numpy("float64")
    base = per.index.map(baseline).to_numpy("float64")
    ours, theirs = qlike(realised, per["forecast_variance"].to_numpy("float64")), qlike(realised, base)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(theirs > 0, ours / np.where(theirs > 0, theirs, 1.0), cap)
    keep = np.isfinite(ours) & np.isfinite(base)
    return pd.Series(np.clip(ratio[keep], 1 / cap, cap), index=per.index[keep].astype("int64"), name="loss_ratio")


def loss_ratios(rows: pd.DataFrame, horizon: int, cap: float) -> pd.Series:
    """Per matured forecast (all ``horizon`` steps realised): its loss ratio to naive, indexed by cutoff."""
    if rows.empty:
        return pd.Series(dtype="float64")
    sq = rows.assign(
        model=(rows["actual_log_return"] - rows["forecast_log_return"]) ** 2, naive=rows["actual_log_return"] ** 2
    )
    per = sq.groupby("cutoff").agg(model=("model", "sum"), naive=("naive", "sum"), steps=("step", "count"))
    per = per[per["steps"] >= horizon].sort_index()
    ratio = np.where(per["naive"] > 0, per["model"] / per["naive"].where(per["naive"] > 0, 1.0), cap)
    return pd.Series(np.clip(ratio, 1 / cap, cap), index=per.index.astype("int64"), name="loss_ratio")


def _detector(cfg: LiveConfig) -> Any:  # river ships no type hints
    from river import drift  # here: the loop's import, not every config's

    if cfg.detector == "adwin":
        return drift.ADWIN(delta=cfg.detector_delta, min_window_length=max(5, cfg.min_scored // 2))
    return drift.PageHinkley(
        min_instances=cfg.min_scored, delta=cfg.detector_delta, threshold=cfg.detector_threshold, mode="up"
    )


def detector_alarm(ratios: pd.Series, cfg: LiveConfig, reference: str = "naive") -> Alarm | None:
    """The first forecast at which the detector sees the log loss ratio rise, or None."""
    detector = _detector(cfg)
    logs = np.log(ratios.to_numpy("float64"))
    for i, (cutoff, x) in enumerate(zip(ratios.index, logs, strict=True)):
        before = float(np.mean(logs[:i])) if i else 0.0
        detector.update(float(x))
        if i + 1 < cfg.min_scored or not detector.drift_detected:
            continue
        recent = float(np.mean(logs[max(0, i - cfg.min_scored // 2) : i + 1]))
        if cfg.detector == "page_hinkley" or recent > before:  # ADWIN is two-sided: a better champion is no alarm
            return Alarm(
                DETECTOR, int(cutoff), f"{cfg.detector} saw the loss ratio to {reference} rise after {i + 1} forecasts "
                f"(recent geometric mean {np.exp(recent):.2f}, before {np.exp(before):.2f})",
            )  # fmt: skip
    return None


def window_of(cfg: LiveConfig, step_ms: int) -> int:
    """The guard's window in forecasts (``guard_days`` of candles)."""
    return max(1, int(cfg.guard_days * 86_400_000 // step_ms))


def guard_alarm(ratios: pd.Series, cfg: LiveConfig, step_ms: int, reference: str = "naive") -> Alarm | None:
    """The first forecast at which the geometric mean loss ratio over the last ``guard_days`` exceeds ``guard_ratio``.

    Geometric, as the detector's log scale: per-forecast ratios are skewed (a forecast when the market
    barely moved has a tiny naive error), so their arithmetic mean sits near 1 for a champion whose typical
    ratio is 0.6, and crossed 1 about three times a month on the rehearsal market with no change at all.
    """
    window = window_of(cfg, step_ms)
    if len(ratios) < min(window, cfg.min_scored):
        return None
    rolling = np.exp(np.log(ratios).rolling(window, min_periods=min(window, cfg.min_scored)).mean())
    over = rolling[rolling > cfg.guard_ratio]
    if over.empty:
        return None
    detail = f"geometric mean loss ratio to {reference} {over.iloc[0]:.2f} over the last {cfg.guard_days:g} days"
    return Alarm(GUARD, int(over.index[0]), f"{detail} is above {cfg.guard_ratio:g}")


def age_alarm(train_end: int | None, newest: int, max_days: float | None) -> Alarm | None:
    """An alarm when the champion's training data ends more than ``max_days`` before the newest candle."""
    if max_days is None or train_end is None:
        return None
    age = (newest - train_end) / 86_400_000
    if age <= max_days:
        return None
    return Alarm(AGE, int(newest), f"trained on candles up to {age:.1f} days before the newest, over {max_days:g}")


def alarms(
    ratios: pd.Series,
    cfg: LiveConfig,
    step_ms: int,
    train_end: int | None = None,
    newest: int | None = None,
    reference: str = "naive",
) -> list[Alarm]:
    """Every check's first alarm on this champion's scored history (ratios to ``reference``), earliest first."""
    found = [detector_alarm(ratios, cfg, reference), guard_alarm(ratios, cfg, step_ms, reference)]
    if newest is not None:
        found.append(age_alarm(train_end, newest, cfg.max_model_age_days))
    return sorted((a for a in found if a is not None), key=lambda a: a.at)


def first_alarm_index(ratios: Sequence[float], cfg: LiveConfig) -> int | None:
    """Position of the detector's first alarm in a plain sequence of loss ratios (tests and the bench)."""
    series = pd.Series(list(ratios), index=np.arange(len(ratios), dtype="int64"))
    alarm = detector_alarm(series, cfg)
    return None if alarm is None else int(alarm.at)
