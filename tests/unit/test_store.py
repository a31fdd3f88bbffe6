"""The candle store: idempotent atomic upserts, safe under concurrent writers, readable by plain pandas."""

import multiprocessing as mp
from pathlib import Path

import pandas as pd
import pytest

from candlecast.schema import SeriesKey
from candlecast.store import CandleStore
from candlecast.synthetic import synthetic_candles

START = 1_704_067_200_000
KEY = SeriesKey("binance", "BTC/USDT", "1h")


def test_upsert_is_idempotent_and_newer_wins(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    assert store.upsert(KEY, candles.iloc[:60]) == 60
    assert store.upsert(KEY, candles.iloc[40:]) == 40  # overlapping batch adds only the new 40
    assert store.upsert(KEY, candles) == 0  # same again: nothing new
    fixed = candles.iloc[[10]].assign(close=candles["close"].iloc[10] * 1.01)
    store.upsert(KEY, fixed)
    out = store.read(KEY)
    assert len(out) == 100 and out["timestamp"].is_monotonic_increasing
    assert out["close"].iloc[10] == pytest.approx(candles["close"].iloc[10] * 1.01)
    assert store.last_timestamp(KEY) == int(candles["timestamp"].iloc[-1])
    assert store.manifest(KEY)["rows"] == 100
    assert not list(store.series_dir(KEY).glob("*.tmp"))


def test_layout_is_readable_without_candlecast(tmp_path):
    store = CandleStore(tmp_path)
    store.upsert(KEY, synthetic_candles("BTC/USDT", START, 10))
    store.upsert(SeriesKey("binance", "ETH/USDT", "1h"), synthetic_candles("ETH/USDT", START, 5))
    frame = pd.read_parquet(tmp_path)  # hive partitions become columns
    assert len(frame) == 15
    assert set(frame["symbol"].astype(str)) == {"BTC-USDT", "ETH-USDT"}
    assert store.list_series() == [KEY, SeriesKey("binance", "ETH/USDT", "1h")]


def test_wrong_columns_are_refused(tmp_path):
    with pytest.raises(ValueError, match="columns"):
        CandleStore(tmp_path).upsert(KEY, synthetic_candles("BTC/USDT", START, 5).drop(columns=["volume"]))


def test_empty_store_reads_empty(tmp_path):
    store = CandleStore(tmp_path)
    assert store.read(KEY).empty and store.last_timestamp(KEY) is None


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
