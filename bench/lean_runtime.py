"""The lean runtime against the torch path: a fresh process's first forecast, 100 series in one call, signals.

Setup (not timed): a two-layer LSTM (hidden 32, lookback 48, horizon 24: the demo champion's shape)
fitted for one epoch on synthetic candles, registered twice in a local MLflow store: ``bench-lean``
as registration now ships it (spec, weights and network.onnx) and ``bench-torch`` as it shipped
before (spec and weights only, so it loads through torch and Lightning, with the one-line note);
both @champion. 100 synthetic hourly series go into the candle store.

Timed, each path in a fresh process (Python start-up and imports included), the median of
``--repeats`` runs, wall and CPU seconds (CPU is what an idle machine would need: on a shared machine
the wall time waits on other processes too):
  bundle dir   load_forecaster(<bundle directory>) and one forecast: the runtime's own loader
  registry     load_version(reader, name, @champion's version) and one forecast: predict and signals
  pyfunc       mlflow.pyfunc.load_model("models:/<name>@champion") and one forecast: the served model
               (and, lean only, with MLflow's documented ``suppress_warnings=True``: no requirements scan)
  signals      `candlecast signals --json --no-store` for 100 symbols (load, forecasts, policy, portfolio)
and, for the choice of engine, a fresh process that imports torch against one that imports onnxruntime;
and in process after the load: predict_many over 100 series (the median of 20 calls).

Bytecode: each command first runs once untimed with Python's bytecode cache on, as any installed
environment has it (pip compiles on install; ``make venv`` installs with --no-compile and a shell with
PYTHONDONTWRITEBYTECODE=1 never writes it, so every import there compiles from source: several seconds
per process). ``--no-bytecode-cache`` times that condition instead (an empty PYTHONPYCACHEPREFIX).
``--before DIR`` times each fresh-process row also with another source tree of candlecast first on
PYTHONPATH (``git archive main | tar -x -C DIR``), side by side with this one.

    .venv/bin/python bench/lean_runtime.py [--repeats 3] [--before DIR] [--lean-only] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import yaml

NEW, OLD = "bench-lean", "bench-torch"
HOUR = 3_600_000
N_SERIES = 100
FEATURES = {"lookback": 48, "horizon": 24}
HPARAMS = {"hidden_size": 32, "num_layers": 2}

FIRST_FORECAST = r"""
import sys, time
started = time.perf_counter()
import pandas as pd
candles = pd.read_parquet(sys.argv[3])
how, target = sys.argv[1], sys.argv[2]
if how == "bundle":
    from candlecast.registry.loading import load_forecaster
    model = load_forecaster(target)
elif how == "registry":
    from candlecast.registry.loading import load_version
    from candlecast.settings import Settings
    try:  # what predict and signals use: sqlite3 on a local registry
        from candlecast.registry.local_registry import alias_version, reader
    except ImportError:  # a tree from before it (--before): MLflow's client
        from candlecast.registry.aliases import alias_version
        from candlecast.registry.tracking import client as reader
    client = reader(Settings())
    model = load_version(client, target, alias_version(client, target, "champion"))
else:
    import mlflow
    mlflow.set_tracking_uri(sys.argv[4])
    model = mlflow.pyfunc.load_model(f"models:/{target}@champion", suppress_warnings=how == "pyfunc-quiet")
