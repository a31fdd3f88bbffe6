"""What live scoring adds to each candle of the loop: the live figure, and a volatility champion's baseline.

    nice -n 10 .venv/bin/python bench/live_scoring.py            # real BTC/USDT 1h candles from ../shared/data

In a temporary state folder: a registered version (a real MLflow store; its run carries what a trained
run logs for the gate) with stored forecasts of the last --forecasts candles, then the candles arrive
one at a time and ``Monitor.check`` runs after each, as the loop runs it. Per target, in the same
checks: the whole check, the time inside the figure's redraws (every 24 scorings, the default) and, for
volatility, inside the baseline (one GARCH refit per new cutoff); then one GARCH refit timed alone. The
check's floor is reading the series' stored forecasts (one parquet file per cutoff), which neither adds to.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HOUR = 3_600_000
H = 6
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"


def _register(settings, name: str, target: str) -> str:
    from candlecast.config import RunConfig
    from candlecast.registry import tracking

    client = tracking.client(settings)
    run = client.create_run(client.create_experiment(name)).info.run_id
    for key, value in {"rmse_ratio": 0.95, "qlike_ratio": 0.9, "best_baseline_index": 1.0}.items():
        client.log_metric(run, key, value)
    cfg = RunConfig.model_validate({"target": target, "backtest": {"risk_baselines": ["ewma", "garch"]}})
    client.log_dict(run, cfg.model_dump(mode="json"), "config/run_config.json")
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run}/model", run_id=run).version
    client.set_registered_model_alias(name, "champion", version)
    return run


def _forecast(target: str, cutoff: int, rng: np.random.Generator) -> pd.DataFrame:
    if target == "volatility":
        variance = {"horizon": H, "timestamp": cutoff + H * HOUR, "forecast_variance": 1e-4}
        return pd.DataFrame({"cutoff": [cutoff], **variance})
    step = np.arange(1, H + 1)
    return pd.DataFrame({
        "cutoff": cutoff, "step": step, "timestamp": cutoff + step * HOUR,
        "forecast_log_return": rng.normal(0, 1e-3, H),
    })  # fmt: skip


def _timed(module, attr: str, into: list[float]) -> None:
    """Wrap ``module.attr`` so each call's seconds are appended to ``into``."""
    inner = getattr(module, attr)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(module, attr, wrapper)


def bench(target: str, candles: pd.DataFrame, forecasts: int) -> dict[str, list[float]]:
    """Seconds per candle of Monitor.check for one target, and of the figure's and the baseline's calls in it."""
    import candlecast.live.monitor as monitor_module
    from candlecast.config import RunConfig
    from candlecast.data.candle_store import CandleStore
    from candlecast.forecasting.served import store_kind
    from candlecast.live.monitor import Monitor
    from candlecast.registry.prediction import with_lineage
    from candlecast.registry.prediction_store import prediction_store
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    os.environ["CANDLECAST_HOME"] = tempfile.mkdtemp(prefix="live-scoring-")
    settings, series, name = Settings(), SeriesKey("binance", "BTC/USDT", "1h"), f"bench-{target}"
    run = _register(settings, name, target)
    cfg = RunConfig.model_validate({
        "target": target, "data": {"symbols": [series.symbol]}, "features": {"horizon": H},
        "promotion": {"model_name": name}, "live": {"max_model_age_days": None},
    })  # fmt: skip
    store, rng = prediction_store(settings, kind=store_kind(target)), np.random.default_rng(0)
    for c in candles["timestamp"].astype("int64").tolist()[-forecasts:]:
        store.write(series, with_lineage(_forecast(target, c, rng), series, name, "1", run, "bench"))
    arriving = forecasts // 2
    history = CandleStore(settings.candles_dir)
    history.upsert(series, candles.iloc[:-arriving])
    monitor = Monitor(settings, cfg, lambda *a: None)
    monitor.check(series)  # warm: imports, the first baseline fit and figure
    spent: dict[str, list[float]] = {"check": [], "figure": [], "baseline": []}
    _timed(monitor_module, "plot_live", spent["figure"])
    _timed(monitor_module, "baseline_variances", spent["baseline"])
    for i in range(arriving, 0, -1):
        history.upsert(series, candles.iloc[len(candles) - i : len(candles) - i + 1])  # the next candle closes
        start = time.perf_counter()
        monitor.check(series)
        spent["check"].append(time.perf_counter() - start)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecasts", type=int, default=200, help="stored forecasts; the last half arrive live")
    args = parser.parse_args()
    began = time.perf_counter()
    candles = pd.read_csv(DATA).tail(3000).reset_index(drop=True)
    print(f"load average {os.getloadavg()[0]:.2f}; {len(candles)} real candles, {args.forecasts} stored forecasts")
    for target in ("returns", "volatility"):
        spent = bench(target, candles, args.forecasts)
        n, figure, base = len(spent["check"]), spent["figure"], spent["baseline"]
        line = (
            f"{target:10s} Monitor.check: median {1e3 * np.median(spent['check']):.0f} ms per candle ({n}); "
            f"figure {len(figure)} redraws, {1e3 * np.mean(figure):.0f} ms each, "
            f"{1e3 * sum(figure) / n:.1f} ms per candle"
        )
        if base:
            line += f"; baseline {1e3 * np.median(base):.0f} ms per candle (median)"
        print(line)
    from candlecast.live.baseline import baseline_variances
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    series, start = SeriesKey("binance", "BTC/USDT", "1h"), time.perf_counter()
    for c in candles["timestamp"].astype("int64").tolist()[-10:]:  # an empty cache each time: a refit each
        baseline_variances(Settings(home=Path(tempfile.mkdtemp())), series, "garch", H, HOUR, candles, [c])
    took = 1e2 * (time.perf_counter() - start)
    print(f"one GARCH refit and forecast at a new cutoff on {len(candles)} candles: {took:.0f} ms")
    print(f"wall {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
