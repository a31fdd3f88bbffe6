"""Trading flows: a NautilusTrader backtest of forecasts, and today's signals after each prediction."""

from __future__ import annotations

from typing import Literal

from prefect import flow

from candlecast.config import RunConfig
from candlecast.settings import Settings
from candlecast.tasks.trading import registered_forecasts, signals, trade, walk_forward_forecasts
from candlecast.tasks.validate import validate_stored
from candlecast.trading.config import TradingConfig


def _default_models(cfg: RunConfig) -> list[str]:
    """naive, the configured baselines and the swept architecture (default hyperparameters)."""
    model = "lstm" if cfg.sweep.model == "lstm_family" else cfg.sweep.model
    return list(dict.fromkeys(["naive", *cfg.backtest.baselines, model]))


@flow(name="candlecast-trade-backtest", log_prints=True)
def trade_backtest_flow(
    config: RunConfig | None = None,
    trading: TradingConfig | None = None,
    source: Literal["walk-forward", "registered"] = "walk-forward",
    models: list[str] | None = None,
) -> dict:
    """Forecasts (walk-forward, or the registered version's stored ones) traded next to buy-and-hold."""
    cfg, tcfg = config or RunConfig(), trading or TradingConfig()
    for series in cfg.series:
        validate_stored(series)
    hold = tcfg.hold or cfg.features.horizon
    out_dir = Settings().root / "trading" / f"{cfg.name}_{source}_hold{hold}"
    path = out_dir.with_name(f"{out_dir.name}.forecasts.parquet")
    if source == "registered":
        path, lineage = registered_forecasts(cfg, hold, path)
    else:
        path, lineage = walk_forward_forecasts(cfg, models or _default_models(cfg), hold, path), {}
    return trade(cfg, tcfg, path, out_dir, {"forecast_source": source, **lineage})


@flow(name="candlecast-signals", log_prints=True)
def signals_flow(
    config: RunConfig | None = None,
    trading: TradingConfig | None = None,
    source: Literal["store", "champion"] = "store",
) -> dict:
    """Today's decisions from the forecasts the predict flow just stored (or fresh from @champion)."""
    cfg = config or RunConfig()
    for series in cfg.series:
        validate_stored(series, live=True)
    return signals(cfg, trading or TradingConfig(), source)
