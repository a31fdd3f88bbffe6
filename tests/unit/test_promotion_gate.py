"""The promotion gate is a pure function of policy and scores."""

from candlecast.config import PromotionConfig
from candlecast.registry.promotion import decide

POLICY = PromotionConfig()


def test_refuses_a_model_that_loses_to_naive():
    decision = decide({"rmse_ratio": 1.002}, None, POLICY)
    assert not decision.promote
    assert "naive" in decision.reasons[0]


def test_promotes_the_first_model_that_beats_naive():
    decision = decide({"rmse_ratio": 0.99}, None, POLICY)
    assert decision.promote and "no champion yet" in decision.reasons


def test_needs_the_champion_beaten_by_the_margin():
    champion = {"rmse_ratio": 0.95}
    assert not decide({"rmse_ratio": 0.96}, champion, POLICY).promote
    assert decide({"rmse_ratio": 0.94}, champion, POLICY).promote
    strict = PromotionConfig(min_gain_vs_champion=0.02)
    assert not decide({"rmse_ratio": 0.94}, champion, strict).promote  # 0.94 >= 0.95 * 0.98


def test_margin_over_naive():
    policy = PromotionConfig(min_gain_vs_naive=0.01)
    assert not decide({"rmse_ratio": 0.995}, None, policy).promote
    assert decide({"rmse_ratio": 0.985}, None, policy).promote


def test_diebold_mariano_threshold():
    policy = PromotionConfig(max_dm_pvalue=0.05)
    assert decide({"rmse_ratio": 0.98, "dm_pvalue": 0.01}, None, policy).promote
    refused = decide({"rmse_ratio": 0.98, "dm_pvalue": 0.30}, None, policy)
    assert not refused.promote and any("Diebold-Mariano" in r for r in refused.reasons)
    missing = decide({"rmse_ratio": 0.98}, None, policy)
    assert not missing.promote and any("missing" in r for r in missing.reasons)
