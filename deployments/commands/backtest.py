"""`candlecast backtest`: every model on the same walk-forward folds and windows, next to naive."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

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


def backtest(
    data: Annotated[
        list[str],
        typer.Option("--data", "-d", help="candle file (csv/csv.gz/parquet) or EXCHANGE:SYMBOL:TF; repeat for more"),
    ],
    models: Annotated[
        str | None,
        typer.Option(
            help="comma-separated: naive,drift,snaive,ridge,arima,ets,prophet,lstm,attention_lstm,cnn_lstm "
            "(volatility: naive_vol,ewma,garch,gjr_garch,har and the lstm family)"
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="returns or volatility (default: the config's)")] = None,
    config: ConfigOption = None,
    horizon: Annotated[int | None, typer.Option(help="forecast steps (default: the config's)")] = None,
    lookback: Annotated[int | None, typer.Option(help="input window in candles (default: the config's)")] = None,
    folds: Annotated[
        int | None, typer.Option(help="walk-forward test folds (default: the config's split.test_folds)")
    ] = None,
    test_fraction: Annotated[float | None, typer.Option(help="share of the timeline the test folds cover")] = None,
    val_fraction: Annotated[
        float | None, typer.Option(help="early-stopping share of each fold (and each sweep fold's test block)")
    ] = None,
    cal_fraction: Annotated[
        float | None, typer.Option(help="calibration share of each fold: the block that sets the intervals")
    ] = None,
    stride: Annotated[int | None, typer.Option(help="candles between forecast origins")] = None,
    refit: Annotated[
        str | None,
        typer.Option(help="cutoff: refit each fold's model at its test start, as production does; stale: never"),
    ] = None,
    refit_every: Annotated[
        int | None,
        typer.Option(min=1, help="refit again every N candles inside a test block (the live loop's cadence)"),
    ] = None,
    indicators: Annotated[
        bool | None, typer.Option("--indicators/--no-indicators", help="technical indicators as inputs")
    ] = None,
    higher_timeframes: Annotated[
        str | None, typer.Option("--htf", help="closed higher-timeframe context, e.g. 4h,1d")
    ] = None,
    cross: Annotated[
        list[str] | None, typer.Option(help="another asset's candles as inputs (file or series); repeatable")
    ] = None,
    max_epochs: Annotated[int | None, typer.Option(help="epochs per neural fit")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads")] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder for the tables (default: <CANDLECAST_HOME>/backtests)")
    ] = None,
) -> None:
    """Walk the named models forward over the same folds and print their metrics next to naive.

    It scores forecasts; trading them (fills, fees, sizing) is `candlecast trade backtest`.
    """
    offline_defaults()
    cfg = load_config(config, strict=False)  # it reads the candles it is given and writes only its tables
    from candlecast.forecasting.backtest import load_source, named_factories, run_backtest, write_tables
    from candlecast.forecasting.targets import target_of
    from candlecast.settings import Settings

    out = out or Settings().root / "backtests"

    def update(section: str, **values: object) -> None:
        nonlocal cfg
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            part = getattr(cfg, section).model_validate({**getattr(cfg, section).model_dump(), **values})
            cfg = cfg.model_validate({**cfg.model_dump(), section: part.model_dump()})

    try:
        update(
            "features",
            horizon=horizon,
            lookback=lookback,
            indicators=indicators,
            higher_timeframes=higher_timeframes.split(",") if higher_timeframes else None,
        )
        update(
            "split", test_folds=folds, test_fraction=test_fraction, val_fraction=val_fraction, cal_fraction=cal_fraction
        )
        update("train", max_epochs=max_epochs, threads=threads)
        if refit not in (None, "cutoff", "stale"):
            raise ValueError(f"--refit is cutoff (refit at each test start) or stale (never), not {refit!r}")
        update("backtest", stride=stride, refit=refit, refit_every=refit_every)
        if target is not None:
            cfg = cfg.model_validate({**cfg.model_dump(), "target": target})
        forecast = target_of(cfg)  # the option above names it; this is its plug-in
        names = [m.strip() for m in (models or forecast.default_models).split(",") if m.strip()]
        named_factories(names, cfg)  # an unknown name fails before any file is read
        contexts = [load_source(c, warn=warn) for c in cross or []]
        for text in data:
            source = load_source(text, warn=warn)
            console.print(
                f"[bold]{source.name}[/bold]: {len(source.candles)} {source.timeframe} candles, models {names}"
            )
            result, fold_list = run_backtest(source, names, cfg, contexts, on_fold=partial(_progress, forecast))
            header = _header(source.name, cfg, fold_list)
            paths = write_tables(result, out, source.name, header)
            _print(result.summary, header, forecast.shown)
            console.print("written: " + ", ".join(str(p) for p in paths))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _progress(target, name: str, fold: int, metrics: dict[str, float]) -> None:
    score = target.progress(metrics)
    console.print(f"  fold {fold} {name:15s} {score} ({metrics['fit_seconds']:.0f} s)", highlight=False)


def _header(name: str, cfg, folds) -> str:
    from datetime import UTC, datetime

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")

    fc, bt = cfg.features, cfg.backtest
    spans = "; ".join(
        f"fold {i}: train {day(f.train.start)}..{day(f.train.end)}, test {day(f.test.start)}..{day(f.test.end)}"
        for i, f in enumerate(folds)
    )
    refit = bt.refit + (f" every {bt.refit_every} candles" if bt.refit == "cutoff" and bt.refit_every else "")
    return f"{name}: horizon {fc.horizon}, lookback {fc.lookback}, stride {bt.stride}, refit {refit}. {spans}"


def _print(summary, header: str, shown: dict[str, str]) -> None:
    """The target's columns (metric -> short label); the CSV and markdown files hold every metric."""
    cols = [c for c in shown if c in summary.columns]
    rows = [[str(name), *(_cell(row[c]) for c in cols)] for name, row in summary.iterrows()]
    print_table(header, ["model", *(shown[c] for c in cols)], rows)


def _cell(value: float) -> str:
    if value != value:
        return "-"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"


def register(app: typer.Typer) -> None:
    """Add `candlecast backtest` to the CLI."""
    app.command()(backtest)
