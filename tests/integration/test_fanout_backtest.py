"""Fan-out on Dask: a 4-symbol backtest on a 2-worker LocalCluster equals the same backtests run in order.

The cluster is started here and reached through CANDLECAST_DASK_ADDRESS, the setting a real deployment
uses for a remote scheduler, so the flow's runner is the one users get. Every model's metrics, per fold
and pooled, must be equal to the sequential run's, bit for bit: both run torch and BLAS on one thread
(``train.threads: 1`` and a BLAS limit here, Dask's one-thread workers there; at two BLAS threads the
ridge baseline's metrics move in the 16th digit). Only the measured fit times differ. Both
workers must have run backtests: the work really fanned out.
"""

from __future__ import annotations

import pandas as pd
import pytest

from candlecast.config import RunConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.forecasting.multi_series import backtest_source

pytestmark = pytest.mark.slow

START = 1_704_067_200_000
SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"]
MODELS = ["naive", "drift", "ridge", "lstm"]
TINY = {
    "features": {"lookback": 16, "horizon": 4, "vol_window": 12},
    "split": {"test_fraction": 0.2, "test_folds": 2},
    "train": {"max_epochs": 1, "threads": 1, "batch_size": 64},
    "multi_series": {"dask_workers": 2},
}


@pytest.fixture
def sources(tmp_path) -> list[str]:
    paths = []
    for i, symbol in enumerate(SYMBOLS):
        path = tmp_path / f"binance_{symbol.replace('/', '-')}_1h.csv"
        synthetic_candles(symbol, START, 700, seed=20 + i).to_csv(path, index=False)
        paths.append(str(path))
    return paths


@pytest.fixture
def cluster(monkeypatch):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        monkeypatch.setenv("CANDLECAST_DASK_ADDRESS", local.scheduler_address)
        with Client(local) as client:
            yield client


def _without_timings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["fit_seconds"])


def test_four_symbol_backtest_on_two_dask_workers_equals_the_sequential_run(prefect_server, sources, cluster):
    from threadpoolctl import threadpool_limits

    from candlecast.flows.backtest import run_backtests

    cfg = RunConfig.model_validate(TINY)
    with threadpool_limits(limits=1):  # BLAS on one thread, as in a Dask worker: ridge's last bits depend on it
        sequential = [backtest_source(path, MODELS, cfg) for path in sources]
    fanned = run_backtests(sources, MODELS, cfg)

    assert [r.name for r in fanned] == [r.name for r in sequential] == [p.rsplit("/", 1)[1][:-4] for p in sources]
    for ours, theirs in zip(fanned, sequential, strict=True):
        assert list(ours.summary.index) == MODELS
        pd.testing.assert_frame_equal(
            _without_timings(ours.summary), _without_timings(theirs.summary), check_exact=True
        )
        pd.testing.assert_frame_equal(
            _without_timings(ours.per_fold), _without_timings(theirs.per_fold), check_exact=True
        )
    executed = cluster.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and all(n >= 1 for n in executed.values()), executed
    assert sum(executed.values()) >= len(SYMBOLS)
