"""The live loop in real time against the emulator, and its drift detector offline on the rehearsal market.

    nice -n 10 .venv/bin/python bench/live_latency.py              # 10 series, 20 one-minute candles (~25 min)
    nice -n 10 .venv/bin/python bench/live_latency.py --seeds 0 --home .candlecast/live-bench  # latency alone;
                                                     # the 1m champion trained there once, reused after
    nice -n 10 .venv/bin/python bench/live_latency.py --series 2 --candles 2 --seeds 1     # a smoke run
    nice -n 10 .venv/bin/python bench/live_latency.py --seeds 0 --transport both --home ...  # REST vs websocket

Everything runs in a temporary state folder with a private Prefect server for the training flows
(with --home, the 1m champion's registry stays in that folder).

1. Drift, offline (no real time): the rehearsal's tiny champion (`candlecast live --rehearsal`'s config
   and market, trained by the pipeline flow) forecasts every candle of the rehearsal market drawn with
   other seeds; live/drift.py's checks (Page-Hinkley detector and the 7-day guard, the loop's defaults)
   run on its loss ratios to naive: false alarms per simulated month on the market without the change
   (the detector restarted after each alarm), and the detection delay, in candles after the change.
2. Latency, in real time: a tiny 1m champion (trained here, or the @champion of --model in
   CANDLECAST_HOME) and the emulator at speed 1 (the wall clock) serving --series synthetic series; the
   loop (`candlecast live --predict-here`: in process, no Prefect server) runs for --candles closes.
   Per candle and series, from its close on the exchange clock: to its stored candle, to its stored
   forecast, and to its signal (trading/signals.py's decision from that forecast, computed when the
   forecast event leaves). CPU is this process's (the emulator's threads included: an upper bound).
   The loop gates each close's candles with the candle contract in memory, the series in one GX run (as
   the rehearsal does; `candlecast live` writes each result's Data Docs page after the forecasts); the
   cost of one series' check, with and without its page, and of the close's one run is printed beside it.

A triggered predict run (`--predict-by-deployment`) adds the runner's poll (PREFECT_RUNNER_POLL_FREQUENCY,
10 s by default, 1 s as docs/live.md sets it) and a flow run's start: bench/live_trigger.py times that path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

MINUTE = 60_000
DAY = 86_400_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--candles", type=int, default=20, help="closes to follow (0: the drift figures alone)")
    parser.add_argument("--seeds", type=int, default=5, help="rehearsal markets for the drift figures (0: skip)")
    parser.add_argument("--model", default=None, help="use this model's @champion in CANDLECAST_HOME (1m candles)")
    parser.add_argument(
        "--home", type=Path, default=None,
        help="keep the 1m champion's registry in this folder: trained there when it holds none, reused when it does",
    )  # fmt: skip
    parser.add_argument(
        "--transport", choices=["rest", "websocket", "both"], default="rest",
        help="how the loop takes closed candles (live.transport); both: rest, then websocket, side by side",
    )  # fmt: skip
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  (progress lines show as they come)
    started = time.time()
    print(f"load average at the start {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    if args.model is None:
        os.environ["CANDLECAST_HOME"] = tempfile.mkdtemp(prefix="live-bench-")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="live-bench-prefect-"))
    from candlecast.deployments.commands.common import offline_defaults
    from candlecast.deployments.local_prefect import prefect_api
    from candlecast.settings import Settings

    offline_defaults()
    with prefect_api(Settings()):
        if args.seeds:
            drift_figures(args.seeds)
        if args.candles:
            transports = ["rest", "websocket"] if args.transport == "both" else [args.transport]
            latency_figures(args.series, args.candles, args.model, args.home, transports)
    print(f"load average at the end {os.getloadavg()[0]:.1f}; wall {time.time() - started:.0f} s")


def drift_figures(seeds: int) -> None:
    """Detection delay and false alarms per simulated month of the loop's drift checks, over ``seeds`` markets."""
    from candlecast.deployments.rehearsal import build_champion
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.live.rehearsal import START_MS, Plan, rehearsal_config
    from candlecast.registry import tracking
    from candlecast.registry.loading import load_version
    from candlecast.registry.prediction import champion_version
    from candlecast.settings import Settings

    t = time.time()
    plan = Plan()
    cfg = rehearsal_config(plan)
    outcome, forced = build_champion(cfg)
    client = tracking.client(Settings())
    name = cfg.promotion.model_name
    bundle = load_version(client, name, champion_version(client, name))
    step, h, live = plan.step, cfg.features.horizon, cfg.live
    print(f"drift: the rehearsal champion v{outcome.version} ({'forced' if forced else 'promoted'}, test rmse_ratio "
          f"{outcome.metrics.get('rmse_ratio', float('nan')):.3f}) in {time.time() - t:.0f} s")  # fmt: skip
    quiet_days, change_day = 120, 30
    quiet = plan.loop_start + quiet_days * DAY
    flipped = type(plan.signal)(plan.signal.ar_phi, plan.signal.hour_mean, flip_at=plan.loop_start + change_day * DAY)
    stationary = type(plan.signal)(plan.signal.ar_phi, plan.signal.hour_mean)
    delays, false_alarms, months, early = [], 0, 0.0, 0
    for seed in range(1, seeds + 1):
        for symbol in plan.symbols:
            for signal, end in ((stationary, quiet), (flipped, plan.loop_start + (change_day + 20) * DAY)):
                n = (end - START_MS) // step
                candles = synthetic_candles(symbol, START_MS, n, plan.timeframe, seed=seed, signal=signal)
                ratios = loss_ratios(bundle, candles, plan.loop_start, symbol, h, live.loss_ratio_cap)
                if signal.flip_at is None:
                    false_alarms += len(alarm_times(ratios, live, step))
                    months += len(ratios) * step / (30 * DAY)
                    continue
                # a forecast cut up to horizon - 1 candles before the change already has changed steps in it
                times = alarm_times(ratios, live, step)
                early += sum(t < signal.flip_at - (h - 1) * step for t in times)
                after = [t for t in times if t >= signal.flip_at - (h - 1) * step]
                delays.append((after[0] - signal.flip_at) // step if after else None)
    seen = [d for d in delays if d is not None]
    print(f"  false alarms: {false_alarms} in {months:.1f} simulated months ({false_alarms / months:.2f} per month) "
          f"on {seeds} seeds x {len(plan.symbols)} series without the change")  # fmt: skip
    print(
        f"  with the change after {change_day} days: {early} false alarms in the {len(delays)} x {change_day} days "
        f"before it (the checks restart after each); detected in {len(seen)} of {len(delays)} within 20 days"
    )
    if seen:
        print(f"  detection delay in {plan.timeframe} candles from the change to the alarmed forecast's cutoff (it "
              f"matures {h} candles later; negative: the forecast straddled the change): median "
              f"{np.median(seen):.0f}, min {min(seen)}, max {max(seen)}")  # fmt: skip
    print(f"  drift figures in {time.time() - t:.0f} s")


def loss_ratios(bundle, candles: pd.DataFrame, first: int, symbol: str, horizon: int, cap: float) -> pd.Series:
    """The champion's loss ratio to naive of every matured forecast cut from ``first`` on (drift.loss_ratios)."""
    from candlecast.live import drift

    ts = candles["timestamp"].to_numpy()
    rows = []
    for cutoff in ts[(ts >= first)][:-horizon]:
        seen = candles[ts <= cutoff].tail(bundle.spec.min_candles + 1).reset_index(drop=True)
        rows.append(bundle.predict(seen, symbol=symbol if bundle.series_names else None).assign(cutoff=int(cutoff)))
    forecasts = pd.concat(rows, ignore_index=True)
    return drift.loss_ratios(drift.realized_returns(forecasts, candles), horizon, cap)


def alarm_times(ratios: pd.Series, live, step: int) -> list[int]:
    """Cutoffs of the drift checks' alarms over ``ratios``, starting afresh after each (as for a new champion)."""
    from candlecast.live import drift

    times, rest = [], ratios
    while len(rest) >= live.min_scored:
        found = drift.alarms(rest, live, step)
        if not found:
            break
        times.append(found[0].at)
        rest = rest[rest.index > found[0].at]
    return times


def champion(cfg, n_series: int, home: Path | None):
    """Train the 1m champion (in ``home`` when given and it holds none); the Settings the loop then runs with.

    With ``home``, the loop's state (candles, forecasts, journal) is a fresh folder and only the registry
    (MLflow's sqlite file, whose artifact paths point into ``home``) is the kept one.
    """
    from candlecast.deployments.rehearsal import build_champion
    from candlecast.registry.local_registry import reader
    from candlecast.registry.prediction import champion_version
    from candlecast.settings import Settings

    name = cfg.promotion.model_name
    run_home = os.environ["CANDLECAST_HOME"]
    if home is not None:
        home = home.expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["CANDLECAST_HOME"] = str(home)
        kept = champion_version(reader(Settings()), name) if (home / "mlflow.db").exists() else None
        if kept is not None:
            print(f"latency: the 1m champion v{kept} kept in --home (no training)")
    if home is None or kept is None:
        t = time.time()
        outcome, forced = build_champion(cfg)
        how = "forced" if forced else "promoted"
        print(f"latency: a 1m champion v{outcome.version} of {n_series} series ({how}) in {time.time() - t:.0f} s")
    if home is not None:
        os.environ["CANDLECAST_HOME"] = run_home
        os.environ["CANDLECAST_MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    return Settings()


def latency_figures(n_series: int, n_candles: int, model: str | None, home: Path | None, transports: list[str]) -> None:
    """Close -> stored candle, forecast and signal in real time, 1m candles at speed 1; CPU per series per candle."""
    from candlecast.config import RunConfig
    from candlecast.data.candle_store import CandleStore
    from candlecast.data.ingest import ingest
    from candlecast.devtools.emulator import synthetic_emulator
    from candlecast.devtools.market import SYNTHETIC_MARKETS
    from candlecast.devtools.synthetic import STRONG_SIGNAL
    from candlecast.expectations.gate import candle_gate
    from candlecast.live.loop import FORECAST_STORED, LiveLoop
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings
    from candlecast.tasks.events import journal_only
    from candlecast.trading.config import TradingConfig
    from candlecast.trading.signals import decide, store_forecasts

    settings = Settings()
    symbols = list(SYNTHETIC_MARKETS[:n_series])
    now = int(time.time() * 1000)
    start = now // MINUTE * MINUTE - 3 * DAY
    n = (now - start + DAY) // MINUTE + n_candles * len(
        transports
    )  # a day past now: the champion trains first (25 min at load 8)
    with synthetic_emulator(symbols, "1m", start_ms=start, n=n, now_ms=now, speed=1, signal=STRONG_SIGNAL) as emu:
        cfg = RunConfig.model_validate(
            {
                "name": "live-bench",
                "exchange": {"emulator": False, "api_url": emu.url, "rate_limit": False},
                "data": {"symbols": symbols, "timeframe": "1m", "history_days": 2},
                "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
                "sweep": {"n_trials": 1, "max_epochs": 1},
                "train": {"max_epochs": 1, "batch_size": 256},
                "promotion": {"model_name": model or "live-bench-1m"},
                "live": {"max_model_age_days": None},
            }  # fmt: skip
        )
        if model is None:
            settings = champion(cfg, n_series, home)
        keys = [SeriesKey("binance", s, "1m") for s in symbols]
        # the history the loop's first step would fetch, stored before it starts (training stored it already)
        ingest(settings, "binance", keys, start, candle_gate(None, emu.now_ms), now_ms=emu.now_ms, api_url=emu.url,
               rate_limit=False)  # fmt: skip
        gate_cost(settings, keys)
        tcfg, signal_at, errors = TradingConfig(), {}, []
        store = CandleStore(settings.candles_dir)

        def emit(event: str, resource: str, payload: dict, key: str) -> None:
            journal_only(event, resource, payload, key)
            if event != FORECAST_STORED:
                return
            series = SeriesKey("binance", payload["symbol"], "1m")
            try:  # the decision from the forecast just stored, as `candlecast signals --source store` makes it
                frame = store_forecasts(settings, cfg, [series], tcfg.hold or cfg.features.horizon)
                decide(frame, {series.symbol: store.read(series)}, tcfg, "1m")
                signal_at[(payload["symbol"], max(payload["cutoffs"]))] = time.time()
            except Exception as exc:  # counted and shown: a signal that cannot be made is a finding, not a crash
                errors.append(str(exc).splitlines()[0])

        for transport in transports:
            begin = emu.now_ms // MINUTE * MINUTE  # the forming candle: the first the loop announces closes after it
            until = begin + (n_candles - 1) * MINUTE  # n_candles closes: begin .. until
            tcfg_live = cfg.model_copy(update={"live": cfg.live.model_copy(update={"transport": transport})})
            loop = LiveLoop(settings, tcfg_live, lambda t: candle_gate(None, t), emit, api_url=emu.url,
                            ws_url=emu.ws_url, predict_here=True)  # fmt: skip
            print(f"latency ({transport}): the loop follows {n_series} series for {n_candles} closes ...")
            cpu0, load0 = time.process_time(), os.getloadavg()[0]
            asyncio.run(loop.run(until_ms=until))
            cpu = time.process_time() - cpu0
            offset = emu.now_ms - time.time() * 1000  # exchange ms minus wall ms (speed 1: a constant)
            print(f"latency ({transport}): {n_series} series x {n_candles} one-minute candles at speed 1, load average "
                  f"{load0:.1f} -> {os.getloadavg()[0]:.1f} during the loop")  # fmt: skip
            report_latency(settings, begin, until, offset, signal_at, errors)
            print(f"  CPU: {1000 * cpu / (n_series * n_candles):.0f} ms per series per candle")
            errors.clear()


def report_latency(settings, begin: int, until: int, offset: float, signal_at: dict, errors: list[str]) -> None:
    """Close -> stored candle, forecast and signal, for the candles ``begin..until`` (journal times, exchange clock)."""
    from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED
    from candlecast.live.state import read_journal

    report: dict[str, list[float]] = {}
    for name in (CANDLES_STORED, FORECAST_STORED):
        lat = []
        for e in read_journal(settings):
            if e["event"] == name:
                cutoffs = e["payload"].get("cutoffs") or [e["payload"]["cutoff"]]
                lat += [(e["t"] * 1000 + offset - (c + MINUTE)) / 1000 for c in cutoffs if begin <= c <= until]
        report[name] = lat
    report["signal"] = [(t * 1000 + offset - (c + MINUTE)) / 1000 for (_, c), t in signal_at.items()
                        if begin <= c <= until]  # fmt: skip
    for name, lat in report.items():
        if lat:
            p50, p95 = np.percentile(lat, [50, 95])
            verdict = " (target p95 <= 5 s: met)" if p95 <= 5 else " (target p95 <= 5 s: missed)"
            print(f"  close -> {name}: n={len(lat)} p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(lat):.2f} s"
                  f"{verdict if name != CANDLES_STORED else ''}")  # fmt: skip
        else:
            print(f"  close -> {name}: none")
    if errors:
        print(f"  signals that failed: {len(errors)}, e.g. {errors[0]}")


def gate_cost(settings=None, keys=None) -> None:
    """The candle contract on one candle: in memory, with its Data Docs page kept, and a close's series in one run.

    Each series' newest stored candle (the loop's frame at a close); called alone (no arguments, as
    docs/live.md runs it), ten synthetic 1m series in memory and a temporary state folder. "one at fault"
    is a close where one series' candle has its high under its low (refused and refetched at every close).
    """
    from candlecast.data.candle_store import CandleStore
    from candlecast.devtools.market import SYNTHETIC_MARKETS
    from candlecast.devtools.synthetic import synthetic_candles
    from candlecast.expectations.runner import validate_candles, validate_candles_many
    from candlecast.settings import Settings

    started = time.perf_counter()
    if keys is None:
        settings = Settings(home=Path(tempfile.mkdtemp(prefix="gate-cost-")))
        start = 1_704_067_200_000  # 2024-01-01, on the minute
        frames = [(f"binance:{s}:1m", synthetic_candles(s, start, 30, "1m").tail(1)) for s in SYNTHETIC_MARKETS[:10]]
    else:
        store = CandleStore(settings.candles_dir)
        frames = [(str(k), store.read(k).tail(1)) for k in keys]
    frames = [(label, df.reset_index(drop=True)) for label, df in frames]
    bad = frames[-1][1].assign(high=frames[-1][1]["low"] * 0.5)
    at_fault = [*frames[:-1], (frames[-1][0], bad)]
    now = int(frames[0][1]["timestamp"].iloc[-1]) + 2 * MINUTE
    n = len(frames)
    checks = {
        "one series in memory": lambda: validate_candles(frames[0][1], "1m", frames[0][0], now_ms=now),
        "with its Data Docs page": lambda: validate_candles(
            frames[0][1], "1m", frames[0][0], now_ms=now, state_root=settings.root
        ),
        f"{n} series in one GX run (the loop's)": lambda: validate_candles_many(frames, "1m", now_ms=now),
        f"one at fault among {n}": lambda: validate_candles_many(at_fault, "1m", now_ms=now),
        f"each of the {n} alone": lambda: [validate_candles(df, "1m", s, now_ms=now) for s, df in at_fault],
    }
    costs = {}
    for label, check in checks.items():
        times = []
        for _ in range(3):
            t = time.perf_counter()
            check()
            times.append(time.perf_counter() - t)
        costs[label] = min(times[1:])
    each = ", ".join(f"{k} {v:.2f} s" for k, v in costs.items())
    print(f"latency: the candle contract on one candle: {each} (best of 2 after a warm-up; GX validations hold one "
          f"lock), load {os.getloadavg()[0]:.1f}; wall {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
