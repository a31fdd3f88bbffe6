"""`candlecast models | promote | rollback | predict | score | serve-model`: the registry and the serving side.

`predict` and `score` run their flows like `candlecast run` does (deployments/session.py): output in a
log file under <home>/logs, a failure in at most three lines, Ctrl-C in one.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.markup import escape

from candlecast.deployments.commands.common import (
    ConfigOption,
    JsonOption,
    command_hint,
    console,
    fail,
    load_config,
    offline_defaults,
    print_json,
    print_table,
)

DebugOption = Annotated[bool, typer.Option("--debug", help="show every library's output and the full traceback")]
_SHOWN_METRICS = ("rmse_ratio", "test_rmse", "live_rmse_ratio")


def models(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Registered versions with their aliases, key metrics and promotion decisions."""
    offline_defaults()
    cfg = load_config(config, strict=False)
    from candlecast.registry.status import collect_status
    from candlecast.settings import Settings

    report = collect_status(Settings(), cfg)["models"]
    if as_json:
        print_json(report)
        return
    header = ["version", "aliases", *_SHOWN_METRICS, "decision", "reasons"]
    print_table(f"registered model {report['name']}", header, [model_row(v) for v in report["versions"]])


def model_row(v: dict[str, Any]) -> list[str]:
    """One registered version as table cells: metrics to four decimals, the gate's decision and reasons whole."""
    m = v["metrics"]
    metrics = [f"{m[k]:.4f}" if k in m else "-" for k in _SHOWN_METRICS]
    return [v["version"], ",".join(v["aliases"]) or "-", *metrics, v["decision"] or "-", v["reasons"] or "-"]


def promote(
    version: Annotated[str, typer.Argument(help="model version to promote to @champion")],
    force: Annotated[bool, typer.Option("--force", help="skip the gate; the override is recorded")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the promotion gate for VERSION against the current champion (or force it, recorded)."""
    offline_defaults()
    cfg = load_config(config)
    from mlflow.exceptions import MlflowException

    from candlecast.forecasting.targets import target_of
    from candlecast.registry import tracking
    from candlecast.registry.promotion import gate_version
    from candlecast.settings import Settings

    settings = Settings()
    client = tracking.client(settings)
    try:
        run_id = client.get_model_version(cfg.promotion.model_name, version).run_id
    except MlflowException:
        raise fail(f"{cfg.promotion.model_name} has no version {version}: see `{command_hint('models')}`") from None
    if run_id is None:  # registered from a path, not from a run: no test metrics to judge it on
        raise fail(f"{cfg.promotion.model_name} v{version} was registered without an MLflow run: nothing to gate")
    metrics = client.get_run(run_id).data.metrics
    outcome = gate_version(client, settings, cfg.promotion, target_of(cfg), version, metrics, force=force)
    verdict = "[green]promoted to @champion[/green]" if outcome.promoted else "[yellow]refused[/yellow]"
    console.print(f"{cfg.promotion.model_name} v{version}: {verdict}")
    for reason in outcome.reasons:
        console.print(f"  - {escape(reason)}", soft_wrap=True)
    if not outcome.promoted:
        hint = command_hint(f"promote {version} --force")
        console.print(f"the gate kept @champion; `{escape(hint)}` promotes it anyway (the override is recorded)")
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
            raise fail(str(exc), code=1) from None
    console.print(f"@champion of {cfg.promotion.model_name}: v{demoted} -> v{restored}")


def predict(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Forecast every configured series from @champion (the predict flow)."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.deployments.session import run_session

    def body(session: Any) -> Any:
        from candlecast.flows.predict import predict_flow

        return predict_flow(cfg)

    outcome = run_session("predict", body, debug)
    if outcome.skipped:
        console.print(f"[yellow]skipped:[/yellow] {escape(outcome.skipped)}", soft_wrap=True)
        raise typer.Exit(1)
    for path in outcome.files:
        console.print(f"v{outcome.model_version} -> {escape(str(path))}", soft_wrap=True)


def score(config: ConfigOption = None, debug: DebugOption = False) -> None:
    """Score stored forecasts against the candles that arrived since (the score flow)."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.deployments.session import run_session

    def body(session: Any) -> Any:
        from candlecast.flows.score import score_flow

        return score_flow(cfg)

    outcome = run_session("score", body, debug)
    if not outcome.scored_rows:
        console.print(f"scored 0 forecast rows: {_why_nothing_scored(cfg)}", soft_wrap=True)
        return
    console.print(f"scored {outcome.scored_rows} forecast rows")
    for version, metrics in sorted(outcome.by_version.items()):
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        console.print(f"  {version}: {shown}", soft_wrap=True)


def _why_nothing_scored(cfg: Any) -> str:
    """Which of the two reasons it is: no stored forecast at all, or none whose target candles have closed."""
    from candlecast.registry.prediction_store import prediction_store
    from candlecast.settings import Settings

    store = prediction_store(Settings(), cfg.predict.store_url)
    if all(store.latest(series) is None for series in cfg.series):
        return f"no forecast is stored yet (`{command_hint('predict')}` makes them, from the @champion)"
    return (
        "no stored forecast has a target candle in the store yet (each step is scored once its candle closed and "
        f"was ingested); score again after `{command_hint('ingest')}` brings the next {cfg.data.timeframe} candles"
    )


def serve_model(
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option(help="registered model (default: the config's model_name)")] = None,
    alias: Annotated[str, typer.Option(help="the alias that decides which version serves")] = "champion",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5001,
    workers: Annotated[int, typer.Option(help="worker processes, one inference thread each (default: a core each)")] = (
        os.cpu_count() or 1
    ),
    reload_seconds: Annotated[float, typer.Option(help="how often each worker checks whether the alias moved")] = 30.0,
) -> None:
    """Serve the registry's @champion over HTTP (POST /invocations, GET /health), following the alias as it moves."""
    offline_defaults()
    name = model or load_config(config, strict=False).promotion.model_name
    from mlflow.exceptions import MlflowException

    from candlecast.registry import tracking
    from candlecast.registry.serving import serve
    from candlecast.settings import Settings

    if workers < 1 or reload_seconds <= 0:
        raise fail("--workers needs at least 1 and --reload-seconds a positive number")
    try:  # here, not in each worker: a missing alias is one line, not a worker crash per core
        version = tracking.client(Settings()).get_model_version_by_alias(name, alias).version
    except MlflowException:
        raise fail(f"{name} has no @{alias} version to serve: see `{command_hint('models')}`") from None
    console.print(f"serving {name} @{alias} (v{version}) on http://{host}:{port} with {workers} worker(s)")
    serve(name, alias, host, port, workers, reload_seconds)


def register(app: typer.Typer) -> None:
    """Add the registry and serving commands to the CLI."""
    for command in (models, promote, rollback, predict, score, serve_model):
        app.command()(command)
