"""`candlecast ingest`, `import`, `export` and `store repair|rm`: candles in and out of the store.

These run without Prefect (cron, a shell, a notebook): the same core functions the ingest flow's tasks
wrap, with the same candle contract as the gate. The store's per-series lock keeps them safe beside a
running flow.

Exit codes: 0 done; 1 the data was refused or a series failed (see the message); 2 bad input (a
usage error); 3 a file of the store is unreadable (``common.EXIT_CORRUPT_STORE``: `candlecast store repair`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from candlecast.deployments.commands.common import (
    ConfigOption,
    command_hint,
    console,
    corrupt_store,
    fail,
    holds_candles,
    load_config,
    offline_defaults,
    print_json,
    print_table,
    record_config,
)

if TYPE_CHECKING:
    from candlecast.config import RunConfig
    from candlecast.data.exchange import Endpoint
    from candlecast.schema import SeriesKey

store_app = typer.Typer(help="The candle store: repair a series with an unreadable file, remove a series.",
                        no_args_is_help=True)  # fmt: skip

ExchangeOption = Annotated[str, typer.Option("--exchange", "-e", help="ccxt exchange id, e.g. binance")]
SymbolOption = Annotated[str, typer.Option("--symbol", "-s", help="unified symbol, e.g. BTC/USDT")]
TimeframeOption = Annotated[str, typer.Option("--timeframe", "-t", help="ccxt timeframe, e.g. 1h")]
AllowSourceChangeOption = Annotated[
    bool,
    typer.Option(
        "--allow-source-change",
        help="add candles from another source than the series was stored from (recorded in its history)",
    ),
]


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


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@contextmanager
def _endpoint(
    cfg: RunConfig, exchange_id: str, api_url: str | None, rate_limit: bool, symbols: list[str] | None = None
) -> Iterator[Endpoint]:
    """Where ``exchange_id``'s fetches go: --api-url, the config's emulator (serving ``symbols``), or the exchange."""
    from candlecast.data.exchange import Endpoint
    from candlecast.tasks.endpoint import exchange_endpoint, uses_emulator

    if not uses_emulator(cfg, exchange_id, api_url):
        own_url = cfg.exchange.api_url if exchange_id == cfg.exchange.id else None
        yield Endpoint(int(time.time() * 1000), api_url or own_url, rate_limit)
        return
    with exchange_endpoint(cfg, symbols=symbols) as endpoint:
        yield endpoint


def ingest(
    config: ConfigOption = None,
    exchange: Annotated[str | None, typer.Option("--exchange", "-e", help="default: the config's")] = None,
    symbols: Annotated[str | None, typer.Option(help="comma-separated; default: the config's")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="default: the config's")] = None,
    since: Annotated[str | None, typer.Option(help="backfill start for empty series (default: history_days)")] = None,
    api_url: Annotated[str | None, typer.Option(help="a Binance-shaped emulator, e.g. http://127.0.0.1:8765")] = None,
    rate_limit: Annotated[bool, typer.Option(help="ccxt's client-side throttle")] = True,
    concurrency: Annotated[int, typer.Option(min=1, help="series fetched at once")] = 4,
    allow_source_change: AllowSourceChangeOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the ingest report as JSON")] = False,
) -> None:
    """Backfill or update candles from an exchange: fetch closed candles, gate them, store them, list gaps.

    Without --api-url and with the config's emulator on, a local emulator serves synthetic candles.
    A series stored from another source (exchange, endpoint, emulator market, file) is refused before
    anything is fetched, unless --allow-source-change.
    """
    offline_defaults()
    cfg = load_config(config, strict=api_url is None)
    from candlecast.data import ingest as core
    from candlecast.data.exchange import check_exchange_id
    from candlecast.expectations.gate import candle_gate
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings
    from candlecast.tasks.endpoint import endpoint_source

    exchange_id = exchange or cfg.exchange.id
    tf = timeframe or cfg.data.timeframe
    names = [s.strip() for s in symbols.split(",")] if symbols else list(cfg.data.symbols)
    keys = [SeriesKey(exchange_id, s, tf) for s in names]
    settings = Settings()
    try:
        check_exchange_id(exchange_id)
        source = endpoint_source(cfg, exchange_id, api_url)
        core.check_sources(settings, keys, source, allow_source_change)  # before the emulator writes anything
        with _endpoint(cfg, exchange_id, api_url, rate_limit, names) as endpoint:
            now = endpoint.now_ms
            start = parse_time(since) if since else now - cfg.data.history_days * 86_400_000
            gate = candle_gate(settings, now)  # the flow's gate: live checks, results and Data Docs in <home>/gx
            options = endpoint.fetch_options()
            reports = core.ingest(
                settings, exchange_id, keys, start, gate, source=source, allow_source_change=allow_source_change,
                concurrency=concurrency, **options,
            )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    if holds_candles(settings.root) and not (exchange or symbols or timeframe or api_url):
        record_config(cfg)  # only a config's own series and source: flags name another
    if as_json:
        print_json([r.to_dict() for r in reports])
    else:
        _print_reports(reports)
    if any(r.error for r in reports):
        raise typer.Exit(1)


def _print_reports(reports: list) -> None:
    """The ingest table (whole cells when piped), then each failed series' full error, markup-safe."""
    header = ["series", "fetched", "stored", "requests", "retries", "missing", "gaps", "error"]
    print_table("ingest", header, [_report_row(r) for r in reports])
    for r in reports:
        if r.error:
            console.print(f"[red]{escape(r.series)}[/red]: {escape(r.error)}", soft_wrap=True, highlight=False)


