"""Wall time and peak memory of each pipeline stage on the demo config (or --config FILE).

Runs the core stage functions in order, in one process, on a fresh state folder, outside Prefect
(the flow adds a fixed ~1 s per task run plus the local server's start-up, printed separately).
Peak memory is the process's max RSS after each stage (it only grows), so read the increments.

    .venv/bin/python bench/demo_stages.py [--config configs/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="candlecast-bench-"))
    os.environ["CANDLECAST_HOME"] = str(home)
    rows: list[tuple[str, float, float]] = []
    t0 = time.perf_counter()

    def stage(name: str, fn, *a):
        start = time.perf_counter()
        out = fn(*a)
        rows.append((name, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        return out

    def imports():
        import candlecast.expectations.runner  # noqa: F401  (great_expectations)
        import candlecast.registry.evaluation  # noqa: F401  (torch, lightning, mlflow, optuna)

    stage("imports", imports)
    from candlecast.config import RunConfig
    from candlecast.data import ingest
    from candlecast.expectations.runner import validate_candles
    from candlecast.features.compute import build_feature_file
    from candlecast.features.windows import data_lineage, load_series
    from candlecast.registry import tracking
    from candlecast.registry.evaluation import evaluate_best
    from candlecast.registry.prediction import predict_champion
    from candlecast.registry.promotion import promote
    from candlecast.registry.sweep import run_sweep
    from candlecast.settings import Settings
    from candlecast.tasks.endpoint import exchange_endpoint

    cfg, settings = RunConfig.from_yaml(args.config), Settings()
    import pandas as pd

    def ingest_all():
        with exchange_endpoint(cfg) as endpoint:
            for s in cfg.series:
                staged = ingest.fetch_batch(settings, cfg, s, endpoint)
                report = validate_candles(pd.read_parquet(staged), s.timeframe, str(s))
                assert report.success, report.summary()
                ingest.store_batch(settings, s, staged)

    stage("ingest + validate + store", ingest_all)
    paths = stage("features", lambda: {s.slug: build_feature_file(settings, cfg, s) for s in cfg.series})
    series = load_series(paths, cfg.features.lookback, cfg.features.horizon, cfg.data.timeframe)
    run_id = tracking.start_parent_run(settings, cfg.experiment_name, "bench", data_lineage(paths))
    sweep = stage("sweep", run_sweep, settings, cfg, paths, run_id)
    evaluation = stage("evaluate (test folds, refit, log model)", evaluate_best, settings, cfg, series, sweep)
    client = tracking.client(settings)
    stage(
        "promote",
        promote,
        client,
        settings,
        cfg.promotion,
        evaluation.model_uri,
        evaluation.run_id,
        evaluation.metrics,
    )
    if client.get_registered_model(cfg.promotion.model_name).aliases.get("champion") is None:
        client.set_registered_model_alias(cfg.promotion.model_name, "champion", "1")  # time predict anyway
    stage("predict", predict_champion, settings, cfg)
    total = time.perf_counter() - t0

    print(f"config {args.config}: {len(cfg.series)} series, {cfg.sweep.n_trials} trials, state in {home}")
    print(f"{'stage':40s} {'wall s':>8s} {'peak RSS MiB':>13s}")
    for name, secs, rss in rows:
        print(f"{name:40s} {secs:8.1f} {rss:13.0f}")
    print(f"{'total':40s} {total:8.1f}")
    m = evaluation.metrics
    folds = len([k for k in m if k.startswith("fold") and k.endswith(".rmse_ratio")])
    print(f"  of which the refit to the cutoff: {m['refit_seconds']:.1f} s ({m['refit_epochs']:.0f} epochs)")
    print(f"  ratio refit / evaluation fit of the model: {m['refit_seconds'] / (m['test_fit_seconds'] / folds):.2f}")
    print(f"test rmse_ratio vs naive: {m['rmse_ratio']:.4f} (DM p {m['dm_pvalue']:.3f})")
    print(f"test interval coverage: {m['test_coverage']:.3f} (nominal {cfg.predict.interval})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
