"""The candle store: idempotent atomic upserts, safe under concurrent writers, readable by plain pandas."""

from pathlib import Path

import pandas as pd
import pytest

from candlecast.data.candle_store import CandleStore, CorruptPartition
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

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


def test_one_file_per_year_readable_by_pandas_pyarrow_and_duckdb(tmp_path):
    import duckdb
    import pyarrow.dataset as ds

    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START - 48 * 3_600_000, 24 * 400)  # 2023-12-30 .. 2025-02
    store.upsert(KEY, candles)
    folder = store.series_dir(KEY)
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["2023.parquet", "2024.parquet", "2025.parquet"]
    pd.testing.assert_frame_equal(store.read(KEY), candles)
    pd.testing.assert_frame_equal(pd.read_parquet(store.path(KEY)).sort_values("timestamp", ignore_index=True), candles)
    assert ds.dataset(folder, format="parquet").count_rows() == len(candles)
    sql = f"SELECT count(*), min(timestamp), max(timestamp) FROM read_parquet('{tmp_path}/**/*.parquet')"
    assert duckdb.sql(sql).fetchall() == [(len(candles), candles["timestamp"].iloc[0], candles["timestamp"].iloc[-1])]
    # the newest files that hold what a forecast of today needs, never more than it takes
    tail = candles[candles["timestamp"] >= 1_735_689_600_000].reset_index(drop=True)  # 2025's candles
    pd.testing.assert_frame_equal(store.read_recent(KEY, len(tail)), tail)
    pd.testing.assert_frame_equal(store.read_recent(KEY, len(tail) + 1), candles.iloc[48:].reset_index(drop=True))
    pd.testing.assert_frame_equal(store.read_recent(KEY, 10**6), candles)
    manifest = store.manifest(KEY)
    assert manifest["rows"] == len(candles) and set(manifest["files"]) == {
        "2023.parquet",
        "2024.parquet",
        "2025.parquet",
    }


def test_minute_series_get_a_file_per_month_and_an_upsert_rewrites_only_its_months(tmp_path):
    key = SeriesKey("binance", "BTC/USDT", "1m")
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 60 * 24 * 40, timeframe="1m")  # January and 9 days of February
    store.upsert(key, candles.iloc[:-10])
    jan = store.series_dir(key) / "2024-01.parquet"
    before = jan.stat().st_mtime_ns
    assert store.upsert(key, candles.iloc[-20:]) == 10
    assert jan.stat().st_mtime_ns == before  # January untouched by a February update
    pd.testing.assert_frame_equal(store.read(key), candles)


def test_gaps_are_recorded_not_filled(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 50)
    store.upsert(KEY, candles.drop(index=[10, 11, 30]))
    manifest = store.manifest(KEY)
    assert manifest["missing"] == 3 and [g["missing"] for g in manifest["gaps"]] == [2, 1]
    assert len(store.read(KEY)) == 47


def test_a_legacy_single_file_is_folded_into_period_files(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    legacy = store.series_dir(KEY) / "candles.parquet"
    legacy.parent.mkdir(parents=True)
    candles.iloc[:60].to_parquet(legacy, index=False)
    pd.testing.assert_frame_equal(store.read(KEY), candles.iloc[:60])
    assert store.last_timestamp(KEY) == candles["timestamp"].iloc[59]
    assert store.upsert(KEY, candles.iloc[50:]) == 40
    assert not legacy.exists()
    pd.testing.assert_frame_equal(store.read(KEY), candles)


def test_repair_removes_a_dead_writers_debris_and_refreshes_a_stale_manifest(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    store.upsert(KEY, candles.iloc[:50])
    folder = store.series_dir(KEY)
    stale = folder / "_manifest.json"
    old_manifest = stale.read_text()
    store.upsert(KEY, candles)
    stale.write_text(old_manifest)  # as if killed between the data and the manifest
    (folder / ".2024.parquet.abc.tmp").write_bytes(b"half a file")
    assert store.manifest(KEY)["rows"] == 100  # never disagrees with the data
    store.repair(KEY)
    assert not list(folder.glob("*.tmp")) and '"rows": 100' in stale.read_text()


def _three_years(tmp_path: Path) -> tuple[CandleStore, pd.DataFrame]:
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START - 48 * 3_600_000, 24 * 400)  # 2023-12-30 .. 2025-02
    store.upsert(KEY, candles)
    return store, candles


def _truncate(path: Path) -> bytes:
    """Cut a parquet file in half, as a full disk or a copy killed midway would: 'magic bytes not found'."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.read_bytes()


def test_a_truncated_partition_is_named_with_how_to_repair_it(tmp_path):
    store, candles = _three_years(tmp_path)
    other = SeriesKey("binance", "ETH/USDT", "1h")
    store.upsert(other, synthetic_candles("ETH/USDT", START, 10))
    bad = store.series_dir(KEY) / "2024.parquet"
    truncated = _truncate(bad)

    for call in (store.read, store.manifest, store.last_timestamp):
        with pytest.raises(CorruptPartition) as failure:
            call(KEY)
        message = str(failure.value)
        assert failure.value.path == bad and failure.value.series == KEY
        assert str(bad) in message and "candlecast store repair binance:BTC/USDT:1h" in message
        assert "\n" not in message  # one line, no traceback needed to understand it
    assert store.corrupt_files(KEY) == [bad]
    assert len(store.read(other)) == 10  # the rest of the store stays readable

    # an upsert into the bad year refuses rather than replace it by the batch alone (that would lose a year)
    with pytest.raises(CorruptPartition):
        store.upsert(KEY, candles.iloc[100:110])
    assert bad.read_bytes() == truncated


def test_an_unreadable_file_deep_inside_is_found_too(tmp_path):
    """A whole footer but a damaged data page: only a full read finds it, and it is named all the same."""
    store, _ = _three_years(tmp_path)
    bad = store.series_dir(KEY) / "2023.parquet"
    data = bytearray(bad.read_bytes())
    data[4:40] = b"\xff" * 36  # the first column chunk's page header
    bad.write_bytes(bytes(data))
    assert store.corrupt_files(KEY) == [bad]
    with pytest.raises(CorruptPartition, match="2023.parquet"):
        store.read(KEY)
