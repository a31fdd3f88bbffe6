"""Backtest flow: many symbols' walk-forward backtests as Prefect tasks, one task per symbol.

``backtest_flow`` runs its tasks one after another; ``run_backtests`` runs the same flow on the
fan-out runner (a local Dask cluster, or CANDLECAST_DASK_ADDRESS): docs/scale-out.md.
"""

from __future__ import annotations

from prefect import flow, unmapped

from candlecast.config import RunConfig
from candlecast.flows.fanout import fanout_runner, in_order
from candlecast.forecasting.multi_series import SeriesBacktest
from candlecast.tasks.backtest import backtest_series


@flow(name="candlecast-backtest", log_prints=True, task_runner=in_order())
def backtest_flow(sources: list[str], models: list[str], config: RunConfig | None = None) -> list[SeriesBacktest]:
    """Backtest every source (candle file or EXCHANGE:SYMBOL:TIMEFRAME) with every named model."""
    cfg = config or RunConfig()
    return backtest_series.map(sources, unmapped(models), unmapped(cfg)).result()


def run_backtests(sources: list[str], models: list[str], cfg: RunConfig) -> list[SeriesBacktest]:
    """``backtest_flow`` with its tasks fanned out on Dask."""
    return backtest_flow.with_options(task_runner=fanout_runner(cfg))(sources, models, cfg)
