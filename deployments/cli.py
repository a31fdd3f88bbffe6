"""The `candlecast` command line: the composition root that reads settings and config and runs flows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="candlecast: forecast crypto prices with an orchestrated MLOps workflow.", no_args_is_help=True)
console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="run config YAML (default: built-in offline defaults)")
]


def _offline_defaults() -> None:
    """Quiet telemetry and route candlecast's logs into Prefect's run logs; user settings win."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "candlecast")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def _load_config(path: Path | None):
    from candlecast.config import RunConfig

    try:
        return RunConfig.from_yaml(path) if path else RunConfig()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the whole pipeline once: ingest, validate, features, sweep, evaluate, promote, predict."""
    _offline_defaults()
    cfg = _load_config(config)
    from candlecast.settings import Settings
    from flows.pipeline import pipeline

    settings = Settings()
    result = pipeline(cfg)
    promotion, evaluation, preds = result["promotion"], result["evaluation"], result["predictions"]
    console.rule("[bold]candlecast run finished")
    console.print(
        f"test RMSE vs naive random walk: [bold]{evaluation.metrics['rmse_ratio']:.4f}[/bold] (<1 beats naive)"
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


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON")] = False,
) -> None:
    """Stored candles, last validations, registered models and the latest forecasts."""
    _offline_defaults()
    cfg = _load_config(config)
    from candlecast.settings import Settings
    from candlecast.status import collect_status

    report = collect_status(Settings(), cfg)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(title=f"series in {report['home']}")
    for col in ("series", "candles", "last candle", "validation", "latest forecast"):
        table.add_column(col)
    for s in report["series"]:
        val = s["last_validation"]
        preds = s["latest_predictions"]
        table.add_row(
            s["series"],
            str(s["candles"]),
            s["last"] or "-",
            "-" if val is None else ("passed" if val["success"] else "FAILED"),
            "-" if preds is None else f"v{preds['model_version']} from {preds['cutoff']}",
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


@app.command()
def emulate(
    symbols: Annotated[str, typer.Option(help="comma-separated unified symbols")] = "BTC/USDT,ETH/USDT",
    timeframe: str = "1h",
    days: Annotated[int, typer.Option(help="days of synthetic history up to now")] = 30,
    port: int = 8765,
    seed: int = 7,
) -> None:
    """Serve seeded synthetic candles through a local Binance-shaped API on 127.0.0.1 until Ctrl-C."""
    import time

    from candlecast.emulator import synthetic_emulator
    from candlecast.schema import timeframe_ms

    step = timeframe_ms(timeframe)
    now = int(time.time() * 1000)
    n = days * 86_400_000 // step
    start = (now // step - n + 1) * step
    with synthetic_emulator(symbols.split(","), timeframe=timeframe, start_ms=start, n=n, seed=seed, port=port) as emu:
        emu.now_ms = now
        console.print(f"emulating Binance at {emu.url} ({symbols}, {timeframe}, {days} days); Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    app()
