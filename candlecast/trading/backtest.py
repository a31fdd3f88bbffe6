"""A trading backtest: each forecast frame, the naive references and buy-and-hold, on the same bars.

Every frame is validated against the candles first (so bad input stops before any engine runs and
nothing partial is written), then each strategy runs in its own NautilusTrader engine and account
over the same window, and its statistics come from equity rebuilt from its fills.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from candlecast.trading.config import TradingConfig
from candlecast.trading.engine import EngineRun, Market, run_engine
from candlecast.trading.equity import equity_curve
from candlecast.trading.forecasts import ForecastError, TradeWindow, validate_forecasts
from candlecast.trading.policy import per_symbol_cap, target_exposures
from candlecast.trading.sources import BUY_AND_HOLD
from candlecast.trading.stats import performance

log = logging.getLogger(__name__)


@dataclass
class StrategyRun:
    """One strategy's run: its equity curve, fills and statistics, and the engine's time."""

    name: str
    equity: pd.DataFrame
    fills: pd.DataFrame
    stats: dict[str, float]
    engine_seconds: float
    stop_ms: float | None = None


@dataclass
class TradeResult:
    """Every strategy of one comparison, on one window under one config, with the forecasts' lineage."""

    window: TradeWindow
    config: TradingConfig
    runs: dict[str, StrategyRun] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """One row per strategy: the statistics, in the order the strategies ran."""
        return pd.DataFrame({name: run.stats for name, run in self.runs.items()}).T.rename_axis("strategy")

    @property
    def engine_seconds(self) -> float:
        """Seconds spent in NautilusTrader's ``engine.run()`` over all strategies."""
        return float(sum(r.engine_seconds for r in self.runs.values()))


def validate_all(
    frames: dict[str, pd.DataFrame], market: Market, cfg: TradingConfig
) -> tuple[dict[str, pd.DataFrame], TradeWindow]:
    """Validate every frame; all must trade the same window, or the comparison would not be fair."""
    if not frames:
        raise ForecastError("no forecast frames to trade: name models or pass a forecast file")
    checked, windows = {}, {}
    for name, frame in frames.items():
        try:
            checked[name], windows[name] = validate_forecasts(frame, market.candles, market.timeframe, cfg.min_coverage)
        except ForecastError as exc:
            raise ForecastError(f"{name}: {exc}") from None
    first = next(iter(windows.values()))
    differ = {n: w for n, w in windows.items() if w != first}
    if differ:
        raise ForecastError(
            f"forecast frames span different windows {_spans(windows)}: "
            "trade forecasts from one backtest or one prediction run, so every strategy sees the same bars"
        )
    return checked, first


def _spans(windows: dict[str, TradeWindow]) -> str:
    return ", ".join(f"{n}: {w.start}..{w.end} hold {w.horizon}" for n, w in windows.items())


def target_table(frame: pd.DataFrame, cfg: TradingConfig, step_ms: int, n_symbols: int) -> pd.DataFrame:
    """Targets keyed by the bar close each forecast is usable on: cutoff (last input candle's open) + one bar."""
    return pd.DataFrame(
        {
            "symbol": frame["symbol"].to_numpy(),
            "ts": frame["cutoff"].to_numpy("int64") + step_ms,
            "target": target_exposures(frame, cfg.policy, n_symbols),
        }
    )


def trade_backtest(
    market: Market, frames: dict[str, pd.DataFrame], cfg: TradingConfig, buy_and_hold: bool = True
) -> TradeResult:
    """Run every frame's strategy and buy-and-hold through NautilusTrader over the same window."""
    checked, window = validate_all(frames, market, cfg)
    result = TradeResult(window, cfg)
    n = len(market.candles)
    for name, frame in checked.items():
        run = run_engine(market, window, cfg, targets=target_table(frame, cfg, market.step, n))
        result.runs[name] = summarize(name, run, market, cfg)
        log.info("%s: return %.2f%% in %.1f s", name, 100 * result.runs[name].stats["total_return"], run.seconds)
    if buy_and_hold:
        run = run_engine(market, window, cfg, hold_target=per_symbol_cap(cfg.policy, n))
        result.runs[BUY_AND_HOLD] = summarize(BUY_AND_HOLD, run, market, cfg)
    return result


def summarize(name: str, run: EngineRun, market: Market, cfg: TradingConfig) -> StrategyRun:
    """One engine run as a StrategyRun: equity rebuilt from its fills (checked against the account), statistics."""
    capital = cfg.execution.starting_capital
    equity = equity_curve(run.fills, market, run.window, capital)
    final = float(equity["equity"].iloc[-1])
    if not np.isclose(final, run.cash, rtol=1e-6, atol=0.01):
        raise RuntimeError(
            f"{name}: equity rebuilt from fills ends at {final:.2f} but the NautilusTrader account holds "
            f"{run.cash:.2f}: the fills and the account disagree (a fill was missed or a position left open)"
        )
    stats = performance(equity, run.fills, market.step, capital)
    stats["engine_seconds"] = run.seconds
    return StrategyRun(name, equity, run.fills, stats, run.seconds, run.stop_ms)
