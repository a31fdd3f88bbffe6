"""How fast the candle contract validates a large batch: 1 million 1m candles, measured in one run.

Prints GX's import time separately (a fixed cost per process), then per frame size the wall time of
an in-memory validation (what importers and tests use) and of a checkpoint run in a state folder (what
the flows use: result stored, Data Docs rebuilt), best of ``--repeat``.

    .venv/bin/python bench/validate_throughput.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def candles(n: int, seed: int = 0) -> pd.DataFrame:
    """A clean 1m random walk: aligned, no gaps, consistent OHLC, positive volume."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 5e-4, n))
    ts = 1_704_067_200_000 + np.arange(n, dtype="int64") * 60_000
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": 1.0 + rng.exponential(5.0, n),
        }
    )


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = fn()
        times.append(time.perf_counter() - start)
        assert report.success and not report.failures, report.summary()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    from candlecast.expectations.runner import validate_candles

    print(f"import great_expectations + suites: {time.perf_counter() - start:.2f} s (excluded below)")
    validate_candles(candles(1_000), "1m")  # builds the in-memory context and the suite once
    state = Path(tempfile.mkdtemp(prefix="candlecast-bench-"))
    validate_candles(candles(1_000), "1m", state_root=state)  # creates the file context once

    print(f"{'rows':>10} {'in memory':>10} {'state+docs':>11} {'rows/s (memory)':>16}")
    base = None
    for n in sorted({43_800, args.rows}):
        frame = candles(n)
        memory = best(lambda f=frame: validate_candles(f, "1m"), args.repeat)
        stored = best(lambda f=frame: validate_candles(f, "1m", state_root=state), args.repeat)
        base = base or memory
        print(f"{n:>10,} {memory:>9.2f}s {stored:>10.2f}s {n / memory:>16,.0f}   ({memory / base:.1f}x the 43.8k time)")


if __name__ == "__main__":
    main()
