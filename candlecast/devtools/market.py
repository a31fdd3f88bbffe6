"""The run config's synthetic market behind a local emulator: what ``exchange.emulator`` turns on.

The composition root (the ingest task, the CLI) opens it when a config asks for the emulator and hands
the data layer its URL as an ordinary endpoint; ``candlecast.data`` never imports this package.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from candlecast.config import RunConfig
from candlecast.devtools.emulator import synthetic_emulator
from candlecast.devtools.sentiment import synthetic_fear_greed
from candlecast.devtools.synthetic import Signal, synthetic_candles
from candlecast.io import write_csv
from candlecast.schema import timeframe_ms

#: The markets the synthetic exchange lists (as an exchange lists its own): a symbol outside them is
#: refused as a real exchange would refuse it, rather than invented.
SYNTHETIC_MARKETS = (
    "BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "ADA/USDT", "TRX/USDT", "AVAX/USDT",
    "LINK/USDT", "DOT/USDT", "LTC/USDT", "BCH/USDT", "ATOM/USDT", "NEAR/USDT", "UNI/USDT", "XLM/USDT", "ETC/USDT",
    "FIL/USDT", "ETH/BTC",
)  # fmt: skip


def synthetic_market(cfg: RunConfig) -> str:
    """The configured synthetic market in words: what decides its candles besides the seed (not its clock)."""
    ex = cfg.exchange
    start = ex.synthetic_start.strftime("%Y-%m-%d %H:%M")
    regime = f", vol_regime {ex.synthetic_vol_regime}" if ex.synthetic_vol_regime else ""
    knobs = f"ar_phi {ex.synthetic_ar_phi}, hour_mean {ex.synthetic_hour_mean}{regime}"
    return f"synthetic market (from {start} UTC, {knobs})"


def check_synthetic_symbols(symbols: Iterable[str]) -> None:
    """Raise ValueError, in one line listing a few it has, for symbols the synthetic market does not list."""
    unknown = [s for s in symbols if s not in SYNTHETIC_MARKETS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], SYNTHETIC_MARKETS, n=2)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"the emulator's synthetic market has no {', '.join(map(repr, unknown))}{hint}: it lists "
            f"{len(SYNTHETIC_MARKETS)} markets, e.g. {', '.join(SYNTHETIC_MARKETS[:6])}; use one of them "
            "(or set exchange.emulator: false to fetch from the exchange)"
        )


@contextmanager
def config_emulator(cfg: RunConfig, now_ms: int, symbols: Iterable[str] | None = None) -> Iterator[str]:
    """A started emulator of the configured synthetic market on 127.0.0.1, serving ``symbols``; yields its URL.

    ``symbols`` (default the config's) must be among ``SYNTHETIC_MARKETS``: it serves only markets it
    lists, so ``load_markets`` answers only those and anything else is refused before it starts.

    Its history runs from ``exchange.synthetic_start`` to ``now_ms`` (the exchange clock: the pinned
    ``exchange.synthetic_end`` or now, so a later run sees the same past candles plus the ones that
    closed since), seeded, with the configured strength of learnable signal. With
    ``exchange.synthetic_sentiment_path`` it also writes the seeded daily fear & greed index there.
    """
    served = list(cfg.data.symbols if symbols is None else symbols)
    check_synthetic_symbols(served)
    step = timeframe_ms(cfg.data.timeframe)
    start = int(cfg.exchange.synthetic_start.timestamp() * 1000) // step * step
    n = (now_ms - start) // step + 1
    if n < 2:
        raise ValueError(f"exchange.synthetic_start {cfg.exchange.synthetic_start} is not before the exchange clock")
    ex = cfg.exchange
    signal = Signal(ar_phi=ex.synthetic_ar_phi, hour_mean=ex.synthetic_hour_mean, vol_regime=ex.synthetic_vol_regime)
    if cfg.exchange.synthetic_sentiment_path is not None:
        first = synthetic_candles(cfg.data.symbols[0], start, n, cfg.data.timeframe, cfg.exchange.seed, signal=signal)
        write_csv(synthetic_fear_greed(first, cfg.exchange.seed), Path(cfg.exchange.synthetic_sentiment_path))
    emulator = synthetic_emulator(
        served, timeframe=cfg.data.timeframe, start_ms=start, n=n, seed=cfg.exchange.seed, now_ms=now_ms,
        signal=signal,
    )  # fmt: skip
    with emulator:
        yield emulator.url
