"""Promotion against a real MLflow sqlite registry: gate rules, forced promotion, rollback, races."""

from __future__ import annotations

import multiprocessing as mp
import os

import mlflow
import pytest

from candlecast.config import PromotionConfig
from candlecast.registry import aliases, tracking
from candlecast.registry.promotion import gate_version, promote
from candlecast.settings import Settings

POLICY = PromotionConfig(model_name="gate-test")


class _Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def _candidate(settings: Settings, rmse_ratio: float) -> tuple[str, str, dict[str, float]]:
    """A real logged pyfunc in a run whose test metrics say ``rmse_ratio``."""
    client = tracking.client(settings)
    exp = tracking.experiment_id(settings, "gate-test")
    metrics = {"rmse_ratio": rmse_ratio}
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(name="model", python_model=_Echo(), pip_requirements=["mlflow"])
    del client
    return info.model_uri, run.info.run_id, metrics


@pytest.fixture
def settings(home) -> Settings:
    return Settings()


def test_gate_rules_forced_promotion_and_rollback(settings):
    client = tracking.client(settings)
    v1 = promote(client, settings, POLICY, *_candidate(settings, 0.99))
    assert v1.promoted and v1.champion == "1"

    worse = promote(client, settings, POLICY, *_candidate(settings, 0.995))
    assert not worse.promoted and worse.champion == "1"
    assert aliases.aliases(client, "gate-test") == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version("gate-test", "2").tags
    assert tags["promotion.decision"] == "refused" and "champion 0.9900" in tags["promotion.reasons"]

    better = promote(client, settings, POLICY, *_candidate(settings, 0.97))
    assert better.promoted
    assert aliases.aliases(client, "gate-test") == {"champion": "3", "challenger": "3", "previous": "1"}

    loser = promote(client, settings, POLICY, *_candidate(settings, 1.01))
    assert not loser.promoted
    forced = gate_version(client, settings, POLICY, loser.version, loser.metrics, force=True)
    assert forced.promoted and aliases.alias_version(client, "gate-test", "champion") == "4"
    tags = client.get_model_version("gate-test", "4").tags
    assert tags["promotion.forced"] == "true" and tags["promotion.reasons"].startswith("forced by")
    assert aliases.alias_version(client, "gate-test", "previous") == "3"

    demoted, restored = aliases.rollback(client, "gate-test")
    assert (demoted, restored) == ("4", "3")
    assert aliases.aliases(client, "gate-test")["champion"] == "3"
    assert "previous" not in aliases.aliases(client, "gate-test")
    assert client.get_model_version("gate-test", "4").tags["promotion.rolled_back"] == "true"
    with pytest.raises(ValueError, match="no @previous"):
        aliases.rollback(client, "gate-test")


def test_compare_and_set_refuses_a_stale_champion(settings):
    client = tracking.client(settings)
    promote(client, settings, POLICY, *_candidate(settings, 0.99))
    version = aliases.register(client, "gate-test", _candidate(settings, 0.9)[0], "", {})
    with pytest.raises(aliases.ChampionMoved, match="moved from version None to 1"):
        aliases.move_champion(client, "gate-test", version, expected=None)
    assert aliases.aliases(client, "gate-test")["champion"] == "1"


def _promote_in_process(home: str, model_uri: str, run_id: str, ratio: float, barrier) -> None:
    os.environ["CANDLECAST_HOME"] = home
    settings = Settings()
    client = tracking.client(settings)
    version = aliases.register(client, "gate-test", model_uri, run_id, {})
    barrier.wait(30)
    gate_version(client, settings, POLICY, version, {"rmse_ratio": ratio})


def test_concurrent_promotions_leave_one_champion_and_keep_previous(settings):
    client = tracking.client(settings)
    promote(client, settings, POLICY, *_candidate(settings, 0.99))
    candidates = [_candidate(settings, ratio) for ratio in (0.95, 0.97)]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_promote_in_process, args=(str(settings.root), uri, run_id, m["rmse_ratio"], barrier))
        for uri, run_id, m in candidates
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    final = aliases.aliases(client, "gate-test")
    versions = client.search_model_versions("name='gate-test'")
    decision = {str(v.version): v.tags.get("promotion.decision") for v in versions}
    ratio = {str(v.version): client.get_run(v.run_id).data.metrics["rmse_ratio"] for v in versions}
    best, other = sorted(("2", "3"), key=ratio.get)  # the processes registered in either order
    assert final["champion"] == best  # the better one wins whatever order the gates ran in
    assert decision[best] == "promoted"
    # serialised: either the other went first and the best beat it, or the best went first and the other lost
    assert final["previous"] == (other if decision[other] == "promoted" else "1")
    assert final["previous"] != final["champion"]
