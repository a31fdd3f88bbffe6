"""A paper account: the trade backtest's NautilusTrader engine kept alive and fed one live bar at a time.

The venue, instrument, fee and slippage models, next-open fills and ForecastStrategy are those of
`candlecast trade backtest` (engine.py); only the data arrives differently: each new candle is added
as a bar (in next_open mode after the quote of its open, where the previous bar's order fills), the
engine runs in streaming mode (``run(streaming=True)``, then ``clear_data()``), and it is never
``end()``-ed, so the account, its open position and an order in flight carry over to the next bar.
Fed the same bars and targets, it fills exactly as one backtest run over them would.

Beside the forecast strategy runs the backtest's buy-and-hold on the same venue: the same capital,
bought at the first bar's close (filled like any order, after fees and slippage) at the same per-symbol
cap, with the same drawdown stop, then held; each strategy books only its own fills, so the two
differ by the strategy's decisions alone. The venue's own account and netted position mix the two:
past the starting cash the strategies take from it, they are not read (the venue only fills orders,
with no margin required). ``resume`` restores both strategies to
a saved state (a step's ``state``) to continue from the bar it was saved at (see PaperStrategy).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms
from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import VENUE, Market, _add_venue, _iid, _write_targets, bar_type, instrument_id
from candlecast.trading.policy import per_symbol_cap

_NS = 1_000_000
#: A window that never ends: a paper account flattens only when its owner says so, not at a date.
_OPEN_END_NS = 2**62


@dataclass(frozen=True)
class Book:
    """One strategy after a bar: its fills since the previous bar, the position, cash and equity at the close."""

    fills: list[dict[str, float]] = field(default_factory=list)  # ts (ms), qty (signed), price, fee
    position: float = 0.0
    cash: float = 0.0
    equity: float = 0.0


@dataclass(frozen=True)
class PaperStep:
    """The account and its buy-and-hold twin after the newest bar, and the state to resume both from it."""

    ts: int  # the bar's close (ms)
    account: Book
    hold: Book
    state: dict[str, Any]  # both strategies as the newest bar arrived: PaperEngine(resume=...) refeeds that bar


class PaperEngine:
    """One symbol's paper account: a BacktestEngine in streaming mode with the ForecastStrategy on it.

    Args:
        precision: (price, size) decimals of the instrument, fixed for the account's life (a rebuilt
            account must trade the instrument it started with).
        hold: The holding period in candles (a forecast's life in the strategy).
    """

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        cfg: TradingConfig,
        precision: tuple[int, int],
        hold: int,
        resume: dict[str, Any] | None = None,
    ):
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
        empty = pd.DataFrame(columns=CANDLE_COLUMNS)
        _add_venue(self.engine, Market(timeframe, {symbol: empty}), cfg, {symbol: precision})
        self.instrument = self.engine.cache.instrument(_iid(symbol))
        self._hold = hold
        self._resume = resume
        self._strategy: Any = None
        self._holder: Any = None  # the buy-and-hold twin
        self._last_open: int | None = None  # open time of the newest candle fed

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
        state = {"account": self._strategy.before, "hold": self._holder.before}
        return PaperStep(int(close_ms[-1]), self._book(self._strategy), self._book(self._holder), state)

    def _book(self, strategy: Any) -> Book:
        fills, strategy.fills = strategy.fills, []
        return Book(fills, strategy.qty[self.key], strategy.cash, strategy._equity())

    def _start(self, first_close_ms: int, targets: dict[tuple[str, int], float]) -> None:
        """Add both strategies (the first targets from a file, read as they start) and run the first data."""
        from candlecast.trading.paper_strategy import PaperStrategy
        from candlecast.trading.strategy import ForecastStrategyConfig

        common: dict[str, Any] = {
            "instrument_ids": [self.key], "bar_types": [bar_type(self.symbol, self.timeframe)], "venue": VENUE,
            "start_ns": first_close_ms * _NS, "end_ns": _OPEN_END_NS, "life_ns": self._hold * self.step * _NS,
            "max_drawdown": self.cfg.policy.max_drawdown,
        }  # fmt: skip
        cap = per_symbol_cap(self.cfg.policy, 1)
        resume = self._resume or {}
        with tempfile.TemporaryDirectory(prefix="candlecast-paper-") as tmp:
            rows = pd.DataFrame(
                {"symbol": self.symbol, "ts": [ts // _NS for _, ts in targets], "target": list(targets.values())}
            )
            path = _write_targets(rows, Path(tmp) / "targets.parquet")
            self._strategy = PaperStrategy(
                ForecastStrategyConfig(
                    targets_path=str(path), no_trade_band=self.cfg.policy.no_trade_band, max_exposure=cap, **common
                ),
                resume.get("account"),
            )
            # the backtest's buy-and-hold (no targets: it reads an empty file), its orders tagged apart
            empty = _write_targets(None, Path(tmp) / "none.parquet")
            self._holder = PaperStrategy(
                ForecastStrategyConfig(targets_path=str(empty), hold_target=cap, order_id_tag="HOLD", **common),
                resume.get("hold"),
            )
            self.engine.add_strategy(self._strategy)
            self.engine.add_strategy(self._holder)
            self.engine.run(streaming=True)

    def close(self) -> None:
        """Release the engine without flattening: the persisted account is where a restart resumes."""
        self.engine.dispose()
