"""Fan-out on Dask: the same multi-symbol backtest run in order, on 1 and on 2 Dask workers, interleaved.

Writes ``--symbols`` seeded synthetic 1h candle files (``--candles`` each) and backtests every one of
them with the same models and the small config of tests/integration/test_fanout_backtest.py
(lookback 16, horizon 4, 2 test folds, 1 epoch, torch on one thread). Each round runs, in a rotating
order:

    plain        backtest_source on each file in turn, in this process (no Prefect): the work itself
    sequential   flows.backtest.backtest_flow: the Prefect flow, its tasks one after another
    dask 1       flows.backtest.run_backtests with multi_series.dask_workers 1
    dask 2       flows.backtest.run_backtests with multi_series.dask_workers 2
    warm 2       run_backtests on a 2-worker LocalCluster started once before the rounds and reached
                 through CANDLECAST_DASK_ADDRESS (what a deployment with a standing cluster does)

Every "dask" run starts its own LocalCluster (as the flow does for each run without
CANDLECAST_DASK_ADDRESS), so the worker start-up and imports are in its wall time; "warm 2" pays
them once, before the rounds (printed). The flows run on a
temporary Prefect server (prefect_test_harness). Prints each run's wall time, the medians and the
per-round ratios to the sequential flow, and checks the fanned-out metrics equal the plain run's.

    .venv/bin/python bench/fanout.py [--symbols 4] [--candles 700] [--rounds 3] [--models naive,drift,ridge,lstm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

START = 1_704_067_200_000


def config(args: argparse.Namespace, workers: int):
    from candlecast.config import RunConfig

    return RunConfig.model_validate(
        {
            "features": {"lookback": 16, "horizon": 4, "vol_window": 12},
            "split": {"test_fraction": 0.2, "test_folds": 2},
            "train": {"max_epochs": args.max_epochs, "threads": 1, "batch_size": 64},
            "multi_series": {"dask_workers": workers},
        }
    )


def sources(args: argparse.Namespace, folder: Path) -> list[str]:
    from candlecast.devtools.synthetic import synthetic_candles

    paths = []
    for i in range(args.symbols):
        symbol = f"S{i:03d}/USDT"
        path = folder / f"binance_{symbol.replace('/', '-')}_1h.csv"
        synthetic_candles(symbol, START, args.candles, seed=20 + i).to_csv(path, index=False)
        paths.append(str(path))
    return paths


def _warm_imports() -> None:
    """What a backtest task imports first on a worker (so the warm cluster pays it before the rounds)."""
    import candlecast.forecasting.multi_series  # noqa: F401
    import candlecast.tasks.backtest  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--candles", type=int, default=700, help="candles per synthetic series")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=1)
    parser.add_argument("--models", default="naive,drift,ridge,lstm")
    args = parser.parse_args()
    models = args.models.split(",")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    os.environ.pop("CANDLECAST_DASK_ADDRESS", None)
    from distributed import Client, LocalCluster
    from prefect.testing.utilities import prefect_test_harness
    from threadpoolctl import threadpool_limits

    from candlecast.flows.backtest import backtest_flow, run_backtests
    from candlecast.forecasting.multi_series import backtest_source

    folder = Path(tempfile.mkdtemp(prefix="candlecast-fanout-"))
    paths = sources(args, folder)
    print(
        f"{args.symbols} synthetic 1h series of {args.candles} candles; models {', '.join(models)}; "
        f"lookback 16, horizon 4, 2 test folds, <= {args.max_epochs} epoch(s), torch 1 thread; "
        f"{os.cpu_count()} cores; {args.rounds} interleaved rounds",
        flush=True,
    )

    results = {}

    def plain():
        with threadpool_limits(limits=1):  # BLAS on one thread, as in a Dask worker
            return [backtest_source(p, models, config(args, 1)) for p in paths]

    def sequential():
        with threadpool_limits(limits=1):  # the same BLAS limit, so ridge's last bits match
            return backtest_flow(paths, models, config(args, 1))

    def warm(address: str):
        os.environ["CANDLECAST_DASK_ADDRESS"] = address
        try:
            return run_backtests(paths, models, config(args, 2))
        finally:
            del os.environ["CANDLECAST_DASK_ADDRESS"]

    runs = {
        "plain": plain,
        "sequential": sequential,
        "dask 1": lambda: run_backtests(paths, models, config(args, 1)),
        "dask 2": lambda: run_backtests(paths, models, config(args, 2)),
    }
    times: dict[str, list[float]] = {name: [] for name in [*runs, "warm 2"]}
    t_start = time.perf_counter()
    with ExitStack() as stack:
        stack.enter_context(prefect_test_harness(server_startup_timeout=120))
        print(f"prefect test server up after {time.perf_counter() - t_start:.0f} s", flush=True)
        t = time.perf_counter()
        cluster = stack.enter_context(
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        )
        client = stack.enter_context(Client(cluster))
        client.run(_warm_imports)
        print(f"warm cluster: 2 workers started and imports done in {time.perf_counter() - t:.0f} s", flush=True)
        runs["warm 2"] = lambda: warm(cluster.scheduler_address)
        names = list(runs)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                t = time.perf_counter()
                out = runs[name]()
                times[name].append(time.perf_counter() - t)
                results[name] = out
                print(f"  round {r + 1} {name:10s} {times[name][-1]:7.1f} s", file=sys.stderr, flush=True)

    reference = results["plain"]
    for name in ("sequential", "dask 1", "dask 2", "warm 2"):
        for ours, theirs in zip(results[name], reference, strict=True):
            a = ours.per_fold.drop(columns="fit_seconds")
            b = theirs.per_fold.drop(columns="fit_seconds")
            if not a.equals(b):
                print(f"WARNING: {name} metrics differ from the plain run for {ours.name}")

    print(f"\n{'what':12s} {'median s':>9s} {'min s':>7s} {'max s':>7s} {'x sequential (per round, median)':>34s}")
    for name, values in times.items():
        ratios = [v / s for v, s in zip(values, times["sequential"], strict=True)]
        print(
            f"{name:12s} {statistics.median(values):9.1f} {min(values):7.1f} {max(values):7.1f} "
            f"{statistics.median(ratios):16.3f} [{min(ratios):.3f}, {max(ratios):.3f}]"
        )
    per_symbol = statistics.median(times["plain"]) / args.symbols
    print(f"\nper symbol (plain, median): {per_symbol:.1f} s")
    for name, workers in (("dask 1", 1), ("dask 2", 2), ("warm 2", 2)):
        overhead = statistics.median(times[name]) - args.symbols * per_symbol / workers
        print(f"{name}: median - symbols x per-symbol / workers = {overhead:.1f} s of fan-out overhead")
    print("metrics of every fanned-out run checked against the plain run (fit times aside)")


if __name__ == "__main__":
    main()
