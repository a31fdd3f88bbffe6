"""Is the champion still as good as it was promoted to be? Three independent answers, each a reason.

- A sequential change detector (river's Page-Hinkley or ADWIN) on each matured forecast's log loss
  ratio to naive: it notices a sustained rise in the loss, the first forecast after the change that
  tips it is where the alarm is dated.
- A hard guard: the mean loss ratio over the last ``guard_days`` above ``guard_ratio`` (the champion
  is worse than the random walk over a week, whatever the detector says).
- The champion's age: trained on candles ending more than ``max_model_age_days`` before the newest.

The loss ratio of one forecast is its squared error over the naive (zero-return) forecast's, summed
over its horizon, clipped to ``[1/cap, cap]`` so a near-zero naive error is one large value rather than
infinity. The detector runs on its log, whose noise is symmetric: a stationary champion stays near one level.
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


def detector_alarm(ratios: pd.Series, cfg: LiveConfig) -> Alarm | None:
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
                DETECTOR, int(cutoff), f"{cfg.detector} saw the loss ratio to naive rise after {i + 1} forecasts "
                f"(recent geometric mean {np.exp(recent):.2f}, before {np.exp(before):.2f})",
            )  # fmt: skip
    return None


def guard_alarm(ratios: pd.Series, cfg: LiveConfig, step_ms: int) -> Alarm | None:
    """The first forecast at which the geometric mean loss ratio over the last ``guard_days`` exceeds ``guard_ratio``.

    Geometric, as the detector's log scale: per-forecast ratios are skewed (a forecast when the market
    barely moved has a tiny naive error), so their arithmetic mean sits near 1 for a champion whose typical
    ratio is 0.6, and crossed 1 about three times a month on the rehearsal market with no change at all.
    """
    window = max(1, int(cfg.guard_days * 86_400_000 // step_ms))
    if len(ratios) < min(window, cfg.min_scored):
        return None
    rolling = np.exp(np.log(ratios).rolling(window, min_periods=min(window, cfg.min_scored)).mean())
    over = rolling[rolling > cfg.guard_ratio]
    if over.empty:
        return None
    detail = f"geometric mean loss ratio to naive {over.iloc[0]:.2f} over the last {cfg.guard_days:g} days"
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
    ratios: pd.Series, cfg: LiveConfig, step_ms: int, train_end: int | None = None, newest: int | None = None
) -> list[Alarm]:
    """Every check's first alarm on this champion's scored history, earliest first."""
    found = [detector_alarm(ratios, cfg), guard_alarm(ratios, cfg, step_ms)]
    if newest is not None:
        found.append(age_alarm(train_end, newest, cfg.max_model_age_days))
    return sorted((a for a in found if a is not None), key=lambda a: a.at)


def first_alarm_index(ratios: Sequence[float], cfg: LiveConfig) -> int | None:
    """Position of the detector's first alarm in a plain sequence of loss ratios (tests and the bench)."""
    series = pd.Series(list(ratios), index=np.arange(len(ratios), dtype="int64"))
    alarm = detector_alarm(series, cfg)
    return None if alarm is None else int(alarm.at)
