"""Sizing policies and the trading config: pure functions, so exact numbers."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from candlecast.trading.config import PolicyConfig, TradingConfig
from candlecast.trading.policy import (
    annual_vol,
    horizon_sigma,
    one_day_var,
    prob_positive,
    rebalance,
    target_exposures,
)

Z80 = NormalDist().inv_cdf(0.9)


def _frame(forecast, lower, upper, horizon=24, **extra) -> pd.DataFrame:
    n = len(forecast)
    return pd.DataFrame(
        {
            "symbol": ["BTC/USDT"] * n,
            "timeframe": "1h",
            "horizon": horizon,
            "forecast": forecast,
            "lower": lower,
            "upper": upper,
            "coverage": 0.8,
            **extra,
        }
    )


def test_sign_policy_takes_the_per_symbol_cap_in_the_forecasts_direction():
    frame = _frame([0.01, -0.02, 0.0], [-0.05] * 3, [0.05] * 3)
    sign = PolicyConfig(name="sign", max_leverage=1.0, max_position=0.8)
    assert target_exposures(frame, sign, n_symbols=1).tolist() == [0.8, -0.8, 0.0]
    assert target_exposures(frame, sign, n_symbols=4).tolist() == [0.25, -0.25, 0.0]  # equal leverage shares
    long_only = sign.model_copy(update={"allow_short": False})
    assert target_exposures(frame, long_only, n_symbols=1).tolist() == [0.8, 0.0, 0.0]


def test_vol_target_sizes_by_the_interval_until_a_volatility_column_exists():
    sigma = 0.03  # 24-hour log-return standard deviation
    frame = _frame([0.01], [0.01 - Z80 * sigma], [0.01 + Z80 * sigma])
    np.testing.assert_allclose(horizon_sigma(frame), [sigma])
    annual = sigma * np.sqrt(365.25 * 24 / 24)
    np.testing.assert_allclose(annual_vol(horizon_sigma(frame), 24, "1h"), [annual])
    policy = PolicyConfig(name="vol_target", target_vol=0.2, max_leverage=2.0, max_position=2.0)
    np.testing.assert_allclose(target_exposures(frame, policy, 1), [0.2 / annual])
    riskier = frame.assign(volatility=2 * sigma)  # a risk model's forecast wins over the interval
    np.testing.assert_allclose(target_exposures(riskier, policy, 1), [0.2 / annual / 2])
    calm = frame.assign(volatility=1e-4)
    assert target_exposures(calm, policy, 1)[0] == 2.0  # capped by max_position / leverage


def test_no_trade_band_skips_small_changes_but_never_keeps_a_position_without_a_view():
    assert rebalance(0.55, 0.5, band=0.1) == 0.5
    assert rebalance(0.65, 0.5, band=0.1) == 0.65
    assert rebalance(-0.5, 0.5, band=0.1) == -0.5
    assert rebalance(0.0, 0.05, band=0.1) == 0.0


def test_prob_positive_reads_the_interval_as_quantiles():
    symmetric = _frame([0.0, 0.01, -0.01], [-0.02, -0.01, -0.03], [0.02, 0.03, 0.01])
    p = prob_positive(symmetric)
    assert p[0] == pytest.approx(0.5)
    assert p[1] == pytest.approx(NormalDist().cdf(0.01 / (0.02 / Z80)))
    assert p[2] == pytest.approx(1 - p[1])
    # a forecast at the lower bound puts P(X <= lower) at (1 - coverage) / 2 exactly
    at_bound = _frame([0.0], [-0.02], [0.05]).assign(forecast=0.02, lower=0.0)
    assert prob_positive(at_bound)[0] == pytest.approx(0.9)


def test_one_day_var_scales_the_holding_period_sigma_by_the_square_root_of_time():
    sigma24 = 0.03
    frame = _frame([0.0], [-Z80 * sigma24], [Z80 * sigma24])
    var = one_day_var(frame, np.array([-0.5]))
    assert var[0] == pytest.approx(0.5 * NormalDist().inv_cdf(0.95) * sigma24)
    six_hours = _frame([0.0], [-Z80 * sigma24], [Z80 * sigma24], horizon=6)
    assert one_day_var(six_hours, np.array([1.0]))[0] == pytest.approx(NormalDist().inv_cdf(0.95) * sigma24 * 2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"policy": {"name": "kelly"}}, r"policy.name: Input should be 'sign' or 'vol_target' \(got 'kelly'\)"),
        ({"policy": {"max_leverage": -1}}, r"policy.max_leverage: Input should be greater than 0 \(got -1\)"),
        ({"policy": {"max_drawdown": 1.5}}, "policy.max_drawdown"),
        ({"execution": {"mode": "vwap"}}, "execution.mode"),
        ({"execution": {"taker_fee_bps": -1}}, "execution.taker_fee_bps"),
        ({"policy": {"max_leverage": 20}}, "exceeds execution.venue_leverage"),
        ({"polcy": {}}, "polcy: Extra inputs are not permitted"),
    ],
)
def test_bad_trading_config_is_one_line_naming_the_key(raw, message):
    with pytest.raises(ValueError, match=message) as info:
        TradingConfig.parse(raw)
    assert "\n" not in str(info.value)


def test_trading_config_from_yaml_and_flag_updates(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("policy:\n  name: sign\n  no_trade_band: 0.2\nhold: 6\n")
    cfg = TradingConfig.from_yaml(path)
    assert (cfg.policy.name, cfg.policy.no_trade_band, cfg.hold) == ("sign", 0.2, 6)
    updated = cfg.with_updates(policy={"no_trade_band": None, "max_leverage": 2.0}, hold=None)
    assert (updated.policy.no_trade_band, updated.policy.max_leverage, updated.hold) == (0.2, 2.0, 6)
    with pytest.raises(ValueError, match="does not exist"):
        TradingConfig.from_yaml(tmp_path / "missing.yaml")
