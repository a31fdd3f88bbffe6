"""Where a series comes from: recorded by the store's first write, another source refused before any write."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from candlecast.data.candle_store import CandleStore
from candlecast.data.provenance import (
    SOURCES,
    SourceConflict,
    emulator_source,
    exchange_source,
    import_source,
)
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey

START = 1_704_067_200_000
KEY = SeriesKey("binance", "BTC/USDT", "1h")
BINANCE = exchange_source("binance", None)
DEMO = emulator_source("binance", "synthetic market (from 2024-01-01 00:00 UTC, ar_phi 0.5, hour_mean 1.0)", 7)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_the_first_write_records_the_source_and_the_same_source_keeps_writing(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    store.upsert(KEY, candles.iloc[:60], DEMO)
    assert store.upsert(KEY, candles.iloc[50:], DEMO) == 40  # the same source: no refusal
    [recorded] = store.sources(KEY)
    assert recorded["kind"] == "emulator" and recorded["identity"]["seed"] == 7 and "recorded_at" in recorded
    assert len(pd.read_parquet(tmp_path)) == 100, "the record is skipped by plain parquet readers"


def test_another_source_is_refused_before_anything_is_written(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    store.upsert(KEY, candles.iloc[:60], DEMO)
    before = _hashes(tmp_path)
    other = emulator_source("binance", "synthetic market (from 2024-01-01 00:00 UTC, ar_phi 0.15, hour_mean 0.15)", 7)
    for source in (other, BINANCE):
        with pytest.raises(SourceConflict) as refused:
            store.upsert(KEY, candles.iloc[60:], source)
        message = str(refused.value)
        assert DEMO.label in message and source.label in message and "--allow-source-change" in message
        assert "\n" not in message
    assert _hashes(tmp_path) == before, "byte for byte unchanged"


def test_an_allowed_change_is_recorded_in_the_history(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    store.upsert(KEY, candles.iloc[:60], DEMO)
    store.check_source(KEY, BINANCE, allow_change=True)
    assert store.upsert(KEY, candles.iloc[60:], BINANCE, allow_source_change=True) == 40
    assert [s["kind"] for s in store.sources(KEY)] == ["emulator", "exchange"]
    store.upsert(KEY, candles.iloc[90:], BINANCE)  # now the current source: no flag needed
    with pytest.raises(SourceConflict):
        store.check_source(KEY, DEMO)


def test_a_series_stored_before_records_existed_takes_its_first_recorded_source(tmp_path):
    store = CandleStore(tmp_path)
    candles = synthetic_candles("BTC/USDT", START, 100)
    store.upsert(KEY, candles.iloc[:60])  # as candlecast <= this change wrote it: no record
    assert not (store.series_dir(KEY) / SOURCES).exists() and store.sources(KEY) == []
    store.upsert(KEY, candles.iloc[60:], BINANCE)
    assert [s["label"] for s in store.sources(KEY)] == [BINANCE.label]


def test_an_endpoint_is_recorded_without_credentials_or_query(tmp_path):
    source = exchange_source("binance", "https://user:hunter2@proxy.example.com:8443/bn/?apiKey=k3y&x=1")
    store = CandleStore(tmp_path)
    store.upsert(KEY, synthetic_candles("BTC/USDT", START, 5), source)
    text = (store.series_dir(KEY) / SOURCES).read_text()
    assert "hunter2" not in text and "k3y" not in text and "user" not in text
    assert json.loads(text)["sources"][0]["identity"] == {
        "exchange": "binance",
        "endpoint": "https://proxy.example.com:8443/bn",
    }
    assert BINANCE.identity == {"exchange": "binance", "endpoint": "default"}


def test_imported_files_are_one_source_and_each_file_is_recorded(tmp_path):
    """Yearly files, a newer download or an export imported back build one series; a fetch into it is a change."""
    store, candles = CandleStore(tmp_path / "candles"), synthetic_candles("BTC/USDT", START, 100)
    first, second = tmp_path / "a" / "BTC_USDT-1h.json", tmp_path / "b" / "BTC_USDT-1h.json"
    for path, body in ((first, "[1]"), (second, "[1, 2]")):
        path.parent.mkdir()
        path.write_text(body)
    store.upsert(KEY, candles.iloc[:50], import_source(first, "freqtrade-json"))
    store.upsert(KEY, candles.iloc[50:], import_source(second, "freqtrade-json"))
    store.upsert(KEY, candles.iloc[50:], import_source(second, "freqtrade-json"))  # the same file again: no entry
    history = store.sources(KEY)
    assert [h["path"] for h in history] == [str(first.resolve()), str(second.resolve())]
    assert history[0]["sha256"] == hashlib.sha256(b"[1]").hexdigest() and history[1]["file"] == "BTC_USDT-1h.json"
    with pytest.raises(SourceConflict, match=r"from imported files \(last BTC_USDT-1h.json, freqtrade-json\)"):
        store.check_source(KEY, BINANCE)
