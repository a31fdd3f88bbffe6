"""The task runner that fans per-symbol work out on Dask: a local cluster, or any scheduler by setting."""

from __future__ import annotations

from prefect_dask import DaskTaskRunner

from candlecast.config import RunConfig
from candlecast.settings import Settings


def fanout_runner(cfg: RunConfig, settings: Settings | None = None) -> DaskTaskRunner:
    """A DaskTaskRunner on CANDLECAST_DASK_ADDRESS if set, else on a fresh LocalCluster.

    The local cluster has ``multi_series.dask_workers`` worker processes of one thread each (Dask's
    nanny starts them with OMP/MKL at one thread, so N workers use N cores without oversubscribing);
    it lives as long as the flow run. A remote scheduler's workers need this package installed.
    """
    address = (settings or Settings()).dask_address
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": cfg.multi_series.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
