"""Backtest task: one symbol's walk-forward backtest (every named model on its evaluation folds)."""

from __future__ import annotations

from prefect import task

from candlecast.config import RunConfig
from candlecast.forecasting.multi_series import SeriesBacktest, backtest_source
from candlecast.settings import Settings


@task(name="backtest-series")
def backtest_series(source: str, models: list[str], cfg: RunConfig) -> SeriesBacktest:
    """`candlecast backtest` of one candle file or stored series EXCHANGE:SYMBOL:TIMEFRAME."""
    return backtest_source(source, models, cfg, Settings())
