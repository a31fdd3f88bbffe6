"""`candlecast trade backtest` and `candlecast signals`: forecasts become trades and decisions.

Everything heavy (NautilusTrader, the forecasting engine, MLflow) is imported inside the commands, so
`candlecast --help` stays as fast as before the trading layer existed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from candlecast.deployments.commands.common import (
    ConfigOption,
    console,
    fail,
    load_config,
    offline_defaults,
    print_table,
    warn,
)

if TYPE_CHECKING:
    from candlecast.config import RunConfig
    from candlecast.trading.config import TradingConfig

TradingConfigOption = Annotated[
    Path | None, typer.Option("--trading-config", "-t", help="trading YAML (policy:, execution:, hold:)")
]
PolicyOption = Annotated[str | None, typer.Option(help="sizing policy: sign or vol_target")]
TargetVolOption = Annotated[float | None, typer.Option(help="annualized volatility vol_target aims at")]
BandOption = Annotated[float | None, typer.Option("--band", help="no-trade band, fraction of equity")]
LeverageOption = Annotated[float | None, typer.Option(help="gross exposure cap over all symbols")]
PositionOption = Annotated[float | None, typer.Option(help="one symbol's |exposure| cap")]
ShortOption = Annotated[bool | None, typer.Option("--short/--no-short", help="short on negative forecasts")]
HoldOption = Annotated[int | None, typer.Option(help="holding period in candles (default: the horizon)")]


def trade_backtest(
    data: Annotated[
        list[str], typer.Option("--data", "-d", help="candle file or EXCHANGE:SYMBOL:TF, one per symbol; repeat")
    ],
    models: Annotated[
        str | None, typer.Option(help="walk-forward these models first, e.g. naive,drift,ridge,lstm")
    ] = None,
    forecasts: Annotated[Path | None, typer.Option(help="trade a saved forecast file instead")] = None,
    sizing_from: Annotated[
        str | None,
        typer.Option(
            help="compare volatility-targeted sizing by these risk models' walk-forward forecasts, e.g. ewma,har"
        ),
    ] = None,
    risk_model: Annotated[
        str | None,
        typer.Option(help="size by this risk model's walk-forward volatility (default: the risk @champion's model)"),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(
            help="compare portfolio weightings from --risk-model's forecasts, e.g. equal,min_variance,risk_parity"
        ),
    ] = None,
    corr_days: Annotated[
        float, typer.Option(help="with --portfolio: days of returns behind the shrunk correlation")
    ] = 30.0,
    registered: Annotated[
        bool, typer.Option("--registered", help="trade the registered model's prediction store instead")
    ] = False,
    version: Annotated[str | None, typer.Option(help="with --registered: the model version to trade")] = None,
    config: ConfigOption = None,
    trading_config: TradingConfigOption = None,
    hold: HoldOption = None,
    policy: PolicyOption = None,
    target_vol: TargetVolOption = None,
    band: BandOption = None,
    max_leverage: LeverageOption = None,
    max_position: PositionOption = None,
    max_drawdown: Annotated[float | None, typer.Option(help="drawdown that stops trading (0-1)")] = None,
    short: ShortOption = None,
    execution: Annotated[str | None, typer.Option(help="close or next_open")] = None,
    latency_ms: Annotated[int | None, typer.Option(help="order latency in next_open mode")] = None,
    taker_fee_bps: Annotated[float | None, typer.Option(help="taker fee, bp")] = None,
    maker_fee_bps: Annotated[float | None, typer.Option(help="maker fee, bp")] = None,
    slippage_bps: Annotated[float | None, typer.Option(help="slippage per market order, bp")] = None,
    min_coverage: Annotated[float | None, typer.Option(help="share of bars forecasts must cover")] = None,
    horizon: Annotated[int | None, typer.Option(help="walk-forward: forecast steps")] = None,
    lookback: Annotated[int | None, typer.Option(help="walk-forward: input window")] = None,
    folds: Annotated[int | None, typer.Option(help="walk-forward: test folds (refits)")] = None,
    test_fraction: Annotated[float | None, typer.Option(help="walk-forward: share of the timeline tested")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="walk-forward: epochs per neural fit")] = None,
    threads: Annotated[int | None, typer.Option(help="walk-forward: torch threads")] = None,
    out: Annotated[Path | None, typer.Option(help="report folder (default: <CANDLECAST_HOME>/trading/<name>)")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="log the report to an MLflow run")] = True,
) -> None:
    """Trade forecasts through NautilusTrader next to buy-and-hold and the naive strategies, on the same bars."""
    offline_defaults()
    try:
        cfg = _run_config(config, horizon, lookback, folds, test_fraction, max_epochs, threads)
        tcfg = _trading_config(
            trading_config,
            hold=hold,
            min_coverage=min_coverage,
            policy=dict(
                name=policy,
                target_vol=target_vol,
                no_trade_band=band,
                max_leverage=max_leverage,
                max_position=max_position,
                max_drawdown=max_drawdown,
                allow_short=short,
            ),
            execution=dict(
                mode=execution,
                latency_ms=latency_ms,
                taker_fee_bps=taker_fee_bps,
                maker_fee_bps=maker_fee_bps,
                slippage_bps=slippage_bps,
            ),
        )
        if portfolio:
            if models or forecasts or registered or sizing_from:
                raise ValueError(
                    "--portfolio runs its own weightings: leave out --models, --forecasts, --registered, --sizing-from"
                )
            _run_portfolio(data, portfolio, risk_model, corr_days, cfg, tcfg, out, mlflow)
            return
        if sizing_from:
            if models or forecasts or registered:
                raise ValueError("--sizing-from runs its own strategies: leave out --models, --forecasts, --registered")
            _run_sizing(data, sizing_from, cfg, tcfg, out, mlflow)
            return
        _run_trade(data, models, forecasts, registered, version, cfg, tcfg, out, mlflow, risk_model)
    except ValueError as exc:
        raise fail(str(exc)) from None


def _run_trade(data, models, forecasts, registered, version, cfg, tcfg, out, use_mlflow, risk_model=None) -> None:
    from candlecast.settings import Settings
    from candlecast.trading import runner

    chosen = [bool(models), forecasts is not None, registered]
    if sum(chosen) != 1:
        raise ValueError("choose one forecast source: --models NAMES, --forecasts FILE or --registered")
    settings = Settings()
    market, _ = runner.load_market(data, settings, warn=warn)
    hold = tcfg.hold or cfg.features.horizon
    name = out.name if out else _name(market, hold, "registered" if registered else "file" if forecasts else "wf")
    out = out or settings.root / "trading" / name
    lineage: dict[str, str] = {"forecast_source": "registered" if registered else str(forecasts or "walk-forward")}
    if models:
        if hold > cfg.features.horizon:
            raise ValueError(f"hold {hold} exceeds the forecast horizon {cfg.features.horizon}: raise --horizon")
        names = [m.strip() for m in models.split(",") if m.strip()]
        console.print(f"walk-forward {names} on {sorted(market.candles)} ({market.timeframe}), trading step {hold}")
        frames = runner.walk_forward_frames(data, names, cfg, hold, settings, on_fold=_progress)
        saved = runner.save_frames(frames, out.with_name(f"{name}.forecasts.parquet"))
        console.print(f"forecasts saved: {saved}")
    elif forecasts is not None:
        frames = runner.file_frames(forecasts)
    else:
        data_cfg = cfg.data.model_copy(update={"symbols": sorted(market.candles), "timeframe": market.timeframe})
        store_cfg = cfg.model_copy(update={"data": data_cfg})
        frames, found = runner.store_frames(settings, store_cfg, hold, version)
        lineage |= found
    if not registered:  # the registered path trades stored forecasts; its volatility is their interval's
        frames, lineage["volatility_source"] = _risk_volatility(data, frames, cfg, risk_model, settings, market)
        console.print(lineage["volatility_source"], highlight=False)
    experiment = f"{cfg.name}-trading" if use_mlflow else None
    header = f"{', '.join(sorted(market.candles))} {market.timeframe}, {', '.join(frames)}"
    outcome = runner.trade(market, frames, tcfg, out, header, lineage, settings, experiment)
    _print_table(outcome.table, header)
    console.print(f"NautilusTrader run time {outcome.engine_seconds:.1f} s over {len(outcome.table)} strategies")
    console.print("written: " + ", ".join(str(p) for p in outcome.report.values()), highlight=False)
    if outcome.mlflow_run_id:
        console.print(f"MLflow run {outcome.mlflow_run_id} (experiment {experiment})")


def _risk_volatility(data, frames, cfg, risk_model, settings, market):
    from candlecast.trading import runner

    name, origin = (risk_model, risk_model) if risk_model else runner.risk_champion_model(settings, cfg)
    if name is None:
        return frames, f"volatility from the forecast intervals: {origin} (--risk-model ewma sizes by one)"
    risk = runner.walk_forward_risk(data, [name], cfg, settings, on_fold=_progress)[name]
    return runner.with_walk_forward_risk(frames, risk, market.step, origin)


def _run_sizing(data, sizing_from, cfg, tcfg, out, use_mlflow) -> None:
    from candlecast.settings import Settings
    from candlecast.trading import runner
    from candlecast.trading.sizing import SIZING_COLUMNS

    settings = Settings()
    market, _ = runner.load_market(data, settings, warn=warn)
    names = [m.strip() for m in sizing_from.split(",") if m.strip()]
    hold = tcfg.hold or cfg.features.horizon
    name = out.name if out else _name(market, hold, "sizing")
    out = out or settings.root / "trading" / name
    console.print(f"walk-forward risk {names} on {sorted(market.candles)} ({market.timeframe}), sizing step {hold}")
    risk = runner.walk_forward_risk(data, names, cfg, settings, on_fold=_progress)
    header = f"{', '.join(sorted(market.candles))} {market.timeframe}, vol_target sized by {', '.join(names)}"
    experiment = f"{cfg.name}-trading" if use_mlflow else None
    outcome, sizing = runner.compare_sizing(market, risk, tcfg, out, header, settings=settings, experiment=experiment)
    _print_table(sizing, "sizing (DM p against ewma's tracking error)", SIZING_COLUMNS)
    console.print(f"NautilusTrader run time {outcome.engine_seconds:.1f} s over {len(outcome.table)} strategies")
    console.print("written: " + ", ".join(str(p) for p in outcome.report.values()), highlight=False)
    if outcome.mlflow_run_id:
        console.print(f"MLflow run {outcome.mlflow_run_id} (experiment {experiment})")


def _run_portfolio(data, portfolio, risk_model, corr_days, cfg, tcfg, out, use_mlflow) -> None:
    from candlecast.settings import Settings
    from candlecast.trading import runner
    from candlecast.trading.weighting import PORTFOLIO_COLUMNS

    settings = Settings()
    market, _ = runner.load_market(data, settings, warn=warn)
    if len(market.candles) < 2:
        raise ValueError("--portfolio weighs several symbols: pass --data for two or more")
    methods = [m.strip() for m in portfolio.split(",") if m.strip()]
    name, origin = (risk_model, risk_model) if risk_model else runner.risk_champion_model(settings, cfg)
    if name is None:
        name = "ewma"
        console.print(f"weights from ewma's forecasts: {origin} (--risk-model NAME picks one)", highlight=False)
    hold = tcfg.hold or cfg.features.horizon
    out = out or settings.root / "trading" / _name(market, hold, "portfolio")
    console.print(f"walk-forward risk {name} on {sorted(market.candles)} ({market.timeframe}), rebalance every {hold}")
    risk = runner.walk_forward_risk(data, [name], cfg, settings, on_fold=_progress)[name]
    header = f"{', '.join(sorted(market.candles))} {market.timeframe}, weights from {name}: {', '.join(methods)}"
    experiment = f"{cfg.name}-trading" if use_mlflow else None
    outcome, table = runner.compare_portfolio(
        market, risk, methods, tcfg, out, header, corr_days, settings=settings, experiment=experiment
    )
    _print_table(table, "portfolio (DM p: squared daily returns against equal weight's)", PORTFOLIO_COLUMNS)
    console.print(f"NautilusTrader run time {outcome.engine_seconds:.1f} s over {len(outcome.table)} strategies")
    console.print("written: " + ", ".join(str(p) for p in outcome.report.values()), highlight=False)
    if outcome.mlflow_run_id:
        console.print(f"MLflow run {outcome.mlflow_run_id} (experiment {experiment})")


def signals(
    config: ConfigOption = None,
    trading_config: TradingConfigOption = None,
    source: Annotated[
        str, typer.Option(help="champion: predict now from @champion; store: the latest stored forecasts")
    ] = "champion",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    store: Annotated[bool, typer.Option("--store/--no-store", help="keep the decisions with lineage")] = True,
    hold: HoldOption = None,
    policy: PolicyOption = None,
    target_vol: TargetVolOption = None,
    band: BandOption = None,
    max_leverage: LeverageOption = None,
    max_position: PositionOption = None,
    short: ShortOption = None,
) -> None:
    """Today's decision per configured symbol: forecast, interval, P(up), action, target and one-day VaR."""
    offline_defaults()
    try:
        cfg = load_config(config)
        tcfg = _trading_config(
            trading_config,
            hold=hold,
            policy=dict(
                name=policy,
                target_vol=target_vol,
                no_trade_band=band,
                max_leverage=max_leverage,
                max_position=max_position,
                allow_short=short,
            ),
        )
        from candlecast.settings import Settings
        from candlecast.trading.signals import run_signals

        outcome = run_signals(Settings(), cfg, tcfg, source=source, store=store)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(_as_json(outcome), indent=2, default=str))
        return
    _print_signals(outcome)