def _report_row(r: Any) -> list[str]:
    gaps = ", ".join(f"{_iso(g['start'])}..{_iso(g['end'])} ({g['missing']}, {g['kind']})" for g in r.gaps[:5])
    more = f" +{len(r.gaps) - 5} more" if len(r.gaps) > 5 else ""
    counts = [str(n) for n in (r.fetched, r.stored, r.requests, r.retries, r.missing)]
    return [r.series, *counts, (gaps + more) or "-", (r.error or "-").splitlines()[0]]


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
    allow_source_change: AllowSourceChangeOption = False,
) -> None:
    """Load existing history into the store through the candle contract; a refused file stores nothing.

    The file is recorded as the series' source: a series stored from another source is refused unless
    --allow-source-change.
    """
    offline_defaults()
    from candlecast.data.importing import import_candles
    from candlecast.expectations.gate import candle_gate
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    settings = Settings()
    try:
        key = SeriesKey.parse(f"{exchange}:{symbol}:{timeframe}")
        mapping = dict(item.split("=", 1) for item in columns.split(",")) if columns else None
        outcome = import_candles(
            settings, path, key, candle_gate(), fmt=fmt, columns=mapping, time_unit=time_unit,
            allow_source_change=allow_source_change,
        )  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not outcome.stored:
        entry = outcome.quarantine
        console.print(
            f"[red]refused:[/red] {path} failed the candle contract; nothing stored, the file is untouched. "
            f"Its candles wait in quarantine as {entry}: `candlecast quarantine show {entry}`, fix them, then "
            f"`candlecast quarantine release {entry}`.",
            soft_wrap=True,
            highlight=False,
        )
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
    from candlecast.data.candle_store import CandleStore, CorruptPartition
    from candlecast.data.importers import write_candles
    from candlecast.data.resample import resample
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    if out.suffix not in (".csv", ".parquet"):
        raise fail(f"{out.name}: export writes .csv or .parquet")
    key = SeriesKey(exchange, symbol, timeframe)
    try:
        frame = CandleStore(Settings().candles_dir).read(key)
    except CorruptPartition as exc:
        raise corrupt_store(exc) from None
    if frame.empty:
        raise fail(f"nothing stored for {key}: see `{command_hint('status')}`", code=1)
    try:
        if to:
            frame = resample(frame, timeframe, to)
    except ValueError as exc:
        raise fail(str(exc)) from None
    lo = parse_time(since) if since else frame["timestamp"].min()
    hi = parse_time(until) if until else frame["timestamp"].max() + 1
    frame = frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]
    write_candles(frame, out)
    console.print(f"wrote {len(frame)} candles of {key}{' as ' + to if to else ''} to {out}")


