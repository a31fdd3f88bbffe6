"""`candlecast run` and `candlecast status`: the whole pipeline once, and what the state folder holds.

`run` checks the config first (exchange id, endpoint, the symbols against the market list, the stored
series' sources, enough history: deployments/preflight.py), then
runs the pipeline flow with its output in a log file and short progress lines on the terminal
(deployments/session.py); `status` reads the stores and the registry, and exits 3 when a stored file
is unreadable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from candlecast.deployments.commands.common import (
    EXIT_CORRUPT_STORE,
    ConfigOption,
    JsonOption,
    command_hint,
    console,
    corrupt_store,
    fail,
    load_config,
    offline_defaults,
    print_json,
    print_table,
    record_config,
    venv_program,
)

if TYPE_CHECKING:
    from candlecast.config import RunConfig
    from candlecast.deployments.session import Session
    from candlecast.settings import Settings

DebugOption = Annotated[bool, typer.Option("--debug", help="show every library's output and the full traceback")]


def run(
    config: ConfigOption = None,
    api_url: Annotated[
        str | None, typer.Option(help="fetch from this Binance-shaped endpoint, e.g. http://127.0.0.1:8765")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Run the whole pipeline once: ingest, validate, features, sweep, evaluate, promote, predict.

    Progress shows on the terminal; the flows' full output goes to a log file under <home>/logs
    (named at the end). Ctrl-C stops cleanly and the next run resumes the sweep.
    """
    offline_defaults()
    cfg = with_api_url(load_config(config), api_url)
    from candlecast.data.candle_store import CorruptPartition
    from candlecast.deployments.preflight import PreflightError, check_run
    from candlecast.deployments.session import run_session
    from candlecast.settings import Settings

    settings = Settings()
    try:
        check_run(cfg, settings)
    except CorruptPartition as exc:
        raise corrupt_store(exc) from None
    except PreflightError as exc:
        raise fail(str(exc)) from None
    if api_url is None:  # a one-off endpoint is not the config's source: nothing to record
        record_config(cfg)
    result = run_session("run", lambda session: _pipeline(cfg, session), debug)
    _print_outcome(result, settings)


def with_api_url(cfg: RunConfig, api_url: str | None) -> RunConfig:
    """The config fetching from ``api_url`` instead of its own endpoint (no emulator), when given."""
    if api_url is None:
        return cfg
    exchange = cfg.exchange.model_copy(update={"api_url": api_url, "emulator": False, "rate_limit": False})
    return cfg.model_copy(update={"exchange": exchange})


def _pipeline(cfg: RunConfig, session: Session) -> dict[str, Any]:
    from candlecast.deployments.progress import showing_progress
    from candlecast.flows.pipeline import pipeline

    session.terminal.print(f"candlecast run {cfg.name!r}: log {escape(str(session.log_path))}", soft_wrap=True)
    with showing_progress(session.terminal, muted=session.caught):
        return pipeline(cfg)


def _print_outcome(result: dict[str, Any], settings: Settings) -> None:
    """The decision first, then where to look; every command printed whole (soft-wrapped, never cut)."""
    promotion, preds = result["promotion"], result["predictions"]
    metric = "qlike_ratio" if "qlike_ratio" in promotion.metrics else "rmse_ratio"
    reference = "the best classical volatility model" if metric == "qlike_ratio" else "naive random walk"
    console.rule("[bold]candlecast run finished")
    console.print(
        f"test {metric} vs {reference}: [bold]{promotion.metrics[metric]:.4f}[/bold] (below 1 beats it)",
        soft_wrap=True,
    )
    verdict = "[green]promoted to @champion[/green]" if promotion.promoted else "[yellow]kept as @challenger[/yellow]"
    console.print(f"model {promotion.model_name} version {promotion.version}: {verdict}")
    for reason in promotion.reasons:
        console.print(f"  - {escape(reason)}", soft_wrap=True)
    if _tied_with_champion(promotion, metric):
        console.print(
            "  (a re-run on the same candles retrains the same model and ties with the champion, so the champion "
            "stays; a new champion needs new candles or a changed config that scores better)",
            soft_wrap=True,
        )
    console.print(f"current @champion: {promotion.champion or 'none'}")
    if preds.skipped:
        console.print(f"[yellow]predictions skipped:[/yellow] {escape(preds.skipped)}", soft_wrap=True)
    _print_where(settings)


def _tied_with_champion(promotion: Any, metric: str) -> bool:
    champion = promotion.metrics.get(f"champion.{metric}")
    return not promotion.promoted and champion is not None and abs(champion - promotion.metrics[metric]) < 5e-5


