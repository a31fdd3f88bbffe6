"""`mlflow models serve` of a champion under load: throughput, p50, p95 and errors at 1, 8 and 32 clients.

Starts the real scoring server (``mlflow models serve --env-manager local``, uvicorn) on 127.0.0.1 for
each ``--workers`` count, torch-thread setting and code variant (as is, and with ``--patch``: a folder
put first on the server's PYTHONPATH whose sitecustomize.py swaps in a candidate fix), all at once, and
drives them over HTTP with keep-alive clients (threads of this process), each request 200 real BTC/USDT
1h candles in, 24 forecast steps out. Interleaved rounds give every server a ``--seconds`` slice of
every client level in a rotating order, so load from other work hits all alike; requests are bounded
in number and time. Then it splits one request's cost in this process (JSON parsing, the pyfunc's schema check, the
bundle's feature computation, the network, the output frame) and prints a cProfile of the pyfunc path,
so the limit is named, not guessed.

Without ``--model-uri`` it builds a champion first in a temporary CANDLECAST_HOME: the demo config's
features and model, fitted for one epoch on real candles, logged as the project's pyfunc, registered
and aliased @champion (quality is irrelevant to serving cost).

    .venv/bin/python bench/serve_load.py [--model-uri models:/NAME@champion] [--workers 1 2]
        [--threads default 1] [--clients 1 8 32] [--seconds 5] [--rounds 3] [--patch DIR]

The clients share the server's 2 cores: the figures are what one machine does serving itself.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
MODEL_NAME = "candlecast-bench-serve"
JSON = "application/json"
MAX_REQUESTS = 50_000  # per level, a hard bound beside the time limit


def request_candles(rows: int = 200) -> pd.DataFrame:
    """200 real candles (or seeded synthetic ones when the shared data is absent)."""
    if DATA.exists():
        return pd.read_csv(DATA).tail(rows).reset_index(drop=True)
    from candlecast.devtools.synthetic import synthetic_candles

    return synthetic_candles("BTC/USDT", 1_704_067_200_000, rows, seed=1)


def build_champion(home: Path) -> str:
    """Fit the demo config's model briefly, log it as the project's pyfunc, register it @champion."""
    os.environ["CANDLECAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from dataclasses import asdict

    import mlflow

    from candlecast.config import RunConfig
    from candlecast.features.compute import series_features
    from candlecast.features.windows import SeriesArrays
    from candlecast.forecasting.calibration import Calibration
    from candlecast.forecasting.neural import neural_forecaster
    from candlecast.forecasting.splits import make_plan
    from candlecast.registry import aliases, tracking
    from candlecast.registry.bundle import BundleSpec, ModelBundle
    from candlecast.settings import Settings

    cfg = RunConfig.from_yaml(ROOT / "configs" / "demo.yaml")
    candles = pd.read_csv(DATA).tail(4000) if DATA.exists() else request_candles(4000)
    series = SeriesArrays.from_frame("BTC/USDT", series_features(candles, cfg.features, "1h"), cfg.features.horizon)
    series.mark_windows(cfg.features.lookback, 3_600_000)
    fold = make_plan([series], cfg).folds[0]
    hparams = {"hidden_size": 64, "num_layers": 2, "dropout": 0.1, "lr": 1e-3, "weight_decay": 1e-4}
    forecaster = neural_forecaster(cfg, "lstm", hparams, max_epochs=1)
    forecaster.fit([series], fold)
    rows = series.sample_rows(fold.cal)
    point, bounds = forecaster.forecast(series, rows)
    calibration = Calibration.fit(series.targets[rows], point, bounds, cfg.predict.interval)
    result = forecaster.result
    spec = BundleSpec(
        model_name="lstm",
        hparams=hparams,
        features=cfg.features.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(result.scaler),
        columns=series.columns,
        quantiles=forecaster.quantiles,
        calibration=asdict(calibration),
    )
    settings = Settings()
    client = tracking.client(settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(experiment_id=tracking.experiment_id(settings, "bench-serve"))
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        saved = ModelBundle(spec, result.model).save(Path(tmp) / "bundle")
        uri = aliases.log_bundle(saved, candles.tail(spec.min_candles).reset_index(drop=True), "BTC/USDT")
    version = aliases.register(client, MODEL_NAME, uri, run.info.run_id, {})
    client.set_registered_model_alias(MODEL_NAME, "champion", version)
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri  # the scoring server resolves models:/ through it
    return f"models:/{MODEL_NAME}@champion"


@contextmanager
def scoring_server(model_uri: str, workers: int, threads: int | None, port: int, patch: Path | None = None):
    """The real `mlflow models serve` on 127.0.0.1, stopped (its whole process group) on exit.

    ``patch``: a folder put first on the server's PYTHONPATH (e.g. a sitecustomize.py that swaps in a
    candidate fix), so a fix is measured in the real server beside the unpatched one.
    """
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if patch is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(patch), env.get("PYTHONPATH")]))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    cmd += ["-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(port, proc, log)
        yield proc
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL it: uvicorn's supervisor may respawn workers."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _wait_ready(port: int, proc: subprocess.Popen, log, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the scoring server exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no /ping answer on port {port} in {timeout_s} s")


def drive(
    port: int, body: bytes, clients: int, seconds: float, warmup_s: float = 1.0
) -> tuple[list[float], int, float]:
    """``clients`` keep-alive connections sending back to back; latencies of requests started after warm-up."""
    start = time.perf_counter()
    measure_from, stop = start + warmup_s, start + warmup_s + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], 0
        while (now := time.perf_counter()) < stop and len(mine) < MAX_REQUESTS:
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                ok = resp.status == 200 and len(json.loads(payload)["predictions"]) == 24
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if now >= measure_from:
                if ok:
                    mine.append(time.perf_counter() - now)
                else:
                    bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - measure_from


def summarize(samples: list[tuple[list[float], int, float]]) -> dict[str, float]:
    """Throughput over all slices of one (server, clients) cell; percentiles over all their latencies."""
    latencies = [x for lat, _, _ in samples for x in lat]
    elapsed = sum(e for _, _, e in samples)
    q = np.percentile(latencies, [50, 95]) * 1000 if latencies else [float("nan")] * 2
    errors = sum(n for _, n, _ in samples)
    return {"rps": len(latencies) / elapsed, "p50_ms": q[0], "p95_ms": q[1], "ok": len(latencies), "errors": errors}


def payload(candles: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": candles.to_dict(orient="split", index=False)}).encode()


def _best_ms(fn, reps: int = 30) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def cost_split(model_uri: str, candles: pd.DataFrame, body: bytes, threads: int | None) -> None:
    """Median ms of each stage of one request, in this process, and the cProfile of the server's path."""
    import mlflow
    import torch
    from mlflow.pyfunc import scoring_server as srv

    if threads:
        torch.set_num_threads(threads)
    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    bundle = model.unwrap_python_model().forecaster
    text = body.decode()
    parsed = srv._parse_json_data(text, model.metadata, schema).data
    out = model.predict(parsed)
    stages = {
        "whole server path (scoring_server.invocations)": lambda: srv.invocations(text, JSON, model, schema),
        "  JSON body -> DataFrame with schema": lambda: srv._parse_json_data(text, model.metadata, schema),
        "  pyfunc predict (schema check + bundle)": lambda: model.predict(parsed),
        "    bundle.predict alone": lambda: bundle.predict(candles),
        "      of which compute_features": lambda: _features_only(bundle, candles),
        "        of which the exogenous files (cached)": lambda: _exogenous_only(bundle),
        "      of which the network forward (1 window)": lambda: _forward_only(bundle),
        "  predictions -> JSON": lambda: srv.predictions_to_json(out, io.StringIO()),
    }
    print(f"\ncost of one request's stages in-process (median ms of 30, torch threads {torch.get_num_threads()}):")
    for name, fn in stages.items():
        print(f"  {name:50s} {_best_ms(fn):7.2f}")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(50):
        srv.invocations(text, JSON, model, schema)
    prof.disable()
    report = io.StringIO()
    pstats.Stats(prof, stream=report).sort_stats("cumulative").print_stats(30)
    print("\ncProfile of 50 requests through scoring_server.invocations, top 30 by cumulative time:")
    text = report.getvalue().replace(f"{ROOT}/", "")  # repo-relative paths: the output names no machine
    print("\n".join(line for line in text.splitlines() if line.strip())[:7000])


