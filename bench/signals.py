"""`candlecast signals` for many symbols from the registry's champion, the model load included.

Setup (not timed): the pipeline flow ingests two emulated series, trains a one-trial, one-epoch LSTM
and registers it (forced to @champion if the gate refuses it: its quality does not matter here); then
``--symbols`` synthetic hourly series go into the candle store. Timed: ``run_signals`` in process
(load models:/<name>@champion once, forecast every symbol, size, portfolio view, store decisions),
and the whole `candlecast signals` command in a fresh process (Python start-up and imports too).
The target is under 10 s for 100 symbols. Figures are printed; nothing is asserted.

    .venv/bin/python bench/signals.py [--symbols 100] [--reuse STATE_FOLDER_OF_AN_EARLIER_RUN]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

NAME = "bench-signals"
BASE = {
    "name": "bench-signals",
    "data": {"history_days": 120},
    "features": {"lookback": 48, "horizon": 24},
    "sweep": {"n_trials": 1, "max_epochs": 1},
    "train": {"max_epochs": 1},
    "backtest": {"baselines": ["naive"]},
    "promotion": {"model_name": NAME},
}


def _champion(cfg) -> None:
    from candlecast.flows.pipeline import pipeline
    from candlecast.registry import tracking
    from candlecast.settings import Settings

    result = pipeline(cfg)
    if not result["promotion"].promoted:
        tracking.client(Settings()).set_registered_model_alias(NAME, "champion", result["promotion"].version)


def _store_symbols(n: int) -> list[str]:
    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    store = CandleStore(Settings().candles_dir)
    symbols = [f"S{i:03d}/USDT" for i in range(n)]
    start = int(time.time() // 3600 * 3600 * 1000) - 800 * 3_600_000
    for symbol in symbols:
        store.upsert(SeriesKey("binance", symbol, "1h"), synthetic_candles(symbol, start, 800, seed=3))
    return symbols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--reuse", type=Path, help="a state folder an earlier run of this bench set up")
    args = parser.parse_args()
    home = args.reuse or Path(tempfile.mkdtemp(prefix="candlecast-bench-signals-"))
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ["PREFECT_HOME"] = str(home / "prefect")  # the setup's ephemeral Prefect server, thrown away after
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from candlecast.config import RunConfig
    from candlecast.settings import Settings
    from candlecast.trading.config import TradingConfig
    from candlecast.trading.signals import run_signals

    started = time.perf_counter()
    if args.reuse is None:
        _champion(RunConfig.model_validate(BASE))
    symbols = _store_symbols(args.symbols)
    print(
        f"setup (pipeline: ingest, 1-trial sweep, register; {args.symbols} stored series): "
        f"{time.perf_counter() - started:.0f} s"
    )

    many = RunConfig.model_validate(BASE | {"data": {"symbols": symbols}})
    start = time.perf_counter()
    outcome = run_signals(Settings(), many, TradingConfig(), source="champion", store=True)
    total = time.perf_counter() - start
    assert len(outcome.decisions) == args.symbols
    print(
        f"run_signals, {args.symbols} symbols: {total:.2f} s in process "
        f"(champion load {outcome.load_seconds:.2f} s, forecasts + policy + portfolio + store "
        f"{outcome.decide_seconds:.2f} s)"
    )

    config = home / "many.yaml"
    config.write_text(yaml.safe_dump(many.model_dump(mode="json")))
    _time_cli(config, "champion", args.symbols)
    from candlecast.registry.prediction import predict_champion

    predict_champion(Settings(), many)  # what the scheduled predict flow leaves for the signals flow
    _time_cli(config, "store", args.symbols)


def _time_cli(config: Path, source: str, n: int) -> None:
    """The whole command in a fresh process: wall time, and CPU time (what an idle machine would need)."""
    cli = Path(sys.executable).with_name("candlecast")
    command = [str(cli), "signals", "--config", str(config), "--json", "--source", source]
    start, cpu = time.perf_counter(), os.times()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, os.times()
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        raise SystemExit(proc.returncode)
    used = (after.children_user - cpu.children_user) + (after.children_system - cpu.children_system)
    print(
        f"`candlecast signals --json --source {source}`, {n} symbols, fresh process: {wall:.2f} s wall, "
        f"{used:.2f} s CPU (target < 10 s)"
    )


if __name__ == "__main__":
    main()
