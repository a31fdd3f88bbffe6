"""The flows' task runners: one task at a time by default, or fanned out on Dask (a local cluster or any scheduler)."""

from __future__ import annotations

from typing import Any, cast

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from candlecast.config import RunConfig
from candlecast.settings import Settings

#: What ``@flow(task_runner=...)`` and ``with_options`` accept. Prefect types a runner by its future class,
#: invariantly, so no concrete runner matches without a cast (``prefect.flows`` casts its own default).
AnyRunner = TaskRunner[PrefectFuture[Any]]


def in_order() -> AnyRunner:
    """One task at a time, in submission order: the flows' runner when nothing fans out."""
    return cast(AnyRunner, ThreadPoolTaskRunner(max_workers=1))


def fanout_runner(cfg: RunConfig, settings: Settings | None = None) -> AnyRunner:
    """A DaskTaskRunner on CANDLECAST_DASK_ADDRESS if set, else on a fresh LocalCluster.

    The local cluster has ``multi_series.dask_workers`` worker processes of one thread each (Dask's
    nanny starts them with OMP/MKL at one thread, so N workers use N cores without oversubscribing);
    it lives as long as the flow run. A remote scheduler's workers need this package installed.
    """
    address = (settings or Settings()).dask_address
    if address:
        return cast(AnyRunner, DaskTaskRunner(address=address))
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.multi_series.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
    return cast(AnyRunner, runner)
