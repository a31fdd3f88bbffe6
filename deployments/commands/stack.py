"""`candlecast up` and `candlecast down`: the local server stack as background processes."""

from __future__ import annotations

from typing import Annotated

import typer

from deployments.commands.common import console, offline_defaults
from deployments.definitions import DEFAULT_POOL


def up(
    host: Annotated[str, typer.Option(help="interface the servers bind to")] = "127.0.0.1",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    worker_health_port: int = 8081,
    dashboard_port: int = 8080,
    dashboard: Annotated[bool, typer.Option(help="also start optuna-dashboard")] = True,
    pool: Annotated[str, typer.Option(help="work pool the worker serves")] = DEFAULT_POOL,
    prefect_database: Annotated[
        str | None, typer.Option(help="Prefect server DB URL, e.g. postgresql+asyncpg://… (default: sqlite)")
    ] = None,
    mlflow_store: Annotated[
        str | None, typer.Option(help="MLflow backend store URI (default: the CLI's <home>/mlflow.db)")
    ] = None,
) -> None:
    """Start Prefect server, a process worker, the MLflow server and optuna-dashboard; print the UI URLs."""
    offline_defaults()
    from candlecast.settings import Settings
    from deployments import stack

    settings = Settings()
    cfg = stack.StackConfig(
        host=host,
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
        worker_health_port=worker_health_port,
        dashboard_port=dashboard_port if dashboard else None,
        pool=pool,
        artifacts_dir=str(settings.mlflow_artifacts_dir),
    )
    backends = stack.Backends(
        home=settings.root,
        prefect_database=prefect_database,
        mlflow_store=mlflow_store,
        optuna_storage=settings.optuna_storage,
    )
    busy = [
        p
        for p in (prefect_port, mlflow_port, worker_health_port, cfg.dashboard_port)
        if p and not stack.port_free(host, p)
    ]
    if busy:
        console.print(
            f"[red]error:[/red] port(s) {busy} on {host} are in use; stop what holds them or pass other --*-port"
        )
        raise typer.Exit(2)
    state = settings.root / "stack"
    console.print(f"starting the stack (logs and pid files in {state}) ...")
    try:
        stack.init_optuna_storage(backends.optuna_url)
        started = stack.up(stack.services(cfg, backends), state)
    except stack.StackError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for svc in started:
        console.print(f"  {svc.name:<17} {svc.ui_url or f'pool {pool!r}'}")
    console.print(
        f"\nnext:\n  export PREFECT_API_URL={cfg.prefect_api_url}\n"
        f"  candlecast deploy --config configs/demo.yaml --pool {pool}\n  candlecast down   (stops it all)"
    )


def down() -> None:
    """Stop the stack that `candlecast up` started (only the processes its pid files name)."""
    from candlecast.settings import Settings
    from deployments import stack

    stopped = stack.down(Settings().root / "stack")
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def register(app: typer.Typer) -> None:
    """Add `candlecast up` and `candlecast down` to the CLI."""
    app.command()(up)
    app.command()(down)
