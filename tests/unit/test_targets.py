"""The target is a plug-in: a toy third target runs through the engine, the gate and prediction unchanged.

The toy forecasts the size of the next h cumulative returns (|r|): its own label, its own served rows,
its own gate metric (``mae_ratio``). Nothing outside this file knows it exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from candlecast.config import PromotionConfig, RunConfig, TargetName
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.backtest import named_factories
from candlecast.forecasting.neural import neural_forecaster
from candlecast.forecasting.served import SERVED
from candlecast.forecasting.splits import make_plan
from candlecast.forecasting.targets import TARGETS, Walk
from candlecast.forecasting.targets.returns import ReturnsTarget
from candlecast.forecasting.walkforward import backtest
from candlecast.registry.bundle import ModelBundle
from candlecast.registry.promotion import decide
from candlecast.registry.refit import refit_bundle

REPO = Path(__file__).resolve().parents[2]
HOUR = 3_600_000


class AbsoluteReturn(ReturnsTarget):
    """The toy: how far the price moves over each of the next h candles, whichever way."""

    key = bundle_key = "abs_return"
    registry_name = "candlecast-abs"
    store_kind = "abs"
    gate_metric = "mae_ratio"
    gate_reference = "naive (no move)"
    forecast_plot = False

    def view(self, s: SeriesArrays) -> SeriesArrays:
        out = SeriesArrays(s.name, s.timestamps, s.features, np.abs(s.targets), s.close, s.columns)
        out.valid_end = s.valid_end
        return out

    def frame(self, spec, cutoffs, closes, point, bounds) -> pd.DataFrame:
        steps = np.tile(np.arange(1, point.shape[1] + 1), len(cutoffs))
        return pd.DataFrame(
            {"cutoff": np.repeat(cutoffs, point.shape[1]), "step": steps, "forecast_abs_return": point.ravel()}
        )


ABS = AbsoluteReturn()


def test_a_third_target_runs_through_backtest_gate_and_prediction(monkeypatch, tmp_path):
    monkeypatch.setitem(TARGETS, ABS.key, ABS)
    raw = {"features": {"lookback": 12, "horizon": 3, "vol_window": 12}, "train": {"max_epochs": 1, "threads": 1}}
    cfg = RunConfig.model_validate(raw).model_copy(update={"target": ABS.key})  # the Literal names shipped targets
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 1500, "1h", seed=1)
    s = SeriesArrays.from_frame("btc", series_features(candles, cfg.features, "1h"), 3)
    s.mark_windows(12, HOUR)
    plan, walk = make_plan([s], cfg), Walk.of(cfg)
    tiny = {"hidden_size": 8}
    factories = {"model": lambda: neural_forecaster(cfg, "lstm", tiny), **named_factories(["naive", "ridge"], cfg)}
    result = backtest(ABS, factories, [s], plan.test_folds[:1], walk)

    f = result.pooled("ridge")
    assert (f.y >= 0).all() and np.allclose(f.y, np.abs(ABS.view(s).targets[np.isin(s.timestamps, f.timestamps)]))
    assert result.summary.loc["naive", "mae_ratio"] == pytest.approx(1.0)
    assert result.summary.loc["ridge", "mae_ratio"] < 1  # a size is forecastable where a sign is not

    metrics = ABS.run_metrics(result, None, walk)
    decision = decide(metrics, None, PromotionConfig(max_dm_pvalue=None), ABS)
    assert decision.reasons[0].startswith(f"mae_ratio {metrics['mae_ratio']:.4f}")
    assert "naive (no move)" in decision.reasons[0]

    bundle, _ = refit_bundle(cfg, [s], tiny, 1, ABS.shipped(result.forecasts["model"][-1]), int(s.timestamps[-1]))
    loaded = ModelBundle.load(bundle.save(tmp_path / "bundle"))
    assert loaded.spec.target == "abs_return" and loaded.target is ABS
    out = loaded.predict(candles)
    assert list(out.columns) == ["cutoff", "step", "forecast_abs_return"] and len(out) == 3
    assert out["cutoff"].iloc[0] == candles["timestamp"].iloc[-1]


def test_config_names_and_registered_names_follow_the_registry():
    assert set(get_args(TargetName)) == set(TARGETS)
    for key, target in TARGETS.items():
        assert target.key == key
        assert RunConfig.model_validate({"target": key}).promotion.model_name == target.registry_name
    assert len({t.bundle_key for t in TARGETS.values()}) == len(TARGETS)
    # the lean runtime's served forms (it cannot import the targets) say what the targets say
    assert {t.bundle_key: (t.key, t.store_kind) for t in TARGETS.values()} == {
        key: (form.key, form.store_kind) for key, form in SERVED.items()
    }


def test_nothing_outside_the_target_modules_branches_on_the_target():
    """`cfg.target == "volatility"` and friends belong in candlecast/forecasting/targets/ only."""
    branch = re.compile(r"""\btarget\s*==\s*["']|["']\s*==\s*\w*\.?target\b|\.target\s*==""")
    found = []
    roots = [REPO / name for name in ("candlecast", "models", "tasks", "flows", "deployments")]  # the links' targets
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        if "targets" in path.parts:
            continue
        found += [f"{path}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if branch.search(line)]
    assert not found, found
