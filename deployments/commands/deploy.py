"""`candlecast serve` and `candlecast deploy`: the Prefect deployments against a running server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from candlecast.deployments.commands.common import ConfigOption, console, fail, load_config, offline_defaults
from candlecast.deployments.definitions import DEFAULT_EXCHANGE_LIMIT, DEFAULT_POOL, SPECS

if TYPE_CHECKING:
    from candlecast.config import RunConfig

ExchangeLimit = Annotated[int, typer.Option(min=1, help="most exchange requests (fetch tasks) at once, server-wide")]


def _schedule_table(cfg: RunConfig) -> None:
    from candlecast.deployments.definitions import deployment_name

    for s in SPECS:
        console.print(f"  {deployment_name(s, cfg):<34} {s.cron or 'on demand':<11} {s.description}")


def serve(config: ConfigOption = None, exchange_limit: ExchangeLimit = DEFAULT_EXCHANGE_LIMIT) -> None:
    """Register the deployments (cron in UTC) and run their flows from this process until Ctrl-C."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.deployments.local_prefect import server_api
    from candlecast.deployments.registration import NoServerError
    from candlecast.deployments.registration import serve as serve_deployments
    from candlecast.settings import Settings

    console.print(f"serving candlecast deployments for config {cfg.name!r}:")
    _schedule_table(cfg)
    try:
        with server_api(Settings()):
            serve_deployments(cfg, exchange_limit)
    except NoServerError as exc:
        raise fail(str(exc)) from None


def deploy(
    config: ConfigOption = None,
    pool: Annotated[str, typer.Option(help="work pool (created as a process pool if missing)")] = DEFAULT_POOL,
    image: Annotated[str | None, typer.Option(help="image for Docker/Kubernetes pools")] = None,
    exchange_limit: ExchangeLimit = DEFAULT_EXCHANGE_LIMIT,
) -> None:
    """Register the deployments to a work pool; a worker (`prefect worker start --pool POOL`) runs them."""
    offline_defaults()
    cfg = load_config(config)
    from candlecast.deployments.local_prefect import server_api
    from candlecast.deployments.registration import NoServerError
    from candlecast.deployments.registration import deploy as register
    from candlecast.settings import Settings

    try:
        with server_api(Settings()):
            ids = register(cfg, pool, image, exchange_limit)
    except NoServerError as exc:
        raise fail(str(exc)) from None
    console.print(f"registered {len(ids)} deployments for config {cfg.name!r} to work pool {pool!r}:")
    _schedule_table(cfg)
    console.print(f"run them with a worker: prefect worker start --pool {pool}   (`candlecast up` starts one)")


def register(app: typer.Typer) -> None:
    """Add `candlecast serve` and `candlecast deploy` to the CLI."""
    app.command()(serve)
    app.command()(deploy)
