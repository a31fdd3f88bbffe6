"""`candlecast run` and `candlecast status`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from deployments.commands.common import ConfigOption, console, load_config, offline_defaults


def run(config: ConfigOption = None) -> None:
    """Run the whole pipeline once: ingest, validate, features, sweep, evaluate, promote, predict."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.settings import Settings
    from flows.pipeline import pipeline

    settings = Settings()
    result = pipeline(cfg)
    promotion, preds = result["promotion"], result["predictions"]
    console.rule("[bold]candlecast run finished")
    console.print(
        f"test RMSE vs naive random walk: [bold]{promotion.metrics['rmse_ratio']:.4f}[/bold] (below 1 beats naive)"
    )
    verdict = "[green]promoted to @champion[/green]" if promotion.promoted else "[yellow]kept as @challenger[/yellow]"
    console.print(f"model {promotion.model_name} version {promotion.version}: {verdict}")
    for reason in promotion.reasons:
        console.print(f"  - {reason}")
    console.print(f"current @champion: {promotion.champion or 'none'}")
    if preds.skipped:
        console.print(f"[yellow]predictions skipped:[/yellow] {preds.skipped}")
    console.print("\n[bold]Where to look[/bold]")
    console.print(f"  candle store:      {settings.candles_dir}")
    console.print(f"  predictions:       {settings.predictions_dir}")
    console.print(f"  MLflow UI:         mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000")
    console.print(f"  Optuna dashboard:  optuna-dashboard {settings.optuna_url}")
    console.print("  status:            candlecast status")


def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON")] = False,
) -> None:
    """Stored candles, last validations, registered models and the latest forecasts."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.registry.status import collect_status
    from candlecast.settings import Settings

    report = collect_status(Settings(), cfg)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(title=f"series in {report['home']}")
    for col in ("series", "candles", "last candle (UTC)", "missing (gaps)", "validation", "latest forecast"):
        table.add_column(col, no_wrap=col == "series")
    for s in report["series"]:
        val = s["last_validation"]
        preds = s["latest_predictions"]
        table.add_row(
            s["series"],
            str(s["candles"]),
            _short(s["last"]),
            f"{s.get('missing', 0)} ({len(s.get('gaps', []))})",
            "-" if val is None else ("passed" if val["success"] else "FAILED"),
            "-" if preds is None else f"v{preds['model_version']} from {_short(preds['cutoff'])}",
        )
    console.print(table)
    models = Table(title=f"registered model {report['models']['name']}")
    for col in ("version", "aliases", "rmse_ratio", "decision"):
        models.add_column(col)
    for v in report["models"]["versions"]:
        ratio = v["metrics"].get("rmse_ratio")
        models.add_row(
            v["version"], ",".join(v["aliases"]), "-" if ratio is None else f"{ratio:.4f}", v["decision"] or "-"
        )
    console.print(models)


def _short(iso: str | None) -> str:
    """'2026-11-21T07:00:00+00:00' -> '2026-11-21 07:00': the table is read, the JSON is parsed."""
    return "-" if iso is None else iso[:16].replace("T", " ")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(status)
