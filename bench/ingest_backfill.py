"""Backfill throughput: 5 series x 5 years of 1h through the emulator (rate limit off), and a no-op update.

Prints, from one run: candles/s and requests of the backfill, where its wall time went (ccxt's
response parsing, the candle contract, the store), and the cost of the incremental update that
follows with nothing new. The emulator runs in its own process (`candlecast emulate`), so its work
does not share the client's interpreter.

    .venv/bin/python bench/ingest_backfill.py [--data ../shared/data/binance]
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import ccxt.async_support as accxt

from candlecast.data import ingest as core
from candlecast.data import pagination
from candlecast.data.candle_store import CandleStore
from candlecast.expectations.runner import validate_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT"]
ROOT = Path(__file__).resolve().parents[1]


def _timed(spent: dict[str, float], name: str, fn):
    """Wrap ``fn`` so its wall time adds up under ``name``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0

    return wrapper


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "binance")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    files = [args.data / f"binance_{s.replace('/', '-')}_1h.csv.gz" for s in SYMBOLS]
    port = _free_port()
    cmd = [sys.executable, "-m", "candlecast.deployments.cli", "emulate", "--speed", "0", "--port", str(port)]
    emulator = subprocess.Popen(
        [*cmd, *(x for f in files for x in ("-f", str(f)))], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/v3/ping", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        # where the time goes: ccxt's kline parsing, the gate, the store (wrapped where they are called from)
        spent: dict[str, float] = defaultdict(float)
        core.fetch_to_staging = _timed(spent, "fetch phase (all series, concurrent)", core.fetch_to_staging)
        accxt.binance.parse_json = _timed(spent, "  of which ccxt JSON decode", accxt.binance.parse_json)
        accxt.binance.parse_ohlcvs = _timed(spent, "  of which ccxt parse_ohlcvs", accxt.binance.parse_ohlcvs)
        pagination.page_problem = _timed(spent, "  of which page sanity checks", pagination.page_problem)
        CandleStore.upsert = _timed(spent, "store upsert", CandleStore.upsert)
        gate = _timed(
            spent, "candle contract (GX)", lambda frame, key: validate_candles(frame, key.timeframe, str(key))
        )
        validate_candles(core.pd.DataFrame(), "1h")  # GX's one-off start-up, outside the measurement
        keys = [SeriesKey("binance", s, "1h") for s in SYMBOLS]
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(home=Path(home))
            options = {"api_url": url, "rate_limit": False, "concurrency": args.concurrency}
            t0 = time.perf_counter()
            reports = core.ingest(settings, "binance", keys, 0, gate, **options)
            wall = time.perf_counter() - t0
            candles = sum(r.stored for r in reports)
            requests = sum(r.requests for r in reports)
            rate = candles / wall
            print(f"backfill: {len(keys)} series, {candles:,} candles in {wall:.2f} s = {rate:,.0f} candles/s,"
                  f" {requests} klines requests, concurrency {args.concurrency}")  # fmt: skip
            for name in sorted(spent, key=lambda n: (not n.startswith("fetch"), n.startswith("store"))):
                seconds = spent[name]
                print(f"  {name:<40} {seconds:6.2f} s  {seconds / wall:6.1%} of wall")
            parse = spent["  of which ccxt parse_ohlcvs"] + spent["  of which ccxt JSON decode"]
            print(f"  store upsert / ccxt decode+parse: {spent['store upsert'] / parse:.2f}"
                  " (the rest of the fetch phase is waiting on HTTP, i.e. the emulator)")  # fmt: skip
            t0 = time.perf_counter()
            again = core.ingest(settings, "binance", keys, 0, gate, **options)
            noop = time.perf_counter() - t0
            print(f"no-op incremental update: {noop * 1000:.0f} ms, {sum(r.requests for r in again)} klines requests"
                  f" (1 per series, answered empty), {sum(r.stored for r in again)} stored;"
                  f" ratio to the backfill {noop / wall:.3f}")  # fmt: skip
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    os.environ.setdefault("DO_NOT_TRACK", "1")
    main()
