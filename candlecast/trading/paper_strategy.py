"""The paper account's strategy: ForecastStrategy with its own fills and a state that can be saved and restored.

Imported only by trading/paper.py (it loads NautilusTrader). The state is what the strategy decides
from: positions and cash from its own fills, the last closes, the drawdown peak and stop, and the
forecasts being held. ``before`` is that state as the newest bar arrived (after the fills at its
open, before its close's decision); a fresh engine restored to it and fed that bar again makes the
same decision and ends where the account ended, so a restart replays from there, not from the start.
"""

from __future__ import annotations

from typing import Any

from candlecast.trading.strategy import ForecastStrategy

_NS = 1_000_000


class PaperStrategy(ForecastStrategy):
    """A ForecastStrategy (forecast targets or buy-and-hold) whose state before each bar is kept."""

    def __init__(self, config: Any, resume: dict[str, Any] | None = None):
        super().__init__(config)
        self.resume = resume
        self.before: dict[str, Any] | None = None
        self.fills: list[dict[str, float]] = []  # since the engine last took them: ts (ms), qty (signed), price, fee

    def on_start(self) -> None:
        """Start as ForecastStrategy does, then take the saved state (the account's cash, not the venue's)."""
        super().on_start()
        if self.resume is not None:
            s = self.resume
            self.qty = {k: float(v) for k, v in s["qty"].items()}
            self.cash, self.peak, self.stopped = float(s["cash"]), float(s["peak"]), bool(s["stopped"])
            self.stop_ns = None if s["stop_ns"] is None else int(s["stop_ns"])
            self.live = {k: int(v) for k, v in s["live"].items()}
            self.last = {k: float(v) for k, v in s["last"].items()}

    def state(self) -> dict[str, Any]:
        """What the next decision depends on, as JSON values (floats round-trip exactly)."""
        return {
            "qty": dict(self.qty), "cash": self.cash, "peak": self.peak, "stopped": self.stopped,
            "stop_ns": self.stop_ns, "live": dict(self.live), "last": dict(self.last),
        }  # fmt: skip

    def on_bar(self, bar: Any) -> None:
        """Keep the state the bar arrives to, then decide as ForecastStrategy does."""
        self.before = self.state()
        super().on_bar(bar)

    def on_order_filled(self, event: Any) -> None:
        """Book the fill (ForecastStrategy) and keep it for the ledger: this strategy's own, never the other's."""
        super().on_order_filled(event)
        sign = 1.0 if event.order_side.name == "BUY" else -1.0
        self.fills.append(
            {
                "ts": event.ts_event / _NS,
                "qty": sign * event.last_qty.as_double(),
                "price": event.last_px.as_double(),
                "fee": event.commission.as_double(),
            }
        )