loaded = time.perf_counter()
out = model.predict(candles)
assert len(out) == 24
print(f"{loaded - started:.3f} {time.perf_counter() - loaded:.4f} {int('torch' in sys.modules)}")
"""

#: Where mlflow.pyfunc.load_model's time goes, step by step in one fresh process (MLflow's own steps, then ours).
PYFUNC_SPLIT = r"""
import sys, time, tempfile, types
laps, last = [], time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter(); laps.append(f"{name} {now - last:.3f}"); last = now
import pandas; lap("import pandas")
import mlflow.pyfunc; lap("import mlflow.pyfunc")
from mlflow.tracking import MlflowClient
from mlflow.tracking.artifact_utils import _download_artifact_from_uri
from mlflow.pyfunc import _get_pip_requirements_from_model_path
from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches
client = MlflowClient(sys.argv[1]); lap("MlflowClient's SQLAlchemy store start-up")
version = client.get_model_version_by_alias(sys.argv[2], "champion").version; lap("the alias")
local = _download_artifact_from_uri(client.get_model_version_download_uri(sys.argv[2], version), tempfile.mkdtemp())
lap("copy the model folder")
warn_dependency_requirement_mismatches(_get_pip_requirements_from_model_path(local)); lap("requirements scan")
import candlecast.registry.pyfunc_model as ours; lap("candlecast's pyfunc module")
ours.BundlePyfunc().load_context(types.SimpleNamespace(artifacts={"bundle": local + "/artifacts/bundle"}))
lap("load_context (the lean runtime)")
print(" | ".join(laps))
"""


def _setup(home: Path) -> tuple[dict[str, Path], Path, list[str]]:
    """Register both champions and store the series; the bundle directories, one series' candles, the symbols."""
    import mlflow
    import pandas as pd

    from candlecast.config import FeatureConfig, TrainConfig
    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.calibration import Calibration
    from candlecast.forecasting.neural import NeuralForecaster
    from candlecast.forecasting.splits import walk_forward
    from candlecast.registry import aliases, tracking
    from candlecast.registry.bundle import BundleSpec, ModelBundle
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    fc = FeatureConfig(**FEATURES)
    start = int(time.time() // 3600 * 3600 * 1000) - 1500 * HOUR
    train = synthetic_candles("BTC/USDT", start, 1500, seed=3)
    s = SeriesArrays.from_frame("btc", series_features(train, fc, "1h"), fc.horizon)
    s.mark_windows(fc.lookback, HOUR)
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 72, 1, 200, 200, 200)[0]
    model = NeuralForecaster("lstm", HPARAMS, fc.lookback, fc.horizon, TrainConfig(max_epochs=1), [0.1, 0.9])
    model.fit([s.until(fold.val.end)], fold)
    rows = s.sample_rows(fold.val)
    point, bounds = model.forecast(s.inputs_only(), rows)
    spec = BundleSpec(
        model_name="lstm",
        hparams=HPARAMS,
        features=fc.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(model.result.scaler),
        columns=s.columns,
        quantiles=[0.1, 0.9],
        calibration=asdict(Calibration.fit(s.targets[rows], point, bounds, 0.8)),
        train_end=int(s.timestamps[-1]),
    )
    example = train.tail(spec.min_candles + 1).reset_index(drop=True)
    settings = Settings()
    client = tracking.client(settings)
    experiment = tracking.experiment_id(settings, "bench-lean-runtime")  # artifacts under the state folder
    dirs = {}
    for name in (NEW, OLD):
        directory = ModelBundle(spec, model.result.model).save(home / name / "bundle")
        with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
            if name == NEW:
                uri = aliases.log_bundle(directory, example, "BTC/USDT")  # export, check, log: registration today
            else:
                uri = _log_without_export(directory, example)
        version = aliases.register(client, name, uri, run.info.run_id, {})
        client.set_registered_model_alias(name, aliases.CHAMPION, version)
        dirs[name] = directory
    store = CandleStore(Settings().candles_dir)
    symbols = [f"S{i:03d}/USDT" for i in range(N_SERIES)]
    latest = int(time.time() // 3600 * 3600 * 1000) - 400 * HOUR
    for symbol in symbols:
        store.upsert(SeriesKey("binance", symbol, "1h"), synthetic_candles(symbol, latest, 400, seed=5))
    one = home / "one.parquet"
    pd.DataFrame(example).to_parquet(one)
    return dirs, one, symbols


def _log_without_export(directory: Path, example) -> str:
    """The pyfunc as registration logged it before the export: spec and weights only."""
    import mlflow

    from candlecast.registry.aliases import _PYFUNC_ENTRY

    info = mlflow.pyfunc.log_model(
        name="model", python_model=str(_PYFUNC_ENTRY), artifacts={"bundle": str(directory)}, input_example=example
    )
    return info.model_uri


def _env(tree: str | None, cold: Path | None, warm_up: bool) -> dict[str, str]:
    """A child's environment: ``tree`` first on PYTHONPATH; bytecode cached (``warm_up`` writes it) or ``cold``."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    if cold is not None:  # an empty cache folder and no writes: every import compiles from source
        env |= {"PYTHONPYCACHEPREFIX": str(cold), "PYTHONDONTWRITEBYTECODE": "1"}
    elif warm_up:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _fresh(
    args: list[str], repeats: int, tree: str | None = None, cold: Path | None = None
) -> tuple[float, float, str]:
    """Median wall and CPU seconds of a fresh process running ``args``, and the last line it printed.

    An untimed first run writes the bytecode cache of everything the command imports (unless ``cold``).
    """
    if cold is None:
        subprocess.run(args, capture_output=True, env=_env(tree, None, warm_up=True), cwd=tree, check=True)
    walls, cpus, last = [], [], ""
    for _ in range(repeats):
        before, start = os.times(), time.perf_counter()
        # run in the tree: a `python -c` child puts its working folder before PYTHONPATH
        proc = subprocess.run(args, capture_output=True, text=True, env=_env(tree, cold, warm_up=False), cwd=tree)
        wall, after = time.perf_counter() - start, os.times()
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        walls.append(wall)
        cpus.append(after.children_user - before.children_user + after.children_system - before.children_system)
        last = (proc.stdout.strip().splitlines() or [""])[-1]
    return statistics.median(walls), statistics.median(cpus), last


def _many(directory: Path, symbols: list[str]) -> float:
    """predict_many over every stored series after the load: median seconds of 20 calls."""
    import pandas as pd

    from candlecast.data.candle_store import CandleStore
    from candlecast.registry.loading import load_forecaster
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    model = load_forecaster(directory)
    store = CandleStore(Settings().candles_dir)
    need = model.spec.min_candles + 1
    frame = pd.concat(
        [store.read(SeriesKey("binance", s, "1h")).tail(need).assign(symbol=s) for s in symbols], ignore_index=True
    )
    times = []
    for _ in range(20):
        start = time.perf_counter()
        out = model.predict_many(frame)
        times.append(time.perf_counter() - start)
    assert out["symbol"].nunique() == len(symbols)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", help="another candlecast source tree to time side by side (its root folder)")
    parser.add_argument("--lean-only", action="store_true", help="skip the torch path's rows (old bundles)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="time imports compiled from source")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="candlecast-bench-lean-"))
    os.environ["CANDLECAST_HOME"] = str(home / "state")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    started = time.perf_counter()
    dirs, one, symbols = _setup(home)
    from candlecast.settings import Settings

    uri = Settings().tracking_uri
    cold = home / "no-bytecode" if args.no_bytecode_cache else None
    trees: dict[str, str | None] = {"this tree": None} | (
        {"before": str(Path(args.before).resolve())} if args.before else {}
    )
    bytecode = "compiled from source (no cache)" if cold else "cached (one untimed run per command wrote it)"
    print(f"setup (fit, register {NEW} and {OLD}, store {N_SERIES} series): {time.perf_counter() - started:.0f} s")
    print(f"bytecode: {bytecode}; trees: {', '.join(f'{k} {v or Path.cwd()}' for k, v in trees.items())}")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min load average) on {os.cpu_count()} cores at the start of the timing")

    python, cli = sys.executable, str(Path(sys.executable).with_name("candlecast"))
    paths = ((NEW, "lean"),) if args.lean_only else ((OLD, "torch"), (NEW, "lean"))
    commands: list[tuple[str, str, list[str]]] = []  # (measure, path, fresh-process command)
    for engine in ("onnxruntime",) if args.lean_only else ("torch", "onnxruntime"):
        commands.append((f"import {engine}", "", [python, "-c", f"import {engine}"]))
    hows = (
        ("bundle dir", "bundle"),
        ("registry", "registry"),
        ("pyfunc", "pyfunc"),
        ("pyfunc, no req. scan", "pyfunc-quiet"),
    )
    for label, how in hows:
        for name, path in paths:
            if how == "pyfunc-quiet" and path == "torch":
                continue
            target = str(dirs[name]) if how == "bundle" else name
            commands.append(
                (f"first forecast, {label}", path, [python, "-c", FIRST_FORECAST, how, target, str(one), uri])
            )
    for name, path in paths:
        config = home / f"{name}.yaml"
        data = {"symbols": symbols, "history_days": 20}
        cfg = {"data": data, "features": FEATURES, "promotion": {"model_name": name}}
        config.write_text(yaml.safe_dump(cfg))
        commands.append(
            (
                f"`candlecast signals`, {N_SERIES} sym.",
                path,
                [cli, "signals", "--config", str(config), "--json", "--no-store"],
            )
        )

    rows = []
    for measure, path, command in commands:
        timed = []
        for tree in trees.values():
            wall, cpu, last = _fresh(command, args.repeats, tree, cold)
            timed.append(f"{wall:>7.3f} {cpu:>6.2f}")
            if measure.startswith("first") and tree is None:  # this tree's last run: imports and load, forecast, torch?
                load, forecast, torch = last.split()
                detail = f"load {load} s, forecast {float(forecast) * 1000:.1f} ms, torch imported: {torch == '1'}"
            elif tree is None:
                detail = "fresh process"
        rows.append(f"{measure:<36} {path:<6} {'  '.join(timed)}  {detail}")
    for name, path in paths:
        many = _many(dirs[name], symbols)
        rows.append(
            f"{f'predict_many, {N_SERIES} series':<36} {path:<6} {many:>7.3f}         in process, after the load"
        )

    split = subprocess.run(
        [python, "-c", PYFUNC_SPLIT, uri, NEW], capture_output=True, text=True, env=_env(None, cold, False)
    )
    rows.append(f"pyfunc load, step by step (s, one run): {split.stdout.strip() or split.stderr[-500:]}")
    header = "  ".join(f"{k[:14]:>14}" for k in trees)
    units = "  ".join(f"{'wall s':>7} {'CPU s':>6}" for _ in trees)
    print(f"\n{'':<43} {header}")
    print(f"{'measure':<36} {'path':<6} {units}  (medians of {args.repeats})")
    print("\n".join(rows))
    print(json.dumps({"load_average_end": os.getloadavg()[0]}))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
