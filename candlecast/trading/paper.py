"""A paper account: the trade backtest's NautilusTrader engine kept alive and fed one live bar at a time.

The venue, instrument, fee and slippage models, next-open fills and ForecastStrategy are those of
`candlecast trade backtest` (engine.py); only the data arrives differently: each new candle is added
as a bar (in next_open mode after the quote of its open, where the previous bar's order fills), the
engine runs in streaming mode (``run(streaming=True)``, then ``clear_data()``), and it is never
``end()``-ed, so the account, its open position and an order in flight carry over to the next bar.
Fed the same bars and targets, it fills exactly as one backtest run over them would.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.schema import timeframe_ms
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import VENUE, Market, _add_venue, _iid, _write_targets, bar_type, instrument_id
from candlecast.trading.policy import per_symbol_cap

_NS = 1_000_000
#: A window that never ends: a paper account flattens only when its owner says so, not at a date.
_OPEN_END_NS = 2**62
CANDLE_FIELDS = ["timestamp", "open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class PaperStep:
    """The account after one bar: the fills since the previous bar, the position, cash and equity at its close."""

    ts: int  # the bar's close (ms)
    fills: list[dict[str, float]] = field(default_factory=list)  # ts (ms), qty (signed), price, fee
    position: float = 0.0
    cash: float = 0.0
    equity: float = 0.0


class PaperEngine:
    """One symbol's paper account: a BacktestEngine in streaming mode with the ForecastStrategy on it.

    Args:
        precision: (price, size) decimals of the instrument, fixed for the account's life (a rebuilt
            account must trade the instrument it started with).
        hold: The holding period in candles (a forecast's life in the strategy).
    """

    def __init__(self, symbol: str, timeframe: str, cfg: TradingConfig, precision: tuple[int, int], hold: int):
        from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
        from nautilus_trader.config import LoggingConfig
        from nautilus_trader.model.identifiers import TraderId

        self.symbol, self.timeframe, self.cfg = symbol, timeframe, cfg
        self.step = timeframe_ms(timeframe)
        self.key = instrument_id(symbol)
        self.engine = BacktestEngine(
            BacktestEngineConfig(
                trader_id=TraderId("CANDLECAST-PAPER"),
                logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
                run_analysis=False,
            )
        )
        empty = pd.DataFrame(columns=CANDLE_FIELDS)
        _add_venue(self.engine, Market(timeframe, {symbol: empty}), cfg, {symbol: precision})
        self.instrument = self.engine.cache.instrument(_iid(symbol))
        self._hold = hold
        self._strategy: Any = None
        self._last_open: int | None = None  # open time of the newest candle fed
        self._fills: list[dict[str, float]] = []
        self.engine.kernel.msgbus.subscribe(topic=f"events.fills.{self.key}", handler=self._on_fill)

    def feed(self, candles: pd.DataFrame, targets: dict[int, float]) -> PaperStep:
        """Trade the next candles (open times after the last fed, in order) with targets by candle open time.

        A candle's target is the one for the forecast made at its close (cutoff = its open time): the
        strategy acts on it at that bar, never earlier. One call with many candles (a rebuild) ends in
        the same account as one call per candle.
        """
        from nautilus_trader.model.data import BarType
        from nautilus_trader.persistence.wranglers import BarDataWrangler, QuoteTickDataWrangler

        candles = candles.sort_values("timestamp")
        opens = candles["timestamp"].to_numpy("int64")
        if self._last_open is not None and len(opens) and opens[0] <= self._last_open:
            raise ValueError(f"{self.symbol}: candle {int(opens[0])} was already fed (last {self._last_open})")
        close_ms = opens + self.step
        frame = candles[["open", "high", "low", "close", "volume"]].copy()
        frame.index = pd.to_datetime(close_ms, unit="ms", utc=True)
        bars = BarDataWrangler(BarType.from_str(bar_type(self.symbol, self.timeframe)), self.instrument).process(frame)
        self.engine.add_data(bars)
        if self.cfg.execution.mode == "next_open":
            # each candle's open is where the order of the bar before it fills (after the latency; after a
            # gap in the exchange's candles, at the next candle that exists, at the price the backtest uses)
            fill_at = opens + self.cfg.execution.latency_ms
            keep = np.ones(len(opens), dtype=bool)
            keep[0] = self._last_open is not None  # no order is in flight before the account's first bar
            price = candles["open"].to_numpy("float64")[keep]
            quotes = pd.DataFrame(
                {"bid_price": price, "ask_price": price}, index=pd.to_datetime(fill_at[keep], unit="ms", utc=True)
            )
            if len(quotes):
                self.engine.add_data(QuoteTickDataWrangler(self.instrument).process(quotes))
        wanted = {(self.key, (int(t) + self.step) * _NS): float(v) for t, v in targets.items()}
        if self._strategy is None:
            self._start(int(close_ms[0]), wanted)
        else:
            self._strategy.targets.update(wanted)
            self.engine.run(streaming=True)
        self.engine.clear_data()
        self._last_open = int(opens[-1])
        fills, self._fills = self._fills, []
        s = self._strategy
        return PaperStep(int(close_ms[-1]), fills, s.qty[self.key], s.cash, s._equity())

    def _start(self, first_close_ms: int, targets: dict[tuple[str, int], float]) -> None:
        """Add the strategy with the first targets and run the first data (it reads them from a file as it starts)."""
        from candlecast.trading.strategy import ForecastStrategy, ForecastStrategyConfig

        with tempfile.TemporaryDirectory(prefix="candlecast-paper-") as tmp:
            rows = pd.DataFrame(
                {"symbol": self.symbol, "ts": [ts // _NS for _, ts in targets], "target": list(targets.values())}
            )
            path = _write_targets(rows, Path(tmp) / "targets.parquet")
            self._strategy = ForecastStrategy(
                ForecastStrategyConfig(
                    targets_path=str(path),
                    instrument_ids=[self.key],
                    bar_types=[bar_type(self.symbol, self.timeframe)],
                    venue=VENUE,
                    start_ns=first_close_ms * _NS,
                    end_ns=_OPEN_END_NS,
                    life_ns=self._hold * self.step * _NS,
                    no_trade_band=self.cfg.policy.no_trade_band,
                    max_exposure=per_symbol_cap(self.cfg.policy, 1),
                    max_drawdown=self.cfg.policy.max_drawdown,
                )
            )
            self.engine.add_strategy(self._strategy)
            self.engine.run(streaming=True)

    def _on_fill(self, event: Any) -> None:
        """Every fill as it happens (the execution engine publishes it), not a scan of the growing order cache."""
        sign = 1.0 if event.order_side.name == "BUY" else -1.0
        self._fills.append(
            {
                "ts": event.ts_event / _NS,
                "qty": sign * event.last_qty.as_double(),
                "price": event.last_px.as_double(),
                "fee": event.commission.as_double(),
            }
        )

    def close(self) -> None:
        """Release the engine without flattening: the persisted account is where a restart resumes."""
        self.engine.dispose()
