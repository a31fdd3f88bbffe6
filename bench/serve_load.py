"""`candlecast serve-model` beside `mlflow models serve`, one champion, one run: latency, throughput, CPU, errors.

Starts both servers on 127.0.0.1 for each ``--workers`` count (one inference thread per worker for
both: OMP_NUM_THREADS=1; serve-model's onnxruntime is at one thread anyway) and drives them over HTTP
with keep-alive clients (threads of this process), every request 200 real BTC/USDT 1h candles as
MLflow's ``dataframe_split`` JSON in, 24 forecast steps out; the same body goes to both. Interleaved
rounds give every server a ``--seconds`` slice of every client level in a rotating order, so load from
other work hits all alike. Per server it prints one client's p50, 32 clients' req/s and p95, requests
per CPU second of the server's processes, the errors, and the latency of one request of 100 series
(20,000 candles, 2,400 forecast rows) as JSON and, to serve-model only, as an Arrow IPC stream (the same
candles; MLflow's server takes no Arrow); then the load average and the wall time, and a cProfile of
serve-model's request path in this process, so what is left of a request is named, not guessed.

Without ``--model-uri`` it builds a champion first in a temporary CANDLECAST_HOME: the demo config's
features and model, fitted for one epoch on real candles, logged as the project's pyfunc, registered
and aliased @champion (quality is irrelevant to serving cost).

    nice -n 10 .venv/bin/python bench/serve_load.py [--model-uri models:/NAME@champion] [--workers 2]
        [--clients 1 32] [--seconds 5] [--rounds 3] [--baseline-venv OTHER_CHECKOUT/.venv]

``--baseline-venv`` adds a third server, serve-model from another checkout's venv (the code before a
change), driven in the same interleaved rounds: before and after under the same load.

The clients share the servers' cores: the figures are what one machine does serving itself.
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
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
from serve_servers import cpu_seconds, free_port, server

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance" / "binance_BTC-USDT_1h.csv.gz"
MODEL_NAME = "candlecast-bench-serve"
JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
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
    from candlecast.devtools.sentiment import synthetic_fear_greed
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
    sentiment = Path(
        cfg.exchange.synthetic_sentiment_path
    )  # the demo's exogenous input, as `candlecast demo` writes it
    sentiment.parent.mkdir(parents=True, exist_ok=True)
    synthetic_fear_greed(candles, cfg.exchange.seed).to_csv(sentiment, index=False)
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


def many_payloads(candles: pd.DataFrame, n: int) -> dict[str, bytes]:
    """One request of ``n`` series (the same candles under n symbols, a symbol column), by content-type.

    A JSON dataframe_split, and an Arrow IPC stream of the same table.
    """
    import pyarrow as pa
    import pyarrow.ipc

    frame = pd.concat([candles.assign(symbol=f"S{i:03d}/USDT") for i in range(n)], ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {JSON: payload(frame), ARROW: sink.getvalue().to_pybytes()}


def post_ms(port: int, body: bytes, rows: int, content_type: str = JSON) -> float:
    """Wall ms of one POST on a new connection; NaN when the answer is not ``rows`` forecast rows."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.perf_counter()
    conn.request("POST", "/invocations", body, {"Content-Type": content_type})
    resp = conn.getresponse()
    answer = resp.read()
    ms = (time.perf_counter() - t) * 1000
    conn.close()
    return ms if resp.status == 200 and len(json.loads(answer)["predictions"]) == rows else float("nan")


def race(args: argparse.Namespace, body: bytes, many: dict[str, bytes], servers: dict[tuple, tuple[int, int]]) -> dict:
    """Every server gets a slice of every client level and three 100-series requests per round, in a rotating order."""
    samples: dict[tuple, list] = {}
    keys = list(servers)
    for r in range(args.rounds):
        for clients in [*args.clients, *HUNDRED]:
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                if clients == "100 arrow" and key[0] != "serve-model":  # only this checkout's serve-model reads Arrow
                    continue
                port, pid = servers[key]
                cpu0 = cpu_seconds(pid)
                if clients in HUNDRED:
                    cell = [post_ms(port, many[HUNDRED[clients]], 100 * 24, HUNDRED[clients]) for _ in range(3)]
                else:
                    cell = drive(port, body, clients, args.seconds)
                samples.setdefault((*key, clients), []).append((cell, cpu_seconds(pid) - cpu0))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    return samples


#: The 100-series request's table rows and the content-type each sends.
HUNDRED = {"100 json": JSON, "100 arrow": ARROW}


def print_table(samples: dict[tuple, list]) -> None:
    """Per server and workers: each client level, then the 100-series request."""
    print(
        f"{'server':>12s} {'workers':>7s} {'clients':>7s} {'req/s':>7s} {'p50 ms':>7s} {'p95 ms':>7s} "
        f"{'req/CPU-s':>9s} {'ok':>6s} {'errors':>6s}"
    )
    for (kind, workers, level), cells in sorted(samples.items(), key=lambda kv: (kv[0][1], kv[0][0], str(kv[0][2]))):
        cpu = sum(c for _, c in cells)
        if level in HUNDRED:
            ms = [x for cell, _ in cells for x in cell]
            ok = [x for x in ms if x == x]
            q = np.percentile(ok, [50, 95]) if ok else [float("nan")] * 2
            print(
                f"{kind:>12s} {workers:7d} {level[4:]:>7s} {'':>7s} {q[0]:7.1f} {q[1]:7.1f} {len(ok) / cpu:9.1f} "
                f"{len(ok):6d} {len(ms) - len(ok):6d}"
            )
            continue
        r = summarize([cell for cell, _ in cells])
        print(
            f"{kind:>12s} {workers:7d} {level:7d} {r['rps']:7.1f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} "
            f"{r['ok'] / cpu:9.1f} {r['ok']:6d} {r['errors']:6d}"
        )