def _as_json(outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"decisions": outcome.decisions.to_dict(orient="records")}
    if outcome.weights is not None:
        doc["weights"] = outcome.weights.to_dict(orient="index")
        doc["portfolio"] = outcome.portfolio.to_dict(orient="index")
    doc["stored"] = [str(p) for p in outcome.stored]
    doc["volatility_source"] = outcome.volatility_note
    return doc


def _print_signals(outcome) -> None:
    header = ["symbol", "last candle", "close", "forecast", "interval", "P(up)", "action", "target", "VaR 1d"]
    rows = [
        [
            row.symbol,
            row.last_candle,
            f"{row.close:,.4g}",
            f"{row.forecast_price:,.4g}",
            f"{row.lower_price:,.4g}..{row.upper_price:,.4g}",
            f"{row.prob_up:.0%}",
            row.action,
            f"{row.target:+.2f}",
            f"{row.var_1d_95:.2%}",
        ]
        for row in outcome.decisions.itertuples()
    ]
    print_table("signals", header, rows, left=2)
    if outcome.weights is not None:
        _print_frame("portfolio weights", outcome.weights, 3)
        _print_frame("portfolio by method", outcome.portfolio, 4)
    console.print(outcome.volatility_note, highlight=False)
    version = outcome.decisions["model_version"].iloc[0]
    console.print(f"model version {version or '-'}, policy {outcome.decisions['policy'].iloc[0]}", highlight=False)


