"""`candlecast ingest`, `candlecast import` and `candlecast export`: candles in and out of the store.

These run without Prefect (cron, a shell, a notebook): the same core functions the ingest flow's tasks
wrap, with the same candle contract as the gate. The store's per-series lock keeps them safe beside a
running flow.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deployments.commands.common import ConfigOption, console, load_config, offline_defaults

if TYPE_CHECKING:
    import pandas as pd

    from candlecast.schema import SeriesKey
    from expectations.runner import ValidationReport

ExchangeOption = Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id, e.g. binance")]
SymbolOption = Annotated[str, typer.Option("--symbol", "-s", help="unified symbol, e.g. BTC/USDT")]
TimeframeOption = Annotated[str, typer.Option("--timeframe", "-t", help="ccxt timeframe, e.g. 1h")]


def parse_time(text: str) -> int:
    """Epoch ms from '2020-09-20', '2020-09-20T06:00' (UTC) or a number of ms."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date: use YYYY-MM-DD[THH:MM] (UTC) or epoch milliseconds"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def _gate(frame: pd.DataFrame, series: SeriesKey) -> ValidationReport:
    """The candle contract, the same gate the ingest flow uses."""
    from expectations.runner import validate_candles

    return validate_candles(frame, series.timeframe, str(series))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def ingest(
    config: ConfigOption = None,
    exchange: Annotated[str | None, typer.Option("--exchange", "-e", help="default: the config's")] = None,
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: the config's")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="default: the config's")] = None,
    since: Annotated[str | None, typer.Option(help="backfill start for empty series (default: history_days)")] = None,
    api_url: Annotated[str | None, typer.Option(help="a Binance-shaped emulator, e.g. http://127.0.0.1:8765")] = None,
    rate_limit: Annotated[bool, typer.Option(help="ccxt's client-side throttle")] = True,
    concurrency: Annotated[int, typer.Option(min=1, help="series fetched at once")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="print the ingest report as JSON")] = False,
) -> None:
    """Backfill or update candles from an exchange: fetch closed candles, gate them, store them, list gaps.

    Without --api-url and with the config's emulator on, a local emulator serves synthetic candles.
    """
    offline_defaults()
    cfg = load_config(config)
    from candlecast.data import ingest as core
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    exchange_id = exchange or cfg.exchange.id
    tf = timeframe or cfg.data.timeframe
    keys = [SeriesKey(exchange_id, s.strip(), tf) for s in (symbols.split(",") if symbols else cfg.data.symbols)]
    settings = Settings()
    options = {"concurrency": concurrency}
    try:
        if api_url or exchange_id != cfg.exchange.id or not cfg.exchange.emulator:
            now = int(time.time() * 1000)
            start = parse_time(since) if since else now - cfg.data.history_days * 86_400_000
            reports = core.ingest(
                settings, exchange_id, keys, start, _gate, api_url=api_url, rate_limit=rate_limit, **options
            )
        else:
            with core.config_endpoint(cfg) as (url, limit, now):
                start = parse_time(since) if since else now - cfg.data.history_days * 86_400_000
                reports = core.ingest(
                    settings, exchange_id, keys, start, _gate, api_url=url, rate_limit=limit, now_ms=now, **options
                )
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        _print_reports(reports)
    if any(r.error for r in reports):
        raise typer.Exit(1)


def _print_reports(reports: list) -> None:
    table = Table(title="ingest")
    for col in ("series", "fetched", "stored", "requests", "retries", "missing", "gaps", "error"):
        table.add_column(col)
    for r in reports:
        gaps = ", ".join(f"{_iso(g['start'])}..{_iso(g['end'])} ({g['missing']}, {g['kind']})" for g in r.gaps[:5])
        more = f" +{len(r.gaps) - 5} more" if len(r.gaps) > 5 else ""
        table.add_row(
            r.series, str(r.fetched), str(r.stored), str(r.requests), str(r.retries), str(r.missing),
            (gaps + more) or "-", (r.error or "-").splitlines()[0],
        )  # fmt: skip
    console.print(table)
    for r in reports:
        if r.error:
            console.print(f"[red]{r.series}[/red]: {r.error}")


def import_(
    path: Annotated[Path, typer.Argument(help="the file to import")],
    exchange: ExchangeOption,
    symbol: SymbolOption,
    timeframe: TimeframeOption,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto, freqtrade-json, freqtrade-feather, cryptodatadownload, csv or parquet"),
    ] = "auto",  # fmt: skip
    columns: Annotated[
        str | None, typer.Option(help="column mapping for csv/parquet, e.g. timestamp=open_time,volume=vol")
    ] = None,
    time_unit: Annotated[str, typer.Option(help="unit of numeric timestamps: auto, s, ms, us or ns")] = "auto",
) -> None:
    """Load existing history into the store through the candle contract; a refused file stores nothing."""
    offline_defaults()
    from candlecast.data.importing import import_candles
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings
    from expectations.gate import candle_gate

    settings = Settings()
    try:
        key = SeriesKey.parse(f"{exchange}:{symbol}:{timeframe}")
        mapping = dict(item.split("=", 1) for item in columns.split(",")) if columns else None
        outcome = import_candles(settings, path, key, candle_gate(), fmt=fmt, columns=mapping, time_unit=time_unit)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not outcome.stored:
        console.print(f"[red]refused:[/red] {path} failed the candle contract; nothing stored, the file is untouched.")
        console.print(outcome.report.summary(), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        f"imported {outcome.read} candles into {key} ({outcome.new} new); {outcome.missing} missing"
        + (f"; dropped {outcome.unclosed} unclosed" if outcome.unclosed else "")
    )
    for g in outcome.gaps[:10]:
        console.print(f"  gap {_iso(g.start)} .. {_iso(g.end)}: {g.missing} missing ({g.kind})")


def export(
    out: Annotated[Path, typer.Argument(help="output file: .csv or .parquet")],
    exchange: ExchangeOption,
    symbol: SymbolOption,
    timeframe: TimeframeOption,
    since: Annotated[str | None, typer.Option(help="first open time (date or ms)")] = None,
    until: Annotated[str | None, typer.Option(help="exclusive end (date or ms)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="resample to this higher timeframe, e.g. 1d")] = None,
) -> None:
    """Write a stored series out as CSV or parquet (timestamp = candle open, ms UTC), optionally resampled."""
    from candlecast.data.candle_store import CandleStore
    from candlecast.data.importers import write_candles
    from candlecast.data.resample import resample
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    if out.suffix not in (".csv", ".parquet"):
        console.print(f"[red]error:[/red] {out.name}: export writes .csv or .parquet")
        raise typer.Exit(2)
    key = SeriesKey(exchange, symbol, timeframe)
    frame = CandleStore(Settings().candles_dir).read(key)
    if frame.empty:
        console.print(f"[red]error:[/red] nothing stored for {key}: see `candlecast status`")
        raise typer.Exit(1)
    try:
        if to:
            frame = resample(frame, timeframe, to)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    lo = parse_time(since) if since else frame["timestamp"].min()
    hi = parse_time(until) if until else frame["timestamp"].max() + 1
    frame = frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]
    write_candles(frame, out)
    console.print(f"wrote {len(frame)} candles of {key}{' as ' + to if to else ''} to {out}")


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command("import")(import_)
    app.command()(export)
