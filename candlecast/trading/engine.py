"""The NautilusTrader bridge: candles become bars on a margin venue, targets become fills.

Candle timestamps are OPEN times; a NautilusTrader bar carries its CLOSE time (``ts_event``) and
the strategy sees it at the close, so bars are stamped ``open + one candle``. The venue is MARGIN
with NETTING (long, flat and short on one position per instrument), fees are the instrument's maker
and taker fees, and every market order fills ``slippage_bps`` worse than the quote. In ``next_open``
mode orders reach the venue after ``latency_ms`` and fill at the next candle's open, which the venue
sees as a quote at ``close + latency``; in ``close`` mode they fill at the decision bar's close.
NautilusTrader is imported inside these functions only.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.io import write_parquet
from candlecast.schema import timeframe_ms
from candlecast.trading.config import TradingConfig
from candlecast.trading.forecasts import TradeWindow
from candlecast.trading.policy import per_symbol_cap

VENUE = "BINANCE"
_BAR_UNITS = {"m": "MINUTE", "h": "HOUR", "d": "DAY", "w": "WEEK"}
_NS = 1_000_000


@dataclass(frozen=True)
class Market:
    """The candles one trading run sees: symbol -> candle frame (CANDLE_COLUMNS, open times, sorted)."""

    timeframe: str
    candles: dict[str, pd.DataFrame]

    @property
    def step(self) -> int:
        """One candle, in ms."""
        return timeframe_ms(self.timeframe)

    @property
    def quote(self) -> str:
        """The one currency every symbol settles in (the account's), or a clear error."""
        quotes = {s.split("/")[1] for s in self.candles}
        if len(quotes) != 1:
            raise ValueError(f"symbols {sorted(self.candles)} settle in {sorted(quotes)}: trade one quote currency")
        return quotes.pop()


@dataclass(frozen=True)
class EngineRun:
    """What came out of one engine run: every fill, the account's cash, and how long it took."""

    fills: pd.DataFrame  # ts (ms, float), symbol, qty (signed), price, fee
    cash: float  # the margin account's final balance (realized PnL minus fees: flat at the end, so equity)
    stop_ms: float | None
    seconds: float
    bars: int
    window: TradeWindow  # the window actually traded (next_open needs a candle after the last bar)


def instrument_id(symbol: str) -> str:
    """NautilusTrader's id of a symbol on the simulated venue, e.g. BTCUSDT.BINANCE."""
    return f"{symbol.replace('/', '')}.{VENUE}"


def bar_type(symbol: str, timeframe: str) -> str:
    """The bar type string of a symbol's candles, e.g. BTCUSDT.BINANCE-1-HOUR-LAST-EXTERNAL."""
    return f"{instrument_id(symbol)}-{timeframe[:-1]}-{_BAR_UNITS[timeframe[-1]]}-LAST-EXTERNAL"


def run_engine(
    market: Market,
    window: TradeWindow,
    cfg: TradingConfig,
    targets: pd.DataFrame | None = None,
    hold_target: float | None = None,
    max_exposure: float | None = None,
) -> EngineRun:
    """Run one strategy over the window: forecast targets (symbol, ts_ms, target) or buy-and-hold.

    ``max_exposure`` replaces the per-symbol cap (the policy's equal share) for targets that already
    come as portfolio weights.
    """
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.identifiers import TraderId, Venue

    from candlecast.trading.strategy import ForecastStrategy, ForecastStrategyConfig

    window = clip_window(market, window, cfg)
    if max_exposure is None and hold_target is None:
        max_exposure = per_symbol_cap(cfg.policy, len(market.candles))
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("CANDLECAST-001"),
            logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
            run_analysis=False,
        )
    )
    try:
        _add_venue(engine, market, cfg)
        bars = _add_data(engine, market, window, cfg)
        with tempfile.TemporaryDirectory(prefix="candlecast-trade-") as tmp:
            path = _write_targets(targets, Path(tmp) / "targets.parquet")
            strategy = ForecastStrategy(
                ForecastStrategyConfig(
                    targets_path=str(path),
                    instrument_ids=[instrument_id(s) for s in market.candles],
                    bar_types=[bar_type(s, market.timeframe) for s in market.candles],
                    venue=VENUE,
                    start_ns=window.start * _NS,
                    end_ns=window.end * _NS,
                    life_ns=window.horizon * market.step * _NS,
                    no_trade_band=cfg.policy.no_trade_band,
                    max_exposure=max_exposure,
                    max_drawdown=cfg.policy.max_drawdown,
                    hold_target=hold_target,
                )
            )
            engine.add_strategy(strategy)
            started = time.perf_counter()
            engine.run()
            seconds = time.perf_counter() - started
        account = engine.portfolio.account(Venue(VENUE))
        cash = account.balance_total(account.base_currency).as_double()
        stop = strategy.stop_ns / _NS if strategy.stop_ns is not None else None
        return EngineRun(_fills(engine, market), cash, stop, seconds, bars, window)
    finally:
        engine.dispose()