def profile(model_uri: str, candles: pd.DataFrame, body: bytes, many: dict[str, bytes]) -> None:
    """Median ms of serve-model's stages for one request in this process, and the cProfile of its whole path."""
    import orjson
    from mlflow import MlflowClient

    from candlecast.features.compute import compute_features
    from candlecast.features.exogenous import cached_exogenous
    from candlecast.features.last_window import last_windows
    from candlecast.registry.serving import Champion, ServeApp, forecast_json, parse_request

    name, alias = model_uri.removeprefix("models:/").split("@")
    app = ServeApp(Champion(MlflowClient(), name, alias))
    loaded = app.champion.current
    groups, many_groups = parse_request(body), parse_request(many[JSON])
    spec = loaded.forecaster.spec
    fc = spec.feature_config
    exogenous = [cached_exogenous(source.path, source.columns) for source in fc.exogenous]
    tails = [{c: v[-spec.min_candles - 1 :] for c, v in arrays.items()} for _, arrays in many_groups]
    frames = [pd.DataFrame(t) for t in tails]
    stages = {
        "whole request (parse, forecast, rows; no HTTP)": lambda: app.invoke(loaded, body),
        "  JSON body -> candle arrays": lambda: parse_request(body),
        "  forecast and JSON rows": lambda: forecast_json(loaded.forecaster, groups),
        "    the network (1 window)": lambda: loaded.forecaster.network(
            np.zeros((1, fc.lookback, len(spec.columns)), "f4")
        ),
        "whole 100-series request, JSON": lambda: app.invoke(loaded, many[JSON]),
        "whole 100-series request, Arrow": lambda: app.invoke(loaded, many[ARROW], ARROW),
        "  JSON body -> candle arrays (100 series)": lambda: parse_request(many[JSON]),
        "    of which orjson.loads alone": lambda: orjson.loads(many[JSON]),
        "    the stdlib's json.loads alone (the parser before)": lambda: json.loads(many[JSON]),
        "  Arrow body -> candle arrays (100 series)": lambda: parse_request(many[ARROW], ARROW),
        "  forecast and JSON rows (100 series)": lambda: forecast_json(loaded.forecaster, many_groups),
        "    features, one pass (last_windows, 100 series)": lambda: last_windows(
            tails, fc, spec.timeframe, fc.lookback, exogenous
        ),
        "    features per series as before (compute_features x 100)": lambda: [
            compute_features(f, fc, spec.timeframe, exogenous=exogenous) for f in frames
        ],
        "    the network (100 windows)": lambda: loaded.forecaster.network(
            np.zeros((100, fc.lookback, len(spec.columns)), "f4")
        ),
    }
    print("\nserve-model's request path in-process (median ms of 30; of 15 for 100 series, of 5 one by one):")
    for label, fn in stages.items():
        reps = 5 if "x 100" in label else 15 if "100" in label else 30  # a loaded machine needs the medians
        print(f"  {label:62s} {_best_ms(fn, reps):7.2f}")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(200):
        app.invoke(loaded, body)
    prof.disable()
    report = io.StringIO()
    pstats.Stats(prof, stream=report).sort_stats("tottime").print_stats(25)
    print("\ncProfile of 200 one-series requests through ServeApp.invoke, top 25 by own time:")
    text = report.getvalue().replace(f"{ROOT}/", "")  # repo-relative paths: the output names no machine
    print("\n".join(line for line in text.splitlines() if line.strip())[:6000])


def _best_ms(fn, reps: int = 30) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", help="serve models:/NAME@ALIAS (default: build a champion in a temp home)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per slice (after a 1 s warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of slices")
    parser.add_argument("--servers", nargs="+", default=["mlflow", "serve-model"], choices=["mlflow", "serve-model"])
    parser.add_argument(
        "--baseline-venv",
        type=Path,
        help="also serve with serve-model from this venv (another checkout's .venv: its code before a change)",
    )
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed bench still stops its servers
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    wall0, load0 = time.perf_counter(), os.getloadavg()
    if args.model_uri is None:
        t0 = time.perf_counter()
        args.model_uri = build_champion(Path(tempfile.mkdtemp(prefix="candlecast-serve-")))
        home = os.environ["CANDLECAST_HOME"]
        print(f"built {args.model_uri} in {time.perf_counter() - t0:.1f} s (CANDLECAST_HOME={home})")
    candles = request_candles()
    body, many = payload(candles), many_payloads(candles, 100)
    print(
        f"request: {len(candles)} candles, {len(body)} bytes of JSON; 100-series request {len(many[JSON])} bytes "
        f"of JSON, {len(many[ARROW])} of Arrow; "
        f"{args.seconds:.0f} s per slice, {args.rounds} rounds; {os.cpu_count()} cores shared by servers and clients"
    )
    with ExitStack() as stack:  # all servers up at once, idle but for the one being driven
        servers = {}
        kinds = [*args.servers, *(["baseline"] if args.baseline_venv else [])]
        for workers in args.workers:
            for kind in kinds:
                port = free_port()
                proc = stack.enter_context(server(kind, args.model_uri, workers, port, args.baseline_venv))
                servers[(kind, workers)] = (port, proc.pid)
        samples = race(args, body, many, servers)
    print_table(samples)
    load1 = os.getloadavg()
    print(
        f"load average (1, 5, 15 min): {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} at the start, "
        f"{load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f} at the end"
    )
    if not args.no_profile:
        profile(args.model_uri, candles, body, many)
    print(f"wall time {time.perf_counter() - wall0:.1f} s")


if __name__ == "__main__":
    main()