SeriesArgument = Annotated[
    str, typer.Argument(help="the series as EXCHANGE:SYMBOL:TIMEFRAME, e.g. binance:BTC/USDT:1h")
]


def _series_key(text: str) -> SeriesKey:
    from candlecast.schema import SeriesKey

    try:
        return SeriesKey.parse(text)
    except ValueError as exc:
        raise fail(str(exc)) from None


def repair(
    series: SeriesArgument,
    config: ConfigOption = None,
    api_url: Annotated[str | None, typer.Option(help="a Binance-shaped emulator, e.g. http://127.0.0.1:8765")] = None,
    rate_limit: Annotated[bool, typer.Option(help="ccxt's client-side throttle")] = True,
) -> None:
    """Set aside the series' unreadable files and refetch their candles from the exchange, through the contract.

    The unreadable bytes wait in <home>/corrupt/ until their candles are back; if the exchange cannot be
    reached the rest of the series stays readable (the range shows as a gap) and running repair again
    retries the refetch.
    """
    offline_defaults()
    cfg = load_config(config, strict=api_url is None)
    key = _series_key(series)
    from candlecast.data.maintenance import repair_series
    from candlecast.expectations.gate import candle_gate
    from candlecast.settings import Settings
    from candlecast.tasks.endpoint import endpoint_source

    settings = Settings()
    try:
        source = endpoint_source(cfg, key.exchange, api_url)
        with _endpoint(cfg, key.exchange, api_url, rate_limit, [key.symbol]) as endpoint:
            gate = candle_gate(settings, endpoint.now_ms)
            outcome = repair_series(settings, key, gate, source, **endpoint.fetch_options())
    except ValueError as exc:
        raise fail(str(exc)) from None
    for note in outcome.set_aside:
        console.print(f"set aside {note.file} ({note.reason}) to {note.kept_at}", soft_wrap=True, highlight=False)
    for name, new in outcome.refetched.items():
        console.print(f"refetched the candles of {name}: {new} stored", highlight=False)
    for name, why in outcome.pending.items():
        console.print(f"[red]not repaired:[/red] {name}: {why.splitlines()[0]}", soft_wrap=True, highlight=False)
    if outcome.pending:
        console.print(f"the rest of {key} is readable; run `candlecast store repair {key}` again to retry")
        raise typer.Exit(1)
    if not (outcome.set_aside or outcome.refetched):
        console.print(f"nothing to repair: every file of {key} is readable")


def rm(
    series: SeriesArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Remove a series from the store (its data files, manifest and validation record), all at once."""
    offline_defaults()
    key = _series_key(series)
    from candlecast.data.maintenance import describe, remove_series
    from candlecast.settings import Settings

    settings = Settings()
    try:
        stored = describe(settings, key)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rows = "?" if stored.rows is None else f"{stored.rows:,}"
    what = f"{key}: {rows} candles in {stored.files} files under {stored.folder}"
    if not yes and not typer.confirm(f"remove {what}?"):
        console.print("kept: nothing removed")
        raise typer.Exit(1)
    remove_series(settings, key)
    console.print(f"removed {what}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the data commands (ingest, import, export, store repair|rm) to the CLI."""
    app.command()(ingest)
    app.command("import")(import_)
    app.command()(export)
    store_app.command()(repair)
    store_app.command()(rm)
    app.add_typer(store_app, name="store")