def clip_window(market: Market, window: TradeWindow, cfg: TradingConfig) -> TradeWindow:
    """In next_open mode the last traded bar needs a candle after it (its open is the exit price)."""
    if cfg.execution.mode != "next_open":
        return window
    last = min(int(c["timestamp"].iloc[-1]) for c in market.candles.values())  # last candle with a next open
    end = min(window.end, last)
    if end < window.start:
        raise ValueError("the candles end before the first forecast can be traded: extend the candles")
    return TradeWindow(window.start, end, window.horizon)


def _add_venue(engine, market: Market, cfg: TradingConfig, precision: dict[str, tuple[int, int]] | None = None) -> None:
    from nautilus_trader.backtest.models import MakerTakerFeeModel
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Currency, Money

    ex = cfg.execution
    quote = Currency.from_str(market.quote)
    engine.add_venue(
        venue=Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=quote,
        starting_balances=[Money(ex.starting_capital, quote)],
        default_leverage=Decimal(str(ex.venue_leverage)),
        fill_model=slippage_fill_model(ex.slippage_bps),
        fee_model=MakerTakerFeeModel(),
        latency_model=_latency(cfg),
    )
    for symbol, candles in market.candles.items():
        fixed = (precision or {}).get(symbol)
        engine.add_instrument(make_instrument(symbol, candles, ex.maker_fee_bps, ex.taker_fee_bps, fixed))


def _latency(cfg: TradingConfig):
    if cfg.execution.mode != "next_open":
        return None
    from nautilus_trader.backtest.models import LatencyModel

    return LatencyModel(base_latency_nanos=cfg.execution.latency_ms * _NS)


def _add_data(engine, market: Market, window: TradeWindow, cfg: TradingConfig) -> int:
    """Bars stamped at their close inside the window; in next_open mode, the next open as a quote."""
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.wranglers import BarDataWrangler, QuoteTickDataWrangler

    step, count = market.step, 0
    for symbol, candles in market.candles.items():
        instrument = engine.cache.instrument(_iid(symbol))
        close_ms = candles["timestamp"].to_numpy("int64") + step
        keep = (close_ms >= window.start) & (close_ms <= window.end)
        frame = candles.loc[keep, ["open", "high", "low", "close", "volume"]]
        frame.index = pd.to_datetime(close_ms[keep], unit="ms", utc=True)
        bars = BarDataWrangler(BarType.from_str(bar_type(symbol, market.timeframe)), instrument).process(frame)
        engine.add_data(bars)
        count += len(bars)
        if cfg.execution.mode == "next_open":
            next_open = candles["open"].shift(-1).to_numpy("float64")[keep]
            at = close_ms[keep] + cfg.execution.latency_ms
            ok = np.isfinite(next_open)
            index = pd.to_datetime(at[ok], unit="ms", utc=True)
            quotes = pd.DataFrame({"bid_price": next_open[ok], "ask_price": next_open[ok]}, index=index)
            engine.add_data(QuoteTickDataWrangler(instrument).process(quotes))
    return count


