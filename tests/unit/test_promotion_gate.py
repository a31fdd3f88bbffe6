"""The promotion gate is a pure function of policy and scores: a margin and significance, vs naive and the champion."""

from candlecast.config import PromotionConfig
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.registry.promotion import decide

POLICY = PromotionConfig()
SIGNIFICANT = {"dm_pvalue": 0.01}


def test_refuses_a_model_that_loses_to_naive():
    decision = decide({"rmse_ratio": 1.002, **SIGNIFICANT}, None, POLICY, RETURNS)
    assert not decision.promote
    assert "naive" in decision.reasons[0]


def test_promotes_the_first_model_that_beats_naive_by_the_margin_significantly():
    decision = decide({"rmse_ratio": 0.99, **SIGNIFICANT}, None, POLICY, RETURNS)
    assert decision.promote and "no champion yet" in decision.reasons


def test_defaults_refuse_noise():
    """A ratio of 0.9999 with a DM p-value of 0.4 is what noise looks like: refused on both counts."""
    decision = decide({"rmse_ratio": 0.9999, "dm_pvalue": 0.4}, None, POLICY, RETURNS)
    assert not decision.promote
    assert "0.9999 >= 0.9990" in decision.reasons[0]
    assert "0.4000 not < 0.05" in decision.reasons[1]


def test_needs_the_champion_beaten_by_the_margin_and_significantly():
    champion = {"rmse_ratio": 0.95, "dm_pvalue": 0.01}
    assert not decide({"rmse_ratio": 0.96, **SIGNIFICANT}, champion, POLICY, RETURNS).promote
    assert decide({"rmse_ratio": 0.94, **SIGNIFICANT}, champion, POLICY, RETURNS).promote
    strict = PromotionConfig(min_gain_vs_champion=0.02)
    assert not decide({"rmse_ratio": 0.94, **SIGNIFICANT}, champion, strict, RETURNS).promote  # 0.94 >= 0.95 * 0.98
    tie = decide({"rmse_ratio": 0.94, **SIGNIFICANT}, {"rmse_ratio": 0.95, "dm_pvalue": 0.3}, POLICY, RETURNS)
    assert not tie.promote and "vs the champion 0.3000 not < 0.05" in tie.reasons[-1]


def test_margin_over_naive():
    policy = PromotionConfig(min_gain_vs_naive=0.01)
    assert not decide({"rmse_ratio": 0.995, **SIGNIFICANT}, None, policy, RETURNS).promote
    assert decide({"rmse_ratio": 0.985, **SIGNIFICANT}, None, policy, RETURNS).promote


def test_diebold_mariano_threshold():
    policy = PromotionConfig(max_dm_pvalue=0.05)
    assert decide({"rmse_ratio": 0.98, "dm_pvalue": 0.01}, None, policy, RETURNS).promote
    refused = decide({"rmse_ratio": 0.98, "dm_pvalue": 0.30}, None, policy, RETURNS)
    assert not refused.promote and any("Diebold-Mariano" in r for r in refused.reasons)
    missing = decide({"rmse_ratio": 0.98}, None, policy, RETURNS)
    assert not missing.promote and any("missing" in r for r in missing.reasons)
    lenient = PromotionConfig(max_dm_pvalue=None, max_dm_pvalue_vs_champion=None)
    assert decide({"rmse_ratio": 0.98}, {"rmse_ratio": 0.99}, lenient, RETURNS).promote


def test_the_target_names_the_metric_the_gate_reads():
    """No sniffing of metric keys: a volatility run's gate reads qlike_ratio even beside an rmse_ratio."""
    scores = {"qlike_ratio": 0.9, "rmse_ratio": 1.2, **SIGNIFICANT}
    risk = decide(scores, None, POLICY, VOLATILITY)
    assert risk.promote and risk.reasons[0].startswith("qlike_ratio 0.9000 <")
    assert "the best classical volatility model" in risk.reasons[0]
    returns = decide(scores, None, POLICY, RETURNS)
    assert not returns.promote and returns.reasons[0].startswith("rmse_ratio 1.2000 >=")
