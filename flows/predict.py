"""Predict flow: return forecasts, and risk forecasts, for every configured series from the @champions.

Return forecasts go in chunks of ``multi_series.predict_chunk`` symbols, each chunk one task and one
forward pass of the champion (``predict_many`` of the bundle, in the lean runtime). ``predict_flow`` runs the chunks one
after another; ``run_predictions`` runs the same flow with the chunks fanned out on Dask.
"""

from __future__ import annotations

from prefect import flow, unmapped

from candlecast.config import RunConfig
from candlecast.flows.fanout import fanout_runner, in_order
from candlecast.registry.batch_prediction import merge_outcomes, symbol_chunks
from candlecast.registry.prediction import PredictionOutcome
from candlecast.tasks.predict import predict_risk, predict_symbols
from candlecast.tasks.validate import validate_stored


@flow(name="candlecast-predict", log_prints=True, task_runner=in_order())
def predict_flow(config: RunConfig | None = None) -> PredictionOutcome:
    """Validate each series' newest candles, then forecast risk and returns from the champions."""
    cfg = config or RunConfig()
    for series in cfg.series:
        validate_stored(series, live=True, cfg=cfg)
    predict_risk(cfg)  # volatility and VaR next to the returns, when a risk model holds @champion
    return merge_outcomes(predict_symbols.map(unmapped(cfg), symbol_chunks(cfg)).result())


def run_predictions(cfg: RunConfig) -> PredictionOutcome:
    """``predict_flow`` with its chunks fanned out on Dask (a local cluster, or CANDLECAST_DASK_ADDRESS)."""
    return predict_flow.with_options(task_runner=fanout_runner(cfg))(cfg)
