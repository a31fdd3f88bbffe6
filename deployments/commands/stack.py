"""`candlecast up` and `candlecast down`: the local server stack as background processes.

The stack serves this state folder: the Prefect UI shows the flow runs of `candlecast run` (one
Prefect database under <home>/prefect), the MLflow UI its runs and registry, optuna-dashboard its
sweeps, and Data Docs its validations over http.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from candlecast.deployments.commands.common import command_hint, console, fail, offline_defaults
from candlecast.deployments.definitions import DEFAULT_POOL


def up(
    host: Annotated[str, typer.Option(help="interface the servers bind to")] = "127.0.0.1",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    worker_health_port: int = 8081,
    dashboard_port: int = 8080,
    docs_port: Annotated[int, typer.Option(help="port of the Data Docs site (GX validation pages)")] = 8082,
    dashboard: Annotated[bool, typer.Option(help="also start optuna-dashboard")] = True,
    pool: Annotated[str, typer.Option(help="work pool the worker serves")] = DEFAULT_POOL,
    # a URL with a password belongs in the environment: a command line is visible to every user (`ps`)
    prefect_database: Annotated[
        str | None,
        typer.Option(
            envvar="PREFECT_SERVER_DATABASE_CONNECTION_URL",
            show_envvar=True,
            help="Prefect server DB URL, e.g. postgresql+asyncpg://… (default: sqlite); pass a password by env",
        ),
    ] = None,
    mlflow_store: Annotated[
        str | None,
        typer.Option(
            envvar="MLFLOW_BACKEND_STORE_URI",
            show_envvar=True,
            help="MLflow backend store URI (default: the CLI's <home>/mlflow.db); pass a password by env",
        ),
    ] = None,
) -> None:
    """Start Prefect server, a process worker, the MLflow server, optuna-dashboard and Data Docs; print the URLs."""
    offline_defaults()
    from candlecast.deployments import stack
    from candlecast.settings import Settings

    settings = Settings()
    cfg = stack.StackConfig(
        host=host,
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
        worker_health_port=worker_health_port,
        dashboard_port=dashboard_port if dashboard else None,
        docs_port=docs_port,
        pool=pool,
        artifacts_dir=str(settings.mlflow_artifacts_dir),
    )
    backends = stack.Backends(
        home=settings.root,
        prefect_database=prefect_database,
        mlflow_store=mlflow_store,
        optuna_storage=settings.optuna_storage,
    )
    state = backends.state_dir
    services = stack.services(cfg, backends)
    _refuse_if_running(state, [s.name for s in services])
    busy = [p for p in (prefect_port, mlflow_port, worker_health_port, cfg.dashboard_port, docs_port) if p]
    busy = [p for p in busy if not stack.port_free(host, p)]
    if busy:
        raise fail(f"port(s) {busy} on {host} are in use; stop what holds them or pass other --*-port options")
    console.print(
        f"starting the stack for {escape(str(settings.root))} (logs and pid files in {escape(str(state))}) ..."
    )
    try:
        stack.init_optuna_storage(backends.optuna_url)
        started = stack.up(services, state)
    except stack.StackError as exc:
        raise fail(str(exc), code=1) from None
    for svc in started:
        console.print(f"  {svc.name:<17} {svc.ui_url or f'pool {pool!r}'}", highlight=False)
    console.print(
        f"\n`{command_hint('run')}` and `{command_hint('deploy')}` use this Prefect server by themselves; other "
        f"Prefect clients: export PREFECT_API_URL={cfg.prefect_api_url}\n"
        f"next: {command_hint('deploy --config configs/demo.yaml --pool ' + pool)}\n"
        f"stop it all: {command_hint('down')}",
        soft_wrap=True,
        highlight=False,
    )


def _refuse_if_running(state, names: list[str]) -> None:
    """`up` twice: say what already runs (exit 0 when it all does), rather than "ports in use"."""
    from candlecast.deployments import stack
    from candlecast.io import read_json

    running = [n for n in names if stack.running(state, n) is not None]
    if not running:
        return
    if set(running) == set(names):
        console.print("the stack is already running:")
        for name in running:
            url = (read_json(state / f"{name}.json") or {}).get("url")
            console.print(f"  {name:<17} {url or '-'}", highlight=False)
        console.print(f"stop it with `{command_hint('down')}`", highlight=False)
        raise typer.Exit(0)
    raise fail(
        f"part of the stack is already running ({', '.join(running)}): `{command_hint('down')}` stops it, "
        f"then `{command_hint('up')}` starts all of it",
        code=1,
    )


def down() -> None:
    """Stop the stack that `candlecast up` started (only the processes its pid files name)."""
    from candlecast.deployments import stack
    from candlecast.settings import Settings

    stopped = stack.down(Settings().root / "stack")
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def register(app: typer.Typer) -> None:
    """Add `up` and `down` to the CLI."""
    app.command()(up)
    app.command()(down)
