"""Predict flow: return forecasts, and risk forecasts, for every configured series from the @champions.

Return forecasts go in chunks of ``multi_series.predict_chunk`` symbols, each chunk one task and one
forward pass of the champion (``predict_many`` of the bundle, in the lean runtime). ``predict_flow`` runs the chunks one
after another; ``run_predictions`` runs the same flow with the chunks fanned out on Dask.
"""

from __future__ import annotations

from prefect import flow, unmapped

from candlecast.config import RunConfig
from candlecast.flows.fanout import fanout_runner, in_order
from candlecast.live.forecast import SeriesForecasts
from candlecast.registry.batch_prediction import merge_outcomes, symbol_chunks
from candlecast.registry.prediction import PredictionOutcome
from candlecast.tasks.live import predict_series
from candlecast.tasks.predict import predict_risk, predict_symbols
from candlecast.tasks.validate import validate_stored


@flow(name="candlecast-predict", log_prints=True, task_runner=in_order())
def predict_flow(
    config: RunConfig | None = None, symbol: str | None = None, first: int | None = None, cutoff: int | None = None
) -> PredictionOutcome | SeriesForecasts:
    """Validate each series' newest candles, then forecast risk and returns from the champions.

    With ``symbol`` (the ``candlecast.candles.stored`` trigger's payload): that series only, one
    forecast per candle in ``first..cutoff`` (already gated at ingest), then ``forecast.stored``.
    """
    cfg = config or RunConfig()
    if symbol is not None and cutoff is not None:
        return predict_series(cfg, symbol, cutoff if first is None else first, cutoff)
    for series in cfg.series:
        validate_stored(series, live=True, cfg=cfg)
    predict_risk(cfg)  # volatility and VaR next to the returns, when a risk model holds @champion
    return merge_outcomes(predict_symbols.map(unmapped(cfg), symbol_chunks(cfg)).result())


def run_predictions(cfg: RunConfig) -> PredictionOutcome:
    """``predict_flow`` with its chunks fanned out on Dask (a local cluster, or CANDLECAST_DASK_ADDRESS)."""
    outcome = predict_flow.with_options(task_runner=fanout_runner(cfg))(cfg)
    assert isinstance(outcome, PredictionOutcome)  # no symbol given: the batch prediction's outcome
    return outcome
