"""The MLflow runs table shows run names only: the parent run's name carries the result after the gate."""

from candlecast.forecasting.targets.volatility import VOLATILITY
from candlecast.registry.tracking import headline_run_name


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
