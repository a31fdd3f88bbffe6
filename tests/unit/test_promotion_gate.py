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


def _coins(**ratios: tuple[float, float]) -> dict[str, float]:
    """Per-coin scores of one many-coin model: series.<coin>.qlike_ratio and its DM p-value."""
    out: dict[str, float] = {"qlike_ratio": 0.9, "dm_pvalue": 0.01}  # every window pooled: good
    for coin, (ratio, p) in ratios.items():
        out |= {f"series.{coin}.qlike_ratio": ratio, f"series.{coin}.dm_pvalue": p}
    return out


def test_a_many_coin_model_must_beat_each_coins_own_best_baseline():
    """Pooled over coins it wins; on ETH it loses to ETH's best baseline: refused, and the reason names ETH."""
    scores = _coins(BTC=(0.85, 0.001), ETH=(1.02, 0.7))
    decision = decide(scores, None, POLICY, VOLATILITY)
    assert not decision.promote
    assert [r.split(":")[0] for r in decision.reasons[:-1]] == ["BTC", "BTC", "ETH", "ETH"]
    assert decision.reasons[2].startswith("ETH: qlike_ratio 1.0200 >=")
    assert decide(_coins(BTC=(0.85, 0.001), ETH=(0.9, 0.01)), None, POLICY, VOLATILITY).promote


def test_a_many_coin_model_must_beat_each_coins_champion():
    scores = _coins(BTC=(0.85, 0.001), ETH=(0.9, 0.01))
    champion = {"series.BTC.qlike_ratio": 0.95, "series.BTC.dm_pvalue": 0.01}
    champion |= {"series.ETH.qlike_ratio": 0.88, "series.ETH.dm_pvalue": 0.4}  # better than us on ETH
    decision = decide(scores, champion, POLICY, VOLATILITY)
    assert not decision.promote
    failed = [r for r in decision.reasons if " >= " in r or "not <" in r]
    assert failed and all(r.startswith("ETH: ") for r in failed)


def test_the_champion_is_refitted_pooled_only_if_it_was_pooled():
    """A pooled challenger meets a per-coin champion as it was fitted, not as the run's switch says."""
    from candlecast.config import RunConfig
    from candlecast.registry.bundle import BundleSpec
    from candlecast.registry.evaluation import champion_forecaster

    cfg = RunConfig.model_validate(
        {"target": "volatility", "features": {"realized": ["rv"]}, "multi_series": {"pooled_volatility": "residual"}}
    )
    one = {"mean": [0.0], "std": [1.0], "target_scale": [1.0]}
    shared = BundleSpec("lstm", {}, {}, "1h", one, ["x"], [0.1, 0.9], {}, target="variance")
    many = {"names": ["a", "b"], "scalers": [one, one], "pooled": one}
    pooled = BundleSpec("lstm", {}, {}, "1h", many | {"id_input": "index"}, ["x"], [0.1, 0.9], {}, target="variance")
    assert champion_forecaster(cfg, shared).pooled is None and not champion_forecaster(cfg, shared).per_series
    assert champion_forecaster(cfg, pooled).pooled is not None
    global_model = BundleSpec("lstm", {}, {}, "1h", many, ["x"], [0.1, 0.9], {}, target="variance")
    assert champion_forecaster(cfg, global_model).per_series and champion_forecaster(cfg, global_model).pooled is None
