"""The exchange's clock: which candles have closed, and how long to wait (in real seconds) for the next close.

The loop reads the exchange's time (ccxt ``fetch_time``) rather than the local clock, so an emulator
whose clock runs ``speed`` times faster drives the loop as a real exchange would. The clock's rate
against the local monotonic clock is estimated from successive readings, so a wait in exchange
milliseconds becomes the right number of real seconds at any speed.
"""

from __future__ import annotations

from dataclasses import dataclass


def newest_closed(now_ms: int, step_ms: int, settle_ms: int = 0) -> int:
    """Open time of the newest candle that closed at least ``settle_ms`` before ``now_ms``."""
    return (now_ms - settle_ms) // step_ms * step_ms - step_ms


def next_due_ms(now_ms: int, step_ms: int, settle_ms: int = 0) -> int:
    """Exchange time at which the next candle has closed and settled."""
    return newest_closed(now_ms, step_ms, settle_ms) + 2 * step_ms + settle_ms


@dataclass
class ClockRate:
    """Exchange milliseconds per real millisecond, from the last two readings (1.0 until two exist)."""

    rate: float = 1.0
    _last: tuple[int, float] | None = None

    def observe(self, exchange_ms: int, monotonic_s: float) -> None:
        """Record one reading of the exchange clock against ``time.monotonic()``."""
        if self._last is not None:
            d_exchange, d_real = exchange_ms - self._last[0], (monotonic_s - self._last[1]) * 1000
            if d_real > 50 and d_exchange >= 0:  # short gaps are dominated by request latency
                self.rate = max(d_exchange / d_real, 1e-3)
        if self._last is None or (monotonic_s - self._last[1]) * 1000 > 50:
            self._last = (exchange_ms, monotonic_s)

    def wait_s(self, until_ms: int, now_ms: int, max_s: float, min_s: float = 0.02) -> float:
        """Real seconds until the exchange clock reads ``until_ms``, within [min_s, max_s]."""
        return min(max((until_ms - now_ms) / self.rate / 1000, min_s), max_s)
