"""Registering candlecast with a running Prefect server: the server check, work pool, limits, deployments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from candlecast.deployments.definitions import DEFAULT_EXCHANGE_LIMIT, EXCHANGE_TAG, build, sync_result

if TYPE_CHECKING:
    from uuid import UUID

    from candlecast.config import RunConfig


class NoServerError(RuntimeError):
    """No reachable Prefect server: schedules need one (the ephemeral server never runs them)."""


def require_server() -> str:
    """The configured server's API URL, or NoServerError saying how to get one."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise NoServerError(
            "no Prefect server configured (PREFECT_API_URL is unset). Prefect's ephemeral server cannot run "
            "schedules: start one with `candlecast up` (or `prefect server start`), then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`."
        )
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise NoServerError(f"the Prefect server at {url} does not answer ({error}); start it with `candlecast up`")
    return url


def ensure_exchange_limit(limit: int = DEFAULT_EXCHANGE_LIMIT) -> None:
    """At most ``limit`` exchange requests (fetch tasks) at once across every flow run on this server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=EXCHANGE_TAG, concurrency_limit=limit)  # an upsert


def ensure_process_pool(name: str) -> None:
    """Create a process work pool unless one of that name exists (any type: Kubernetes pools are the user's)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))


def deploy(
    cfg: RunConfig, pool: str, image: str | None = None, exchange_limit: int = DEFAULT_EXCHANGE_LIMIT
) -> list[UUID]:
    """Register every deployment of ``cfg`` to ``pool`` (created as a process pool if missing)."""
    require_server()
    ensure_process_pool(pool)
    ensure_exchange_limit(exchange_limit)
    return [sync_result(d.apply(work_pool_name=pool, image=image)) for d in build(cfg, work_pool=pool)]


def serve(cfg: RunConfig, exchange_limit: int = DEFAULT_EXCHANGE_LIMIT) -> None:
    """Register the deployments and run them from this process until interrupted (schedules pause on exit)."""
    from prefect import serve as prefect_serve

    require_server()
    ensure_exchange_limit(exchange_limit)
    prefect_serve(*build(cfg))
