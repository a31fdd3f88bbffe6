"""The MLflow runs table: the parent run's name carries the result, and a saved view shows it as columns."""

import json

from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.registry import tracking
from candlecast.registry.tracking import headline_run_name
from candlecast.settings import Settings


def test_the_name_gets_the_ratio_and_the_verdict_once():
    metrics = {"rmse_ratio": 0.66241, "dm_pvalue": 0.0}
    first = headline_run_name("blazing-cormorant", metrics, "candlecast-lstm v1: promoted to @champion", "rmse_ratio")
    assert first == "blazing-cormorant · rmse_ratio 0.6624 · promoted"
    again = headline_run_name(
        first, metrics | {"rmse_ratio": 0.7}, "candlecast-lstm v1: kept as @challenger", "rmse_ratio"
    )
    assert again == "blazing-cormorant · rmse_ratio 0.7000 · refused"


def test_a_risk_run_shows_its_qlike_ratio():
    key = VOLATILITY.gate_metric  # the target names the ratio: the run's metrics are not sniffed
    name = headline_run_name(
        None, {"qlike_ratio": 0.9, "rmse_ratio": 1.2}, "candlecast-risk v2: kept as @challenger", key
    )
    assert name == "run · qlike_ratio 0.9000 · refused"


def test_the_experiment_gets_a_saved_view_with_the_result_columns(home):
    """A real MLflow store: the view is the experiment tag MLflow 3.17's runs page lists under "Views"."""
    settings = Settings()
    run_id = tracking.start_parent_run(settings, "view-test", "calm-otter", {})
    metrics = {"rmse_ratio": 0.8, "dm_pvalue": 0.01}
    tracking.log_summary(settings, run_id, metrics, "candlecast-lstm v1: promoted to @champion", ("ok",))
    c = tracking.client(settings)
    run = c.get_run(run_id)
    experiment = c.get_experiment(run.info.experiment_id)
    envelope = json.loads(experiment.tags[f"mlflow.sharedViewState.{tracking.RESULT_VIEW}"])
    state = json.loads(envelope["state"])  # the UI parses the state string as JSON
    assert state["selectedColumns"][:2] == ["tags.`gate`", "metrics.`rmse_ratio`"] and envelope["name"]
    assert run.data.tags["gate"] == "promoted"
    note = run.data.tags["mlflow.note.content"]
    # the link comes before the reasons: the run page folds a long description under "Show more"
    assert 0 < note.index(tracking.result_view_path(experiment.experiment_id)) < note.index("- ok")
