"""The live loop's latency in real time: from each candle's close to its stored candle and forecast.

On the exchange clock, with the CPU it costs per series per candle.

    nice -n 10 .venv/bin/python bench/live_latency.py                     # 10 series, 1m candles, 20 candles (~21 min)
    nice -n 10 .venv/bin/python bench/live_latency.py --series 3 --candles 2

The emulator runs at speed 1 (the wall clock) in this process; the loop runs in process too, forecasting
here (`--predict-here`), with the champion of the state folder (CANDLECAST_HOME) when one is registered
under --model for 1m candles, else it measures the stored candles only and says so. No Prefect server:
a triggered predict run adds the runner's poll (docs/live.md) and a process start. CPU is this process's
(the emulator's threads included, so an upper bound). Prints the load average next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

import numpy as np

MINUTE = 60_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--candles", type=int, default=20)
    parser.add_argument("--model", default="candlecast-lstm")
    parser.add_argument("--warmup", type=int, default=1, help="first candles per series left out (imports, backfill)")
    args = parser.parse_args()
    started = time.time()
    os.environ.setdefault("CANDLECAST_HOME", tempfile.mkdtemp(prefix="live-bench-"))

    from candlecast.config import RunConfig
    from candlecast.devtools.emulator import synthetic_emulator
    from candlecast.devtools.market import SYNTHETIC_MARKETS
    from candlecast.expectations.gate import candle_gate
    from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED, LiveLoop
    from candlecast.live.state import read_journal
    from candlecast.settings import Settings
    from candlecast.tasks.events import journal_only

    symbols = list(SYNTHETIC_MARKETS[: args.series])
    cfg = RunConfig.model_validate(
        {
            "name": "live-bench",
            "exchange": {"emulator": False},
            "promotion": {"model_name": args.model},
            "data": {"symbols": symbols, "timeframe": "1m", "history_days": 1},
        }  # fmt: skip
    )
    settings = Settings()
    now = int(time.time() * 1000)
    start = now // MINUTE * MINUTE - 2 * 86_400_000
    with synthetic_emulator(symbols, "1m", start_ms=start, n=3 * 1440, now_ms=now, speed=1) as emu:
        until = now // MINUTE * MINUTE + args.candles * MINUTE
        loop = LiveLoop(settings, cfg, lambda t: candle_gate(settings, t), journal_only, api_url=emu.url,
                        predict_here=True)  # fmt: skip
        cpu0 = time.process_time()
        asyncio.run(loop.run(until_ms=until))
        cpu = time.process_time() - cpu0
        offset = emu.now_ms - time.time() * 1000  # exchange ms minus wall ms (speed 1)
    events = read_journal(settings)
    report = {}
    first = {s: now // MINUTE * MINUTE + args.warmup * MINUTE for s in symbols}  # closes after the warm-up
    for name in (CANDLES_STORED, FORECAST_STORED):
        lat = []
        for e in events:
            if e["event"] != name:
                continue
            cutoffs = e["payload"].get("cutoffs") or [e["payload"]["cutoff"]]
            lat += [
                (e["t"] * 1000 + offset - (c + MINUTE)) / 1000 for c in cutoffs if c >= first[e["payload"]["symbol"]]
            ]
        report[name] = lat
    print(
        f"{args.series} series, {args.candles} one-minute candles at speed 1 ({args.warmup} left out per series), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for name, lat in report.items():
        if lat:
            p50, p95 = np.percentile(lat, [50, 95])
            print(f"  close -> {name}: n={len(lat)} p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(lat):.2f} s")
        else:
            print(f"  close -> {name}: none (no @champion of {args.model} for 1m candles in {settings.root})")
    print(f"  CPU: {1000 * cpu / (args.series * args.candles):.0f} ms per series per candle (incl. the first backfill)")
    print(f"wall {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
