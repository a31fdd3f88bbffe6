"""`candlecast models | promote | rollback | predict | score`: the registry and the serving side."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deployments.commands.common import ConfigOption, console, load_config, offline_defaults


def models(config: ConfigOption = None) -> None:
    """Registered versions with their aliases, key metrics and promotion decisions."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.registry.status import collect_status
    from candlecast.settings import Settings

    report = collect_status(Settings(), cfg)["models"]
    table = Table(title=f"registered model {report['name']}")
    for col in ("version", "aliases", "rmse_ratio", "test_rmse", "live_rmse_ratio", "decision", "reasons"):
        table.add_column(col, overflow="fold")
    for v in report["versions"]:
        m = v["metrics"]
        table.add_row(
            v["version"],
            ",".join(v["aliases"]),
            *(f"{m[k]:.4f}" if k in m else "-" for k in ("rmse_ratio", "test_rmse", "live_rmse_ratio")),
            v["decision"] or "-",
            v["reasons"] or "",
        )
    console.print(table)


def promote(
    version: Annotated[str, typer.Argument(help="model version to promote to @champion")],
    force: Annotated[bool, typer.Option("--force", help="skip the gate; the override is recorded")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the promotion gate for VERSION against the current champion (or force it, recorded)."""
    offline_defaults()
    cfg = load_config(config)
    from mlflow.exceptions import MlflowException

    from candlecast.registry import tracking
    from candlecast.registry.promotion import gate_version
    from candlecast.settings import Settings

    settings = Settings()
    client = tracking.client(settings)
    try:
        run_id = client.get_model_version(cfg.promotion.model_name, version).run_id
    except MlflowException:
        console.print(f"[red]error:[/red] {cfg.promotion.model_name} has no version {version}: see `candlecast models`")
        raise typer.Exit(2) from None
    outcome = gate_version(client, settings, cfg.promotion, version, client.get_run(run_id).data.metrics, force=force)
    verdict = "[green]promoted to @champion[/green]" if outcome.promoted else "[yellow]refused[/yellow]"
    console.print(f"{cfg.promotion.model_name} v{version}: {verdict}")
    for reason in outcome.reasons:
        console.print(f"  - {reason}")
    if not outcome.promoted:
        raise typer.Exit(1)


def rollback(config: ConfigOption = None) -> None:
    """Point @champion back at @previous (the champion before the last promotion)."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.registry import aliases, tracking
    from candlecast.settings import Settings

    settings = Settings()
    with aliases.promotion_lock(settings, cfg.promotion.model_name):
        try:
            demoted, restored = aliases.rollback(tracking.client(settings), cfg.promotion.model_name)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    console.print(f"@champion of {cfg.promotion.model_name}: v{demoted} -> v{restored}")


def predict(config: ConfigOption = None) -> None:
    """Forecast every configured series from @champion (the predict flow)."""
    offline_defaults()
    cfg = load_config(config)
    from flows.predict import predict_flow

    outcome = predict_flow(cfg)
    if outcome.skipped:
        console.print(f"[yellow]skipped:[/yellow] {outcome.skipped}")
        raise typer.Exit(1)
    for path in outcome.files:
        console.print(f"v{outcome.model_version} -> {path}")


def score(config: ConfigOption = None) -> None:
    """Score stored forecasts against the candles that arrived since (the score flow)."""
    offline_defaults()
    cfg = load_config(config)
    from flows.score import score_flow

    outcome = score_flow(cfg)
    if not outcome.scored_rows:
        console.print(
            "scored 0 forecast rows: no stored forecast has a target candle that closed since "
            "(run `candlecast predict`, then score again once the next candles are ingested)"
        )
        return
    console.print(f"scored {outcome.scored_rows} forecast rows")
    for version, metrics in sorted(outcome.by_version.items()):
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        console.print(f"  {version}: {shown}")


def register(app: typer.Typer) -> None:
    for command in (models, promote, rollback, predict, score):
        app.command()(command)
