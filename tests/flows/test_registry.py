"""Promotion against a real MLflow sqlite registry: gate rules, forced promotion, rollback, races.

The policy is explicit (not the defaults), and each candidate carries what the evaluation gives the
gate: its ratio and Diebold-Mariano p-value against naive and, once there is a champion, the
champion's ratio refitted on the same windows (``champion.*``) and the p-value against it.
"""

from __future__ import annotations

import multiprocessing as mp
import os

import mlflow
import pytest

from candlecast.config import PromotionConfig
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.registry import aliases, tracking
from candlecast.registry.promotion import gate_version, promote
from candlecast.settings import Settings

POLICY = PromotionConfig(
    model_name="gate-test",
    min_gain_vs_naive=0.0,
    max_dm_pvalue=0.05,
    min_gain_vs_champion=0.0,
    max_dm_pvalue_vs_champion=0.05,
)
SIGNIFICANT, NOT_SIGNIFICANT = 0.001, 0.6


class _Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def _scores(rmse_ratio: float, champion: tuple[str, float] | None = None) -> dict[str, float]:
    """What the evaluation hands the gate: vs naive (significant), and vs the champion when there is one.

    Against the champion the p-value is significant only when the candidate is better than it.
    """
    scores = {"rmse_ratio": rmse_ratio, "dm_pvalue": SIGNIFICANT}
    if champion is not None:
        version, ratio = champion
        significance = SIGNIFICANT if rmse_ratio < ratio else NOT_SIGNIFICANT
        scores |= {"champion.version": float(version), "champion.rmse_ratio": ratio, "champion.dm_pvalue": significance}
    return scores


def _candidate(
    settings: Settings, rmse_ratio: float, champion: tuple[str, float] | None = None
) -> tuple[str, str, dict[str, float]]:
    """A real logged pyfunc in a run whose test metrics are ``_scores(rmse_ratio, champion)``."""
    exp = tracking.experiment_id(settings, "gate-test")
    metrics = _scores(rmse_ratio, champion)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(name="model", python_model=_Echo(), pip_requirements=["mlflow"])
    return info.model_uri, run.info.run_id, metrics


@pytest.fixture
def settings(home) -> Settings:
    return Settings()


def test_gate_rules_forced_promotion_and_rollback(settings):
    client = tracking.client(settings)
    v1 = promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.99))
    assert v1.promoted and v1.champion == "1"

    worse = promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.995, champion=("1", 0.99)))
    assert not worse.promoted and worse.champion == "1"
    assert aliases.aliases(client, "gate-test") == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version("gate-test", "2").tags
    assert tags["promotion.decision"] == "refused" and "(champion 0.9900)" in tags["promotion.reasons"]
    assert tags["promotion.compared_with"] == "1 (refitted and scored on the same folds)"

    better = promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.97, champion=("1", 0.99)))
    assert better.promoted
    assert aliases.aliases(client, "gate-test") == {"champion": "3", "challenger": "3", "previous": "1"}

    # scores against a champion that is not the champion of now are not compared: refused, saying why
    stale = promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.9, champion=("1", 0.99)))
    assert not stale.promoted and "champion v3 was not refitted" in stale.reasons[-1]

    loser = promote(client, settings, POLICY, RETURNS, *_candidate(settings, 1.01, champion=("3", 0.97)))
    assert not loser.promoted
    forced = gate_version(client, settings, POLICY, RETURNS, loser.version, loser.metrics, force=True)
    assert forced.promoted and aliases.alias_version(client, "gate-test", "champion") == "5"
    tags = client.get_model_version("gate-test", "5").tags
    assert tags["promotion.forced"] == "true" and tags["promotion.reasons"].startswith("forced by")
    assert aliases.alias_version(client, "gate-test", "previous") == "3"

    demoted, restored = aliases.rollback(client, "gate-test")
    assert (demoted, restored) == ("5", "3")
    assert aliases.aliases(client, "gate-test")["champion"] == "3"
    assert "previous" not in aliases.aliases(client, "gate-test")
    assert client.get_model_version("gate-test", "5").tags["promotion.rolled_back"] == "true"
    with pytest.raises(ValueError, match="no @previous"):
        aliases.rollback(client, "gate-test")


def test_compare_and_set_refuses_a_stale_champion(settings):
    client = tracking.client(settings)
    promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.99))
    version = aliases.register(client, "gate-test", _candidate(settings, 0.9)[0], "", {})
    with pytest.raises(aliases.ChampionMoved, match="moved from version None to 1"):
        aliases.move_champion(client, "gate-test", version, expected=None)
    assert aliases.aliases(client, "gate-test")["champion"] == "1"


def _promote_in_process(home: str, model_uri: str, run_id: str, metrics: dict[str, float], barrier) -> None:
    os.environ["CANDLECAST_HOME"] = home
    settings = Settings()
    client = tracking.client(settings)
    version = aliases.register(client, "gate-test", model_uri, run_id, {})
    barrier.wait(30)
    gate_version(client, settings, POLICY, RETURNS, version, metrics)


def test_concurrent_promotions_leave_one_champion_and_keep_previous(settings):
    """Two challengers, both scored against champion v1, gated at once: the promotion lock serialises them.

    The first through the lock beats v1 and moves @champion (v1 becomes @previous); the second then
    finds a champion it was not scored against, so it is refused with that reason, not compared.
    """
    client = tracking.client(settings)
    promote(client, settings, POLICY, RETURNS, *_candidate(settings, 0.99))
    candidates = [_candidate(settings, ratio, champion=("1", 0.99)) for ratio in (0.95, 0.97)]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_promote_in_process, args=(str(settings.root), uri, run_id, metrics, barrier))
        for uri, run_id, metrics in candidates
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    final = aliases.aliases(client, "gate-test")
    versions = client.search_model_versions("name='gate-test'")
    decision = {str(v.version): v.tags.get("promotion.decision") for v in versions}
    reasons = {str(v.version): v.tags.get("promotion.reasons", "") for v in versions}
    winner = final["champion"]
    loser = ({"2", "3"} - {winner}).pop()  # the processes registered and gated in either order
    assert winner in {"2", "3"} and decision[winner] == "promoted"
    assert decision[loser] == "refused" and f"champion v{winner} was not refitted" in reasons[loser]
    assert final["previous"] == "1"