def _print_where(settings: Settings) -> None:
    from candlecast.settings import redact

    console.print("\n[bold]Where to look[/bold]")
    rows = [
        ("candle store", str(settings.candles_dir)),
        ("predictions", str(settings.predictions_dir)),
        ("all the UIs", f"{command_hint('up')}   (Prefect, MLflow, optuna-dashboard and Data Docs on 127.0.0.1)"),
        # redacted: a store URL may hold a password (put it back by hand, or use `up`, which takes it from env)
        (
            "MLflow UI alone",
            f"{venv_program('mlflow')} ui --backend-store-uri {redact(settings.tracking_uri)} --port 5000",
        ),
        ("Optuna dashboard", f"{venv_program('optuna-dashboard')} {redact(settings.optuna_url)}"),
        ("status", command_hint("status")),
    ]
    for label, where in rows:
        console.print(f"  {label + ':':<18} {escape(where)}", soft_wrap=True, highlight=False)


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Stored candles, last validations, registered models and the latest forecasts; exit 3 on a corrupt file."""
    offline_defaults()
    cfg = load_config(config, strict=False)
    from candlecast.live.paper_book import MEANING, paper_summary
    from candlecast.registry.status import collect_status
    from candlecast.settings import Settings

    report = collect_status(Settings(), cfg)
    report["paper"] = paper_summary(Settings())  # the live loop's paper accounts (`live.paper: true`)
    if as_json:
        print_json(report)
    else:
        print_table(f"series in {report['home']}", list(SERIES_COLUMNS), [series_row(s) for s in report["series"]])
        print_table(
            f"registered model {report['models']['name']}",
            ["version", "aliases", "rmse_ratio", "decision"],
            [_version_row(v) for v in report["models"]["versions"]],
        )
        if report["paper"]["book"] is not None:
            print_table("live paper trading since the loop started", list(PAPER_COLUMNS), paper_rows(report["paper"]))
            console.print(MEANING, soft_wrap=True, highlight=False)
    corrupt = [s for s in report["series"] if s.get("corrupt")]
    errors = Console(stderr=True, highlight=False, soft_wrap=True)  # on stderr: `status --json | jq` still parses
    for s in corrupt:
        errors.print(f"[red]corrupt store:[/red] {escape(s['corrupt'])}")
    if corrupt:
        raise typer.Exit(EXIT_CORRUPT_STORE)


SERIES_COLUMNS = (
    "series", "candles", "last candle (UTC)", "missing (gaps)", "validation", "latest forecast", "source",
)  # fmt: skip


PAPER_COLUMNS = (
    "series", "bars", "fills", "fees", "position", "equity", "PnL", "buy-and-hold", "excess", "max drawdown",
    "last candle (UTC)",
)  # fmt: skip


def paper_rows(paper: dict[str, Any]) -> list[list[str]]:
    """Each paper account and the book: PnL next to buy-and-hold on the same terms, in the quote currency and %."""
    from datetime import UTC, datetime

    from candlecast.live.paper_book import money

    def row(name: str, r: dict[str, Any], position: str) -> list[str]:
        return [
            name, str(r["bars"]), str(r["fills"]), f"{r['fees']:,.2f}", position, f"{r['equity']:,.2f}",
            money(r["pnl"], r["pnl_pct"]), money(r["buy_and_hold"], r["buy_and_hold_pct"]),
            money(r["excess"], r["excess_pct"]), f"{100 * r['max_drawdown']:.2f}%",
            datetime.fromtimestamp(r["last"] / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
        ]  # fmt: skip

    book = paper["book"]
    return [row(r["series"], r, f"{r['position']:g}") for r in paper["series"]] + [
        row(f"book ({book['series']} series)", book, "-")
    ]


def series_row(s: dict[str, Any]) -> list[str]:
    """One series as table cells: times cut to the minute, the validation verdict and any refused batch."""
    preds = s["latest_predictions"]
    candles = "unreadable" if s.get("corrupt") else str(s["candles"])
    return [
        s["series"],
        candles,
        _short(s["last"]),
        f"{s.get('missing', 0)} ({len(s.get('gaps', []))})",
        validation_cell(s["last_validation"]),
        "-" if preds is None else f"v{preds['model_version']} from {_short(preds['cutoff'])}",
        s.get("source") or "-",
    ]


def validation_cell(record: dict[str, Any] | None) -> str:
    """'passed' or 'FAILED' for the stored data, plus 'refused <time> (quarantine <id>)' for a refused batch."""
    from candlecast.data.validations import LAST_REFUSED, REFUSED_ONLY

    if record is None:
        return "-"
    verdict = "-" if record.get(REFUSED_ONLY) else ("passed" if record.get("success") else "FAILED")
    refused = record.get(LAST_REFUSED)
    if not refused:
        return verdict
    return f"{verdict}; refused {_short(refused.get('checked_at'))} (quarantine {refused.get('quarantine', '-')})"


def _version_row(v: dict[str, Any]) -> list[str]:
    ratio = v["metrics"].get("rmse_ratio")
    return [v["version"], ",".join(v["aliases"]) or "-", "-" if ratio is None else f"{ratio:.4f}", v["decision"] or "-"]


def _short(iso: str | None) -> str:
    """'2026-11-21T07:00:00+00:00' -> '2026-11-21 07:00': the table is read, the JSON is parsed."""
    return "-" if not iso else iso[:16].replace("T", " ")


def register(app: typer.Typer) -> None:
    """Add `run` and `status` to the CLI."""
    app.command()(run)
    app.command()(status)
