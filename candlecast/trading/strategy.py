"""The forecast-driven NautilusTrader strategy. Imported only by the engine bridge (it loads NautilusTrader).

Targets are precomputed per (instrument, bar close) by the sizing policy; the strategy owns what
depends on the account: the no-trade band against the position it holds, expiry of a forecast after
its holding period, the drawdown stop and the final flattening. A bar's ``ts_event`` is its close
time, so the target stamped for that close is the forecast made at that close: never earlier.
"""

from __future__ import annotations

import pandas as pd
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.objects import Currency
from nautilus_trader.trading.strategy import Strategy

from candlecast.trading.policy import rebalance


class ForecastStrategyConfig(StrategyConfig, frozen=True):
    """Serializable settings (a file path, not a frame, so the config can travel like any other)."""

    targets_path: str  # parquet: instrument_id, ts_ns (the bar close a forecast is usable on), target
    instrument_ids: list[str]
    bar_types: list[str]
    venue: str
    quote: str
    start_ns: int  # first bar close of the window
    end_ns: int  # last bar close of the window: everything is flat after it
    life_ns: int  # a forecast expires this long after the bar it was usable on (its holding period)
    no_trade_band: float = 0.0
    max_exposure: float | None = None  # per-symbol cap: a position drifting past it by LIMIT_SLACK is trimmed
    max_drawdown: float | None = None
    hold_target: float | None = None  # buy and hold: this exposure from the first bar to the last, never rebalanced


#: How far (relative) a position may drift past its cap before it is trimmed back, so a hard limit does
#: not turn into a small trade on every bar of a trend.
LIMIT_SLACK = 0.05


class ForecastStrategy(Strategy):
    def __init__(self, config: ForecastStrategyConfig):
        super().__init__(config)
        self.cfg = config
        self.targets: dict[tuple[str, int], float] = {}
        self.live: dict[str, int] = {}  # instrument -> ts of the forecast being held
        self.peak = 0.0
        self.stopped = False
        self.stop_ns: int | None = None

    def on_start(self) -> None:
        frame = pd.read_parquet(self.cfg.targets_path)
        self.targets = dict(
            zip(zip(frame["instrument_id"], frame["ts_ns"].astype("int64"), strict=True), frame["target"], strict=True)
        )
        self.venue = Venue(self.cfg.venue)
        self.quote = Currency.from_str(self.cfg.quote)
        for bar_type in self.cfg.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_bar(self, bar: Bar) -> None:
        ts = bar.ts_event
        if ts < self.cfg.start_ns or self.stopped:
            return
        iid = bar.bar_type.instrument_id
        if ts >= self.cfg.end_ns:
            self._trade_to(iid, 0.0, float(bar.close))
            return
        if self._drawdown_hit():
            return
        if self.cfg.hold_target is not None:
            if str(iid) not in self.live:  # buy once, on the first bar of the window
                self.live[str(iid)] = ts
                self._trade_to(iid, self.cfg.hold_target, float(bar.close))
            return
        self._follow_forecast(iid, ts, float(bar.close))

    def _follow_forecast(self, iid: InstrumentId, ts: int, price: float) -> None:
        key = str(iid)
        target = self.targets.get((key, ts))
        if target is not None:
            self.live[key] = ts
            current = self._exposure(iid, price)
            wanted = rebalance(target, current, self.cfg.no_trade_band)
            if wanted != current:
                self._trade_to(iid, wanted, price)
            return
        since = self.live.get(key)
        if since is not None and ts - since >= self.cfg.life_ns:
            del self.live[key]  # the holding period this forecast spoke about is over
            self._trade_to(iid, 0.0, price)
            return
        self._enforce_cap(iid, price)

    def _enforce_cap(self, iid: InstrumentId, price: float) -> None:
        cap = self.cfg.max_exposure
        if cap is None:
            return
        current = self._exposure(iid, price)
        if abs(current) > cap * (1 + LIMIT_SLACK):
            self._trade_to(iid, cap if current > 0 else -cap, price)

    def _drawdown_hit(self) -> bool:
        if self.cfg.max_drawdown is None:
            return False
        equity = self._equity()
        self.peak = max(self.peak, equity)
        if self.peak > 0 and equity < self.peak * (1 - self.cfg.max_drawdown):
            self.stopped, self.stop_ns = True, self.clock.timestamp_ns()
            self.log.warning(f"drawdown stop: equity {equity:.2f} is {1 - equity / self.peak:.1%} below its peak")
            for iid in self.cfg.instrument_ids:
                self._trade_to(InstrumentId.from_str(iid), 0.0, None)
            return True
        return False

    def _equity(self) -> float:
        """Marked-to-market equity: the margin account's cash plus every open position's unrealized PnL."""
        cash = self.portfolio.account(self.venue).balance_total(self.quote).as_double()
        unrealized = self.portfolio.unrealized_pnls(self.venue).get(self.quote)
        return cash + (unrealized.as_double() if unrealized is not None else 0.0)

    def _exposure(self, iid: InstrumentId, price: float) -> float:
        equity = self._equity()
        return float(self.portfolio.net_position(iid)) * price / equity if equity > 0 else 0.0

    def _trade_to(self, iid: InstrumentId, target: float, price: float | None) -> None:
        """Send one market order for the difference between the target and the held quantity."""
        held = float(self.portfolio.net_position(iid))
        if price is None:
            wanted = 0.0
        else:
            equity = self._equity()
            wanted = target * max(equity, 0.0) / price
        instrument = self.cache.instrument(iid)
        qty = instrument.make_qty(abs(wanted - held))
        if qty.as_double() <= 0.0:
            return
        side = OrderSide.BUY if wanted > held else OrderSide.SELL
        self.submit_order(self.order_factory.market(iid, side, qty))

    def on_stop(self) -> None:
        for iid in self.cfg.instrument_ids:
            self.close_all_positions(InstrumentId.from_str(iid))