def _print_frame(title: str, frame, digits: int) -> None:
    """A numeric frame (index: symbols or methods) as a table, each number rounded to ``digits``."""
    header = [str(frame.index.name or ""), *(str(c) for c in frame.columns)]
    rows = [[str(name), *(f"{v:.{digits}f}" for v in row)] for name, row in frame.iterrows()]
    print_table(title, header, rows)


def _run_config(config, horizon, lookback, folds, test_fraction, max_epochs, threads) -> RunConfig:
    cfg = load_config(config, strict=False)  # a backtest writes only its report, never the state's series
    changes = {
        "features": {"horizon": horizon, "lookback": lookback},
        "split": {"test_folds": folds, "test_fraction": test_fraction},
        "train": {"max_epochs": max_epochs, "threads": threads},
    }
    raw = cfg.model_dump()
    for section, values in changes.items():
        raw[section].update({k: v for k, v in values.items() if v is not None})
    from pydantic import ValidationError

    from candlecast.trading.config import one_line

    try:
        return cfg.model_validate(raw)
    except ValidationError as exc:  # in one line (any other error is a bug: its traceback shows)
        raise ValueError(f"options are invalid: {one_line(exc)}") from None


def _trading_config(path: Path | None, **sections: Any) -> TradingConfig:
    from candlecast.trading.config import TradingConfig

    base = TradingConfig.from_yaml(path) if path else TradingConfig()
    return base.with_updates(**sections)


