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
from nautilus_trader.trading.strategy import Strategy

from candlecast.trading.policy import rebalance


class ForecastStrategyConfig(StrategyConfig, frozen=True):
    """Serializable settings (a file path, not a frame, so the config can travel like any other)."""

    targets_path: str  # parquet: instrument_id, ts_ns (the bar close a forecast is usable on), target
    instrument_ids: list[str]
    bar_types: list[str]
    venue: str
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
    """Targets in, market orders out; equity kept from its own fills (cash) and the last closes.

    The ledger costs a few additions per bar, where asking the portfolio for unrealized PnL on every
    bar costs more than the engine itself; the trade report's equity is rebuilt independently
    (candlecast.trading.equity) and checked against the account at the end.
    """

    def __init__(self, config: ForecastStrategyConfig):
        super().__init__(config)
        self.cfg = config
        self.targets: dict[tuple[str, int], float] = {}
        self.live: dict[str, int] = {}  # instrument -> ts of the forecast being held
        self.qty: dict[str, float] = {iid: 0.0 for iid in config.instrument_ids}
        self.last: dict[str, float] = {}
        self.cash = 0.0
        self.peak = 0.0
        self.stopped = False
        self.stop_ns: int | None = None

    def on_start(self) -> None:
        """Read the targets, take the starting cash from the account, subscribe to every bar type."""
        frame = pd.read_parquet(self.cfg.targets_path)
        keys = zip(frame["instrument_id"], frame["ts_ns"].astype("int64"), strict=True)
        self.targets = dict(zip(keys, frame["target"], strict=True))
        self.cash = self.portfolio.account(Venue(self.cfg.venue)).balance_total().as_double()
        for bar_type in self.cfg.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_order_filled(self, event) -> None:
        """Book the fill: position, and cash after its price and fee."""
        signed = event.last_qty.as_double() * (1.0 if event.order_side == OrderSide.BUY else -1.0)
        key = str(event.instrument_id)
        self.qty[key] = round(self.qty[key] + signed, 9)  # quantities have at most 9 decimals: drop float noise
        self.cash -= signed * event.last_px.as_double() + event.commission.as_double()

    def on_bar(self, bar: Bar) -> None:
        """At each bar's close: flatten at the window's end, check the stop, then follow the forecast."""
        ts, key = bar.ts_event, str(bar.bar_type.instrument_id)
        self.last[key] = float(bar.close)
        if ts < self.cfg.start_ns or self.stopped:
            return
        if ts >= self.cfg.end_ns:
            self._trade_to(key, 0.0)
            return
        if self._drawdown_hit():
            return
        if self.cfg.hold_target is not None:
            if key not in self.live:  # buy once, on the first bar of the window
                self.live[key] = ts
                self._trade_to(key, self.cfg.hold_target)
            return
        self._follow_forecast(key, ts)

    def _follow_forecast(self, key: str, ts: int) -> None:
        target = self.targets.get((key, ts))
        if target is not None:
            self.live[key] = ts
            current = self._exposure(key)
            wanted = rebalance(target, current, self.cfg.no_trade_band)
            if wanted != current:
                self._trade_to(key, wanted)
            return
        since = self.live.get(key)
        if since is not None and ts - since >= self.cfg.life_ns:
            del self.live[key]  # the holding period this forecast spoke about is over
            self._trade_to(key, 0.0)
            return
        self._enforce_cap(key)

    def _enforce_cap(self, key: str) -> None:
        cap = self.cfg.max_exposure
        if cap is None:
            return
        current = self._exposure(key)
        if abs(current) > cap * (1 + LIMIT_SLACK):
            self._trade_to(key, cap if current > 0 else -cap)

    def _drawdown_hit(self) -> bool:
        if self.cfg.max_drawdown is None:
            return False
        equity = self._equity()
        self.peak = max(self.peak, equity)
        if self.peak > 0 and equity < self.peak * (1 - self.cfg.max_drawdown):
            self.stopped, self.stop_ns = True, self.clock.timestamp_ns()
            self.log.warning(f"drawdown stop: equity {equity:.2f} is {1 - equity / self.peak:.1%} below its peak")
            for key in self.cfg.instrument_ids:
                self._trade_to(key, 0.0)
            return True
        return False

    def _equity(self) -> float:
        """Marked to market: cash after every fill and fee, plus each position at its last close."""
        return self.cash + sum(q * self.last.get(k, 0.0) for k, q in self.qty.items() if q)

    def _exposure(self, key: str) -> float:
        equity = self._equity()
        return self.qty[key] * self.last[key] / equity if equity > 0 else 0.0

    def _trade_to(self, key: str, exposure: float) -> None:
        """Send one market order for the difference between the wanted exposure and the held quantity."""
        held = self.qty[key]
        price = self.last.get(key)
        wanted = 0.0 if exposure == 0.0 or not price else exposure * max(self._equity(), 0.0) / price
        iid = InstrumentId.from_str(key)
        instrument = self.cache.instrument(iid)
        if abs(wanted - held) < 0.5 * 10.0**-instrument.size_precision:
            return  # less than one size increment: nothing to send
        qty = instrument.make_qty(abs(wanted - held))
        side = OrderSide.BUY if wanted > held else OrderSide.SELL
        self.submit_order(self.order_factory.market(iid, side, qty))

    def on_stop(self) -> None:
        """Close anything still open (the window's last bar normally has)."""
        for iid in self.cfg.instrument_ids:
            self.close_all_positions(InstrumentId.from_str(iid))
