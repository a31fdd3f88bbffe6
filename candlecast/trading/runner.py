"""`candlecast trade backtest` as plain functions: candles, forecast frames, the trade, the report.

Forecasts come from (a) a walk-forward backtest run here, so every traded forecast was made by a
model fitted before that period; (b) the prediction store of a registered version; or (c) a forecast
file written by an earlier run. The CLI and the Prefect tasks call these same functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from candlecast.config import RunConfig
from candlecast.settings import Settings
from candlecast.trading.backtest import TradeResult, trade_backtest
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import Market
from candlecast.trading.forecasts import ForecastError
from candlecast.trading.sources import (
    from_backtest,
    from_prediction_store,
    naive_references,
    read_forecast_file,
    write_forecast_file,
)

log = logging.getLogger(__name__)


@dataclass
class TradeOutcome:
    """What a trade run leaves: the table, the report's files, the MLflow run and the engine's time."""

    table: pd.DataFrame
    report: dict[str, Path]
    forecast_file: Path | None = None
    mlflow_run_id: str | None = None
    engine_seconds: float = 0.0
    lineage: dict[str, str] = field(default_factory=dict)


def load_market(
    sources: list[str], settings: Settings | None = None, warn: Callable[[str], None] | None = None
) -> tuple[Market, dict[str, str]]:
    """Candles from files or stored series; returns the market and series name -> symbol.

    ``warn`` gets one line per file with rows left out (an empty price: forecasting.backtest.load_source).
    """
    from candlecast.forecasting.backtest import load_source

    if not sources:
        raise ValueError("no candles to trade: pass --data FILE or EXCHANGE:SYMBOL:TF (repeat for more)")
    loaded = [load_source(text, settings, warn) for text in sources]
    timeframes = sorted({s.timeframe for s in loaded})
    if len(timeframes) > 1:
        raise ValueError(f"the candles mix timeframes {timeframes}: trade one timeframe per run")
    symbols = [s.symbol for s in loaded]
    if len(set(symbols)) != len(symbols) or any("/" not in s for s in symbols):
        raise ValueError(
            f"symbols {symbols} must be distinct BASE/QUOTE pairs: a file's name carries its pair as BASE-QUOTE "
            "(binance_BTC-USDT_1h.csv, BTC-USDT.parquet)"
        )
    market = Market(timeframes[0], {s.symbol: s.candles.reset_index(drop=True) for s in loaded})
    _ = market.quote  # one settlement currency, or a clear error now rather than in the engine
    return market, {s.name: s.symbol for s in loaded}


def store_market(settings: Settings, cfg: RunConfig) -> Market:
    """The configured series from the candle store."""
    return load_market([str(series) for series in cfg.series], settings)[0]


def walk_forward_frames(
    sources: list[str],
    models: list[str],
    cfg: RunConfig,
    hold: int,
    settings: Settings | None = None,
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Out-of-sample forecasts of every model on every series, one frame per model (all symbols)."""
    from candlecast.forecasting.backtest import load_source, run_backtest

    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in models}
    for text in sources:
        source = load_source(text, settings)
        out = run_backtest(source, models, cfg, on_fold=on_fold)
        result = out[0] if isinstance(out, tuple) else out
        frames = from_backtest(
            result, models, {source.name: source.symbol}, source.timeframe, hold, cfg.predict.interval
        )
        for name, frame in frames.items():
            parts[name].append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def store_frames(
    settings: Settings, cfg: RunConfig, hold: int, version: str | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The registered model's stored forecasts for the configured series, with the naive references."""
    from candlecast.registry.prediction_store import prediction_store

    store = prediction_store(settings, cfg.predict.store_url)
    rows = [_with_series(store.read_all(series), series) for series in cfg.series]
    if all(r.empty for r in rows):
        names = [str(s) for s in cfg.series]
        raise ForecastError(f"the prediction store holds no forecasts for {names}: run `candlecast predict` first")
    frame = from_prediction_store(pd.concat(rows, ignore_index=True), hold, cfg.predict.interval, version)
    lineage = {c: str(frame[c].iloc[0]) for c in ("model_name", "model_version", "run_id") if c in frame}
    name = lineage.get("model_name", "registered")
    return {name: frame, **naive_references(frame)}, lineage


def _with_series(rows: pd.DataFrame, series) -> pd.DataFrame:
    """Stored rows carry their symbol and timeframe; older rows may not, the series they were read for does."""
    if rows.empty:
        return rows
    return rows.assign(symbol=series.symbol, timeframe=series.timeframe)


def file_frames(path: Path) -> dict[str, pd.DataFrame]:
    """Frames by model from a saved forecast file."""
    return read_forecast_file(Path(path))


def trade(
    market: Market,
    frames: dict[str, pd.DataFrame],
    tcfg: TradingConfig,
    out_dir: Path,
    header: str,
    lineage: dict[str, str] | None = None,
    settings: Settings | None = None,
    experiment: str | None = None,
) -> TradeOutcome:
    """Trade every frame and buy-and-hold, write the report, and log it to MLflow when an experiment is named."""
    result: TradeResult = trade_backtest(market, frames, tcfg)
    result.lineage = dict(lineage or {})
    return _report(result, out_dir, header, settings, experiment)


def save_frames(frames: dict[str, pd.DataFrame], path: Path) -> Path:
    """The forecasts to trade, saved before trading so a rerun or an audit can use them (`--forecasts FILE`)."""
    return write_forecast_file(frames, Path(path))


def walk_forward_risk(
    sources: list[str],
    models: list[str],
    cfg: RunConfig,
    settings: Settings | None = None,
    on_fold: Callable[[str, int, dict[str, float]], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every risk model's out-of-sample variance forecasts on every series (``target: volatility`` folds)."""
    from candlecast.forecasting.backtest import load_source, run_backtest
    from candlecast.trading.risk_source import risk_from_forecasts

    raw = cfg.model_dump()
    raw["target"] = "volatility"
    raw.get("promotion", {}).pop("model_name", None)  # the volatility default, not the return model's name
    risk_cfg = type(cfg).model_validate(raw)
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in models}
    for text in sources:
        source = load_source(text, settings)
        result, _ = run_backtest(source, models, risk_cfg, on_fold=on_fold)
        for name in models:
            parts[name].append(
                risk_from_forecasts(result.pooled(name), {source.name: source.symbol}, risk_cfg.features.horizon)
            )
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def compare_sizing(
    market: Market,
    risk: dict[str, pd.DataFrame],
    tcfg: TradingConfig,
    out_dir: Path,
    header: str,
    reference: str = "ewma",
    settings: Settings | None = None,
    experiment: str | None = None,
) -> tuple[TradeOutcome, pd.DataFrame]:
    """Trade the volatility-targeted long sized by each risk model, constant and buy-and-hold; score the sizing."""
    from candlecast.trading.sizing import score_sizing, sizing_frames

    hold = tcfg.hold or int(next(iter(risk.values()))["horizon"].iloc[0])
    tcfg = tcfg.with_updates(policy={"name": "vol_target"}).model_copy(update={"hold": hold})
    frames = sizing_frames(risk, market.candles, market.timeframe, hold, market.step)
    result: TradeResult = trade_backtest(market, frames, tcfg)
    sizing = score_sizing(result, frames, market.step, reference if reference in frames else next(iter(frames)))
    for name, run in result.runs.items():  # the report, table.csv and MLflow carry the sizing scores too
        run.stats |= {k: float(v) for k, v in sizing.loc[name].items() if k not in run.stats}
    outcome = _report(result, out_dir, header, settings, experiment)
    return outcome, sizing


def compare_portfolio(
    market: Market,
    risk: pd.DataFrame,
    methods: list[str],
    tcfg: TradingConfig,
    out_dir: Path,
    header: str,
    window_days: float = 30.0,
    settings: Settings | None = None,
    experiment: str | None = None,
) -> tuple[TradeOutcome, pd.DataFrame]:
    """Trade each weighting of the symbols (from one risk model's forecasts) and buy-and-hold; score them."""
    from candlecast.trading.policy import DAY_MS
    from candlecast.trading.weighting import EQUAL, PORTFOLIO_COLUMNS, portfolio_backtest, rebalance_weights

    hold = tcfg.hold or int(risk["horizon"].iloc[0])
    tcfg = tcfg.model_copy(update={"hold": hold})
    ordered = [EQUAL, *(m for m in methods if m != EQUAL)]  # the reference runs (and prints) first
    window = max(int(window_days * DAY_MS / market.step), 30)
    reb = rebalance_weights(risk, market.candles, hold, market.step, window, tuple(ordered))
    result = portfolio_backtest(market, reb, tcfg)
    outcome = _report(result, out_dir, header, settings, experiment)
    return outcome, result.table[[c for c in PORTFOLIO_COLUMNS if c in result.table.columns]]


def _report(
    result: TradeResult, out_dir: Path, header: str, settings: Settings | None, experiment: str | None
) -> TradeOutcome:
    from candlecast.trading.report import log_to_mlflow, write_report

    report = write_report(result, out_dir, header)
    run_id = log_to_mlflow(settings or Settings(), result, report, experiment, out_dir.name) if experiment else None
    return TradeOutcome(result.table, report, None, run_id, result.engine_seconds, result.lineage)


def risk_champion_model(settings: Settings, cfg: RunConfig) -> tuple[str | None, str]:
    """The model family of the risk @champion (its run's ``model`` param) and where it came from, or None and why."""
    from candlecast.trading.risk_source import risk_champion_version

    found, why = risk_champion_version(settings, cfg)
    if found is None:
        return None, why
    client, name, version = found
    run_id = client.get_model_version(name, version).run_id
    model = client.get_run(run_id).data.params.get("model") if run_id else None
    if not model:
        return None, f"{name} v{version}'s run records no model"
    return model, f"{name} v{version} ({model})"


def with_walk_forward_risk(
    frames: dict[str, pd.DataFrame], risk: pd.DataFrame, step_ms: int, origin: str
) -> tuple[dict[str, pd.DataFrame], str]:
    """Every frame's volatility from one risk model's walk-forward forecasts, and one line saying so."""
    from candlecast.trading.risk_source import with_risk_volatility

    out, missing, total = {}, 0, 0
    for name, frame in frames.items():
        out[name], gaps = with_risk_volatility(frame, risk, step_ms)
        missing, total = missing + gaps, total + len(frame)
    note = f"volatility from {origin}'s walk-forward forecasts"
    if missing:
        note += f"; {missing} of {total} forecasts had none live and use their interval's"
    return out, note