def _name(market, hold: int, source: str) -> str:
    symbols = "+".join(s.replace("/", "-") for s in sorted(market.candles))
    return f"{symbols}_{market.timeframe}_hold{hold}_{source}"


def _progress(name: str, fold: int, metrics: dict[str, float]) -> None:
    key, label = ("rmse_ratio", "RMSE/naive") if "rmse_ratio" in metrics else ("qlike", "QLIKE")
    console.print(f"  fold {fold} {name:12s} {label} {metrics.get(key, float('nan')):.4f}", highlight=False)


#: The terminal's columns; the report's table.csv and summary.md hold every statistic.
_SHOWN = ("total_return", "sharpe", "max_drawdown", "turnover", "fees", "exposure", "hit_rate")


def _print_table(table, header: str, columns: dict[str, str] | None = None) -> None:
    from candlecast.trading.stats import COLUMNS, format_stat

    shown = columns or {c: COLUMNS[c] for c in _SHOWN}  # summary.md holds every column
    cols = [c for c in shown if c in table.columns]
    rows = [[str(name), *(format_stat(c, row[c]) for c in cols)] for name, row in table.iterrows()]
    print_table(header, ["strategy", *(shown[c] for c in cols)], rows)


def register(app: typer.Typer) -> None:
    """Add `candlecast trade backtest` and `candlecast signals` to the app."""
    trade = typer.Typer(help="Trade forecasts on NautilusTrader: backtests next to buy-and-hold.", no_args_is_help=True)
    trade.command("backtest")(trade_backtest)
    app.add_typer(trade, name="trade")
    app.command("signals")(signals)
