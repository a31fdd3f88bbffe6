"""`candlecast live`: the living loop in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from candlecast.deployments.commands.common import ConfigOption, console, fail, load_config


def live(
    config: ConfigOption = None,
    api_url: Annotated[
        str | None, typer.Option(help="a Binance-shaped exchange, e.g. `candlecast emulate --speed 60` at its URL")
    ] = None,
    predict_here: Annotated[
        bool | None,
        typer.Option(
            "--predict-here/--predict-by-deployment",
            help="forecast in this process, or leave it to the predict deployment's event trigger "
            "(default: here when no PREFECT_API_URL is set)",
        ),
    ] = None,
    until: Annotated[
        int | None, typer.Option(help="stop once the candle opened at this exchange time (ms) is handled")
    ] = None,
    rehearsal: Annotated[
        bool,
        typer.Option(
            "--rehearsal",
            help="rehearse offline instead: a pinned synthetic market whose regime changes, a tiny champion, "
            "weeks of candles in minutes, the drift alarm, the retrain and the gate's verdict (in <home>/rehearsal)",
        ),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="with --rehearsal: every library's output")] = False,
    ws_url: Annotated[
        str | None,
        typer.Option(
            help="with --api-url: the emulator's kline websocket (`candlecast emulate` prints it), for "
            "live.transport auto or websocket"
        ),
    ] = None,
) -> None:
    """Follow the exchange's clock: store each series' candle as it closes, announce it, forecast, watch drift.

    Events go to the Prefect server at PREFECT_API_URL (`candlecast.candles.stored`, `.forecast.stored`,
    `.model.degraded`) and always to <home>/live/events.jsonl. Closed candles are pushed by websocket
    (ccxt.pro watch_ohlcv) where the exchange offers it, else polled over REST aligned to each close
    (live.transport).
    """
    if rehearsal:
        _rehearse(debug)
        return
    from candlecast.expectations.gate import candle_gate
    from candlecast.live.loop import LiveLoop
    from candlecast.live.monitor import Monitor
    from candlecast.live.stream import stream_offered
    from candlecast.settings import Settings
    from candlecast.tasks.endpoint import endpoint_source
    from candlecast.tasks.events import emit, journal_only
    from candlecast.tasks.paper import paper_trader

    cfg = load_config(config, strict=api_url is None)
    if api_url is None and cfg.exchange.emulator:
        raise fail(
            "live follows a running exchange: start one (`candlecast emulate --speed 60 --timeframe "
            f"{cfg.data.timeframe}`) and pass its URL with --api-url, or set exchange.emulator: false"
        )
    try:
        stream_offered(cfg.exchange.id, cfg.live.transport, api_url or cfg.exchange.api_url, ws_url)
    except ValueError as exc:
        raise fail(str(exc)) from None
    settings = Settings()
    to_prefect = bool(os.environ.get("PREFECT_API_URL"))
    here = (not to_prefect) if predict_here is None else predict_here
    try:
        paper = paper_trader(settings, cfg, here, to_prefect)
    except ValueError as exc:  # live.paper on a volatility config, or a bad live.paper_trading file
        raise fail(str(exc)) from None
    loop = LiveLoop(
        settings, cfg, lambda now: candle_gate(settings, now), emit if to_prefect else journal_only,
        api_url=api_url or cfg.exchange.api_url, ws_url=ws_url, source=endpoint_source(cfg, api_url=api_url),
        predict_here=here,
        monitor=Monitor(settings, cfg, emit if to_prefect else journal_only),
        paper=paper,
    )  # fmt: skip
    where = "this process" if here else "the predict deployment (event trigger)"
    console.print(f"live: {len(cfg.series)} series, forecasts by {where}; Ctrl-C stops")

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await loop.run(stop, until_ms=until)

    asyncio.run(main())


def _rehearse(debug: bool) -> None:
    """The rehearsal in <home>/rehearsal, its flows reporting to <home>'s Prefect server; where to look after."""
    from rich.markup import escape

    from candlecast.deployments.commands.common import offline_defaults, venv_program
    from candlecast.deployments.rehearsal import fresh_rehearsal_home, rehearse
    from candlecast.deployments.session import Session, run_session
    from candlecast.live.rehearsal import Plan
    from candlecast.settings import Settings

    offline_defaults()
    outer = Settings()

    def body(session: Session) -> Path:
        home = fresh_rehearsal_home(outer)
        os.environ["CANDLECAST_HOME"] = str(home)  # every Settings() of this process: the rehearsal's folder
        rehearse(Plan(), lambda line: session.terminal.print(escape(line), soft_wrap=True, highlight=False))
        return home

    home = run_session("rehearsal", body, debug)
    mlflow = f"{venv_program('mlflow')} ui --backend-store-uri sqlite:///{home / 'mlflow.db'} --port 5001"
    console.print(f"the rehearsal's state: {escape(str(home))}; its models and runs in MLflow: {escape(mlflow)}",
                  soft_wrap=True, highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add `candlecast live` to the CLI."""
    app.command()(live)
