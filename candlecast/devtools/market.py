"""The run config's synthetic market behind a local emulator: what ``exchange.emulator`` turns on.

The composition root (the ingest task, the CLI) opens it when a config asks for the emulator and hands
the data layer its URL as an ordinary endpoint; ``candlecast.data`` never imports this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from candlecast.config import RunConfig
from candlecast.devtools.emulator import synthetic_emulator
from candlecast.devtools.sentiment import synthetic_fear_greed
from candlecast.devtools.synthetic import Signal, synthetic_candles
from candlecast.io import write_csv
from candlecast.schema import timeframe_ms


@contextmanager
def config_emulator(cfg: RunConfig, now_ms: int) -> Iterator[str]:
    """A started emulator of the configured synthetic market on 127.0.0.1; yields its base URL.

    Its history runs from ``exchange.synthetic_start`` to ``now_ms`` (the exchange clock: the pinned
    ``exchange.synthetic_end`` or now, so a later run sees the same past candles plus the ones that
    closed since), seeded, with the configured strength of learnable signal. With
    ``exchange.synthetic_sentiment_path`` it also writes the seeded daily fear & greed index there.
    """
    step = timeframe_ms(cfg.data.timeframe)
    start = int(cfg.exchange.synthetic_start.timestamp() * 1000) // step * step
    n = (now_ms - start) // step + 1
    if n < 2:
        raise ValueError(f"exchange.synthetic_start {cfg.exchange.synthetic_start} is not before the exchange clock")
    signal = Signal(ar_phi=cfg.exchange.synthetic_ar_phi, hour_mean=cfg.exchange.synthetic_hour_mean)
    if cfg.exchange.synthetic_sentiment_path is not None:
        first = synthetic_candles(cfg.data.symbols[0], start, n, cfg.data.timeframe, cfg.exchange.seed, signal=signal)
        write_csv(synthetic_fear_greed(first, cfg.exchange.seed), Path(cfg.exchange.synthetic_sentiment_path))
    emulator = synthetic_emulator(
        cfg.data.symbols, timeframe=cfg.data.timeframe, start_ms=start, n=n, seed=cfg.exchange.seed, now_ms=now_ms,
        signal=signal,
    )  # fmt: skip
    with emulator:
        yield emulator.url
