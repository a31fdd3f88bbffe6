"""Fixtures of the CLI tests: a market whose clock stands still.

``still_market`` serves seeded synthetic candles from a local emulator whose clock does not move, so
two runs a few minutes apart see the same candles (a sweep resumes only on the same data).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

HOUR_MS = 3_600_000


@pytest.fixture
def still_market() -> Iterator:
    """Start a Binance emulator of ``symbols`` with ``history_days`` of hourly candles closed by now, clock still."""
    from candlecast.devtools.emulator import ExchangeEmulator
    from candlecast.devtools.synthetic import STRONG_SIGNAL, synthetic_candles

    started = []

    def serve(symbols: list[str], history_days: int) -> ExchangeEmulator:
        now = int(time.time() * 1000)
        start = (now // HOUR_MS - (history_days + 2) * 24) * HOUR_MS
        n = (now - start) // HOUR_MS  # closed candles only: a later run on the wall clock finds nothing new
        candles = {(s, "1h"): synthetic_candles(s, start, n, seed=5, signal=STRONG_SIGNAL) for s in symbols}
        emulator = ExchangeEmulator(candles, now_ms=now, speed=0.0).start()
        started.append(emulator)
        return emulator

    yield serve
    for emulator in started:
        emulator.stop()
