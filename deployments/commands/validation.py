"""`candlecast validate` and `candlecast quarantine list|show|release`: the candle contract by hand.

Exit codes of `validate`: 0 passed (warnings pass), 1 a critical expectation failed, 2 bad input,
3 a file of the stored series is unreadable (`candlecast store repair SERIES` rebuilds it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from candlecast.deployments.commands.common import (
    JsonOption,
    console,
    corrupt_store,
    fail,
    offline_defaults,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    import pandas as pd

    from candlecast.expectations.runner import ValidationReport
    from candlecast.schema import SeriesKey

quarantine_app = typer.Typer(
    help="Batches that failed the candle contract: inspect, fix, release.", no_args_is_help=True
)

_TIMEFRAME_IN_NAME = re.compile(r"[_-](\d+[mhdw])(?=[._-]|$)")


def _fail(message: str, code: int = 2) -> typer.Exit:
    return fail(message, code)


def _series(text: str | None) -> SeriesKey | None:
    from candlecast.schema import SeriesKey

    try:
        return SeriesKey.parse(text) if text else None
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _clock(now: str | None, live: bool) -> int | None:
    """The exchange clock in ms: --now as an ISO time, --live as the local UTC clock, else None."""
    import pandas as pd

    from candlecast.expectations.gate import now_ms

    if now:
        try:
            stamp = pd.Timestamp(now)
        except ValueError:
            raise _fail(f"--now {now!r} is not a time: write it like 2021-06-10T00:15Z") from None
        return int((stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).timestamp() * 1000)
    return now_ms() if live else None


def _staleness(text: str | None) -> int | None:
    from candlecast.schema import timeframe_ms

    try:
        return None if text is None else timeframe_ms(text)
    except ValueError:
        raise _fail(f"--max-staleness {text!r}: write a duration like 90m, 3h or 2d") from None


def _timeframe(path: Path, timeframe: str | None, series: SeriesKey | None) -> str:
    from candlecast.schema import timeframe_ms

    found = timeframe or (series.timeframe if series else None)
    if found is None:
        match = _TIMEFRAME_IN_NAME.search(path.name)
        found = match.group(1) if match else None
    if found is None:
        raise _fail(f"cannot tell the timeframe of {path.name}: pass --timeframe (e.g. 1h) or --series E:S:T")
    try:
        timeframe_ms(found)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return found


def _read(path: Path, fmt: str) -> pd.DataFrame:
    from candlecast.data.importers import read_candles

    if not path.exists():
        raise _fail(f"{path} does not exist")
    try:
        return read_candles(path, fmt)
    except (ValueError, KeyError, OSError) as exc:
        raise _fail(f"cannot read candles from {path}: {exc}") from None


def _print(report: ValidationReport, as_json: bool) -> None:
    """The verdict once: the summary's first line is it, colored; its failures follow as they are."""
    if as_json:
        print_json(report.to_dict())
        return
    color = {"passed": "green", "passed with warnings": "yellow"}.get(report.status, "red")
    first, *rest = report.summary().splitlines()
    console.print(f"[{color}]{escape(first)}[/{color}]", soft_wrap=True, highlight=False)
    for line in rest:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def validate(
    path: Annotated[
        Path | None, typer.Argument(help="a candle file: CSV, parquet, freqtrade JSON/feather, CDD CSV")
    ] = None,
    series: Annotated[str | None, typer.Option(help="EXCHANGE:SYMBOL:TIMEFRAME; alone: the stored series")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="timeframe of PATH (default: from --series or the name)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="format of PATH (default: detected)")] = "auto",
    live: Annotated[bool, typer.Option("--live", help="a live series: check closed and fresh candles now")] = False,
    now: Annotated[str | None, typer.Option(help="the clock for the live checks, e.g. 2021-06-10T00:15Z")] = None,
    max_staleness: Annotated[str | None, typer.Option(help="freshness limit, e.g. 3h (default: 3 candles)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Check candles against the candle contract: exit 1 on a critical failure (warnings pass), 3 on a corrupt store."""
    offline_defaults()
    key = _series(series)
    if path is None and key is None:
        raise _fail("give a candle file (PATH) or a stored series (--series EXCHANGE:SYMBOL:TIMEFRAME)")
    clock, staleness = _clock(now, live), _staleness(max_staleness)
    from candlecast.expectations import gate
    from candlecast.expectations.runner import validate_candles
    from candlecast.settings import Settings

    settings = Settings()
    if path is None:
        from candlecast.data.candle_store import CandleStore, CorruptPartition

        assert key is not None  # refused above: no PATH and no --series
        if not CandleStore(settings.candles_dir).path(key).exists():
            raise _fail(f"no candles stored for {key}: `candlecast status` lists the stored series")
        try:
            report = gate.check_stored(settings, key, clock, staleness)
        except CorruptPartition as exc:
            raise corrupt_store(exc) from None
    else:
        frame = _read(path, fmt)
        tf = _timeframe(path, timeframe, key)
        report = validate_candles(
            frame, tf, str(key or path.name), now_ms=clock, max_staleness_ms=staleness, state_root=settings.root
        )
    _print(report, as_json)
    if not report.success:
        raise typer.Exit(1)


def list_quarantine(as_json: JsonOption = False) -> None:
    """Batches waiting in quarantine, oldest first."""
    offline_defaults()
    from candlecast.data import quarantine
    from candlecast.settings import Settings

    entries = quarantine.list_entries(Settings())
    if as_json:
        records = [
            {"id": e.id, "series": str(e.series), "rows": e.rows, "quarantined_at": e.quarantined_at}
            | {"failed": e.failed_expectations}
            for e in entries
        ]
        print_json(records)
        return
    if not entries:
        console.print("quarantine is empty")
        return
    header = ["id", "series", "rows", "quarantined at", "failed expectations"]
    rows = [[e.id, str(e.series), str(e.rows), e.quarantined_at, ", ".join(e.failed_expectations)] for e in entries]
    print_table(f"{len(entries)} quarantined batches", header, rows)


def show(
    entry_id: Annotated[str, typer.Argument(help="the id (or a unique prefix) from `candlecast quarantine list`")],
    export: Annotated[Path | None, typer.Option(help="write the batch to this .csv or .parquet file to fix it")] = None,
) -> None:
    """The report that rejected a batch, its offending rows, and where the batch is."""
    offline_defaults()
    from candlecast.data import quarantine
    from candlecast.io import write_parquet
    from candlecast.settings import Settings

    try:
        entry = quarantine.get_entry(Settings(), entry_id)
    except quarantine.QuarantineError as exc:
        raise _fail(str(exc)) from None
    console.print(f"[bold]{entry.id}[/bold]  {entry.series}  {entry.rows} candles, quarantined {entry.quarantined_at}")
    console.print(f"batch: {entry.batch_path}")
    report = entry.report or {}
    if not report:
        console.print("[yellow]no report was saved (interrupted quarantine): release re-validates it[/yellow]")
    from candlecast.expectations.runner import ValidationReport

    known = {k: report[k] for k in ValidationReport.__dataclass_fields__ if k in report}
    if known:
        console.print(ValidationReport(**known).summary(), markup=False, highlight=False, soft_wrap=True)
    if export is not None:
        frame = quarantine.read_batch(entry)
        if export.suffix == ".parquet":
            write_parquet(frame, export)
        else:
            frame.to_csv(export, index=False)
        console.print(
            f"wrote the batch to {export}; fix it, then `candlecast quarantine release {entry.id} --file {export}`"
        )


def release(
    entry_id: Annotated[str, typer.Argument(help="the id (or a unique prefix) from `candlecast quarantine list`")],
    file: Annotated[Path | None, typer.Option(help="a fixed version of the batch (any importable format)")] = None,
) -> None:
    """Re-validate a quarantined batch (or its fixed version) and store it if it passes."""
    offline_defaults()
    from candlecast.data import quarantine
    from candlecast.expectations.gate import now_ms
    from candlecast.expectations.runner import validate_candles
    from candlecast.settings import Settings

    settings = Settings()
    fixed = _read(file, "auto") if file is not None else None

    def check(frame: pd.DataFrame, series: SeriesKey) -> dict:
        report = validate_candles(frame, series.timeframe, str(series), now_ms=now_ms(), state_root=settings.root)
        return report.to_dict() | {"summary": report.summary()}

    from candlecast.data.candle_store import CorruptPartition

    try:
        outcome = quarantine.release(settings, entry_id, check, fixed)
    except quarantine.QuarantineError as exc:
        raise _fail(str(exc)) from None
    except CorruptPartition as exc:
        raise corrupt_store(exc) from None
    if not outcome.released:
        console.print(f"[red]still failing; {outcome.entry.id} stays in quarantine[/red]")
        console.print(outcome.report["summary"], markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"[green]released[/green] {outcome.entry.id}: {outcome.new_candles} new candles stored")


def register(app: typer.Typer) -> None:
    """Add `validate` and `quarantine list|show|release` to the CLI."""
    app.command()(validate)
    quarantine_app.command("list")(list_quarantine)
    quarantine_app.command()(show)
    quarantine_app.command()(release)
    app.add_typer(quarantine_app, name="quarantine")