def _features_only(bundle, candles: pd.DataFrame) -> None:
    """The bundle's feature step: its exogenous files (cached per process, as predict reads them), then the features."""
    from candlecast.features.compute import compute_features

    spec = bundle.spec
    compute_features(
        candles.sort_values("timestamp").tail(spec.min_candles + 1),
        spec.feature_config,
        spec.timeframe,
        exogenous=_exogenous_only(bundle),
    )


def _exogenous_only(bundle) -> list[pd.DataFrame]:
    from candlecast.features.exogenous import cached_exogenous

    return [cached_exogenous(source.path, source.columns) for source in bundle.spec.feature_config.exogenous]


def _forward_only(bundle) -> None:
    """One window through the bundle's network (onnxruntime for an exported bundle, torch for an old one)."""
    import numpy as np

    fc = bundle.spec.feature_config
    bundle.network(np.zeros((1, fc.lookback, len(bundle.spec.columns)), dtype="float32"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def race(args: argparse.Namespace, body: bytes, servers: dict[tuple, int]) -> dict[tuple, list]:
    """Every server gets a slice of every client level in each round, in a rotating order: load drifts hit all."""
    samples: dict[tuple, list] = {}
    keys = list(servers)
    for r in range(args.rounds):
        for clients in args.clients:
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                samples.setdefault((*key, clients), []).append(drive(servers[key], body, clients, args.seconds))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return samples


def print_table(samples: dict[tuple, list]) -> None:
    print(
        f"{'code':>7s} {'workers':>7s} {'threads':>7s} {'clients':>7s} {'req/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} "
        f"{'ok':>6s} {'errors':>6s}"
    )
    for (label, workers, threads, clients), cell in sorted(
        samples.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3], kv[0][0])
    ):
        r = summarize(cell)
        print(
            f"{label:>7s} {workers:7d} {threads:>7s} {clients:7d} {r['rps']:7.1f} {r['p50_ms']:7.1f} "
            f"{r['p95_ms']:7.1f} {r['ok']:6d} {r['errors']:6d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", help="serve this model (default: build a champion in a temp home)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--threads", nargs="+", default=["default", "1"], help="torch threads per server worker ('default': cores)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per slice (after a 1 s warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of slices")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--patch", type=Path, help="also serve with this folder first on PYTHONPATH (a candidate fix)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops its servers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.model_uri is None:
        t0 = time.perf_counter()
        args.model_uri = build_champion(Path(tempfile.mkdtemp(prefix="candlecast-serve-")))
        home = os.environ["CANDLECAST_HOME"]
        print(f"built {args.model_uri} in {time.perf_counter() - t0:.1f} s (CANDLECAST_HOME={home})")
    candles = request_candles()
    body = payload(candles)
    print(
        f"request: {len(candles)} candles, {len(body)} bytes of JSON; {args.seconds:.0f} s per level; "
        f"{os.cpu_count()} cores shared by server and clients"
    )
    variants = {"as is": None, **({"patched": args.patch} if args.patch else {})}
    with ExitStack() as stack:  # all servers up at once, idle but for the one being driven
        servers = {}
        for workers in args.workers:
            for threads in args.threads:
                for label, patch in variants.items():
                    n_threads = None if threads == "default" else int(threads)
                    port = free_port()
                    stack.enter_context(scoring_server(args.model_uri, workers, n_threads, port, patch))
                    servers[(label, workers, threads)] = port
        samples = race(args, body, servers)
    print_table(samples)
    if not args.no_profile:
        cost_split(args.model_uri, candles, body, threads=1)


if __name__ == "__main__":
    main()
