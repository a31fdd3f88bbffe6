"""Two processes upsert the same series at once: the per-series lock loses no candle (spawned processes: slow)."""

import multiprocessing as mp
from pathlib import Path

import pandas as pd

from candlecast.data.candle_store import CandleStore
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

START = 1_704_067_200_000
KEY = SeriesKey("binance", "BTC/USDT", "1h")


def _writer(root: str, offset: int) -> None:
    candles = synthetic_candles("BTC/USDT", START, 400)
    store = CandleStore(Path(root))
    for i in range(offset, 400, 40):
        store.upsert(KEY, candles.iloc[i : i + 20])


def test_two_writers_never_lose_candles(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), off)) for off in (0, 20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    out = CandleStore(tmp_path).read(KEY)
    pd.testing.assert_frame_equal(out, synthetic_candles("BTC/USDT", START, 400))