def _iid(symbol: str):
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(instrument_id(symbol))


def make_instrument(
    symbol: str, candles: pd.DataFrame, maker_bps: float, taker_bps: float, precision: tuple[int, int] | None = None
):
    """A spot pair traded on margin, with the candles' price precision and the configured fees.

    ``precision`` (price, size decimals) fixes them instead: a paper account rebuilt after a restart
    must trade the instrument it started with, whatever the candles since show.
    """
    from nautilus_trader.model.identifiers import Symbol
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Currency, Price, Quantity

    base, quote = symbol.split("/")
    price_precision, size_precision = precision or instrument_precision(candles)
    return CurrencyPair(
        instrument_id=_iid(symbol),
        raw_symbol=Symbol(symbol.replace("/", "")),
        base_currency=Currency.from_str(base),
        quote_currency=Currency.from_str(quote),
        price_precision=price_precision,
        size_precision=size_precision,
        price_increment=Price(10.0**-price_precision, price_precision),
        size_increment=Quantity(10.0**-size_precision, size_precision),
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal(str(maker_bps)) / Decimal(10_000),
        taker_fee=Decimal(str(taker_bps)) / Decimal(10_000),
        ts_event=0,
        ts_init=0,
    )


def instrument_precision(candles: pd.DataFrame) -> tuple[int, int]:
    """Price decimals (the candles' tick) and size decimals (finer for cheaper coins) of a symbol."""
    prices = candles[["open", "high", "low", "close"]].to_numpy("float64")
    return _decimals(prices), int(np.clip(np.ceil(np.log10(float(np.median(prices)))) + 2, 0, 8))


def _decimals(prices: np.ndarray, most: int = 8) -> int:
    """The fewest decimals that write every price exactly (the exchange's tick, as far as the data shows)."""
    for p in range(most + 1):
        scaled = prices * 10.0**p
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6):
            return p
    return most


def slippage_fill_model(slippage_bps: float):
    """A FillModel whose simulated book quotes ``slippage_bps`` beyond the best bid and ask, without limit."""
    from nautilus_trader.backtest.models import FillModel
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import BookOrder
    from nautilus_trader.model.enums import BookType, OrderSide

    slip = slippage_bps / 10_000

    class SlippageFillModel(FillModel):
        def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
            book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
            size = instrument.make_qty(1e9 / 10**instrument.size_precision)
            bid = instrument.make_price(best_bid.as_double() * (1 - slip))
            ask = instrument.make_price(best_ask.as_double() * (1 + slip))
            book.add(BookOrder(side=OrderSide.BUY, price=bid, size=size, order_id=1), 0, 0)
            book.add(BookOrder(side=OrderSide.SELL, price=ask, size=size, order_id=2), 0, 0)
            return book

    return SlippageFillModel()


def _write_targets(targets: pd.DataFrame | None, path: Path) -> Path:
    frame = targets if targets is not None else pd.DataFrame({"symbol": [], "ts": [], "target": []})
    out = pd.DataFrame(
        {
            "instrument_id": [instrument_id(s) for s in frame["symbol"]],
            "ts_ns": np.asarray(frame["ts"], dtype="int64") * _NS,
            "target": np.asarray(frame["target"], dtype="float64"),
        }
    )
    write_parquet(out, path)
    return path


def _fills(engine, market: Market) -> pd.DataFrame:
    """Every fill as numbers: time (ms), symbol, signed quantity, price, fee in the quote currency."""
    by_id = {instrument_id(s): s for s in market.candles}
    rows = []
    for order in engine.cache.orders():
        for event in order.events:
            if type(event).__name__ != "OrderFilled":
                continue
            sign = 1.0 if event.order_side.name == "BUY" else -1.0
            rows.append(
                (
                    event.ts_event / _NS,
                    by_id[str(event.instrument_id)],
                    sign * event.last_qty.as_double(),
                    event.last_px.as_double(),
                    event.commission.as_double(),
                )
            )
    frame = pd.DataFrame(rows, columns=["ts", "symbol", "qty", "price", "fee"])
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
