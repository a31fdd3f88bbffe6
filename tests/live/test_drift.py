"""The drift checks on planted loss series (deterministic), the debounce, and the retrain claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from candlecast.live import drift
from candlecast.live.state import claim_retrain, retrain_refusal
from candlecast.liveconfig import LiveConfig
from candlecast.settings import Settings

HOUR = 3_600_000
N = 300  # forecasts before the change, and the same length of stationary history to compare with
WITHIN = 100  # the detector must fire within this many forecasts of the change


def planted(seed: int, before: int, after: int, horizon: int = 4, learnable: float = 0.1) -> list[float]:
    """Per-forecast loss ratios of a champion that learned a component which flips sign after ``before``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(before + after):
        s = rng.normal(0, np.sqrt(learnable), horizon)
        y = (s if i < before else -s) + rng.normal(0, np.sqrt(1 - learnable), horizon)
        out.append(float(np.clip(((y - s) ** 2).sum() / (y**2).sum(), 0.1, 10)))
    return out


@pytest.mark.parametrize("detector", ["page_hinkley", "adwin"])
@pytest.mark.parametrize("seed", range(4))
def test_the_detector_fires_after_a_regime_change_and_not_on_a_stationary_stretch(detector, seed):
    cfg = LiveConfig(detector=detector)
    assert drift.first_alarm_index(planted(seed, 2 * N, 0), cfg) is None
    at = drift.first_alarm_index(planted(seed, N, N), cfg)
    assert at is not None and N <= at < N + (WITHIN if detector == "page_hinkley" else 2 * WITHIN), at


def test_the_guard_fires_when_a_week_of_forecasts_is_worse_than_naive():
    cfg = LiveConfig(guard_days=2, min_scored=10)
    good = pd.Series([0.9] * 100, index=np.arange(100) * HOUR)
    assert drift.guard_alarm(good, cfg, HOUR) is None
    bad = pd.Series([0.9] * 60 + [1.3] * 60, index=np.arange(120) * HOUR)
    alarm = drift.guard_alarm(bad, cfg, HOUR)
    assert alarm is not None and alarm.reason == drift.GUARD and 60 * HOUR < alarm.at <= 108 * HOUR


def test_age_alarm_names_the_limit():
    assert drift.age_alarm(0, 6 * 86_400_000, 7.0) is None
    alarm = drift.age_alarm(0, 8 * 86_400_000, 7.0)
    assert alarm is not None and "8.0 days" in alarm.detail and "7" in alarm.detail


def test_loss_ratios_score_only_matured_forecasts():
    rows = pd.DataFrame(
        {
            "cutoff": [0, 0, 1, 1, 2],
            "step": [1, 2, 1, 2, 1],
            "actual_log_return": [0.01, -0.02, 0.0, 0.0, 0.03],
            "forecast_log_return": [0.0, 0.0, 0.01, 0.0, 0.0],
        }
    )
    ratios = drift.loss_ratios(rows, horizon=2, cap=10)
    assert list(ratios.index) == [0, 1]  # cutoff 2 has one of its two steps realised
    assert ratios[0] == pytest.approx(1.0)  # the zero forecast is naive
    assert ratios[1] == 10  # naive was exact, the model was not: capped, not infinite


def test_a_champion_version_is_claimed_for_retraining_once(home):
    settings = Settings()
    assert claim_retrain(settings, "m", "3", "run-a")
    assert not claim_retrain(settings, "m", "3", "run-b")
    assert claim_retrain(settings, "m", "4", "run-c")


def test_a_retrain_is_refused_once_the_champion_moved_or_was_retrained(home):
    settings = Settings()
    assert retrain_refusal(settings, "m", "3", "3", "run-a") is None
    assert "already retrained once" in retrain_refusal(settings, "m", "3", "3", "run-b")
    assert "is v5 now" in retrain_refusal(settings, "m", "4", "5", "run-c")
    assert retrain_refusal(settings, "m", "4", "4", "run-d") is None, "the moved-on check claimed nothing"
