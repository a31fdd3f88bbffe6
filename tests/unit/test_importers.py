"""Importers read the real originals in ../shared/data/formats; `candlecast import` gates them; export round-trips."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.data.importers import detect_format, read_candles, to_ms
from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import CANDLE_COLUMNS, SeriesKey
from candlecast.settings import Settings

DAY = 86_400_000


def _formats(shared_data: Path) -> Path:
    return shared_data / "formats"


def _check(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == CANDLE_COLUMNS and frame["timestamp"].dtype == "int64"
    assert frame["timestamp"].is_monotonic_increasing


def test_freqtrade_json_and_feather(shared_data: Path) -> None:
    js = read_candles(_formats(shared_data) / "freqtrade_BTC_USDT-5m.json")
    _check(js)
    raw = json.loads((_formats(shared_data) / "freqtrade_BTC_USDT-5m.json").read_text())
    assert len(js) == len(raw) and js.iloc[0].tolist() == pytest.approx(raw[0])
    feather = read_candles(_formats(shared_data) / "freqtrade_XRP_ETH-5m.feather")
    _check(feather)
    normalised = pd.read_csv(shared_data / "freqtrade_testdata" / "binance_XRP-ETH_5m.csv.gz")
    pd.testing.assert_frame_equal(feather, normalised)


def test_cryptodatadownload_mixed_seconds_and_milliseconds(shared_data: Path, tmp_path: Path) -> None:
    original = _formats(shared_data) / "cryptodatadownload_Binance_BTCUSDT_d.csv"
    with_url = tmp_path / "Binance_BTCUSDT_d.csv"  # CDD's export starts with its URL line
    with_url.write_text("https://www.CryptoDataDownload.com\n" + original.read_text())
    for path in (original, with_url):
        assert detect_format(path) == "cryptodatadownload"
        frame = read_candles(path)
        _check(frame)
        assert frame["timestamp"].iloc[0] == 1502928000000  # 1502928000.0 s, 2017-08-17
        assert frame["timestamp"].iloc[-1] == 1623369600000  # 1623369600000 ms, 2021-06-11
        assert (frame["timestamp"] % DAY == 0).all()
        assert frame["timestamp"].duplicated().sum() == 1  # 2017-12-18 twice, different values: kept for the gate


def test_plain_csv_with_date_strings_and_a_column_mapping(shared_data: Path, tmp_path: Path) -> None:
    frame = read_candles(_formats(shared_data) / "binance-historical_BTCUSDT_1d.csv")
    _check(frame)
    assert frame["timestamp"].iloc[0] == 1502928000000
    renamed = tmp_path / "mine.parquet"
    frame.rename(columns={"timestamp": "t", "volume": "vol"}).assign(t=frame["timestamp"] // 1000).to_parquet(renamed)
    again = read_candles(renamed, columns={"timestamp": "t", "volume": "vol"}, time_unit="s")
    pd.testing.assert_frame_equal(again, frame)
    with pytest.raises(ValueError, match="no 'volume' column.*--columns volume="):
        read_candles(renamed, columns={"timestamp": "t"})


def test_to_ms_decides_the_unit_per_value() -> None:
    values = pd.Series([1502928000.0, 1502928000000, 1502928000000000, 1502928000000000000])
    assert to_ms(values).tolist() == [1502928000000] * 4


def _import(path: Path, *args: str):
    return CliRunner().invoke(
        app, ["import", str(path), "-e", "binance", "-s", "BTC/USDT", "-t", "1d", *args], env={"COLUMNS": "200"}
    )


@pytest.mark.slow  # the CLI end to end: gate, store, export
def test_cli_import_stores_a_clean_file_and_export_round_trips(shared_data: Path, home: Path, tmp_path: Path) -> None:
    result = _import(_formats(shared_data) / "binance-historical_BTCUSDT_1d.csv")
    assert result.exit_code == 0, result.output
    key = SeriesKey("binance", "BTC/USDT", "1d")
    stored = CandleStore(Settings().candles_dir).read(key)
    # the file's last row (2026-01-06) was written mid-day: dropped, unless today is long after it
    assert len(stored) in (3065, 3064) and "imported" in result.output
    out = tmp_path / "out.csv"
    exported = CliRunner().invoke(app, ["export", str(out), "-e", "binance", "-s", "BTC/USDT", "-t", "1d"])
    assert exported.exit_code == 0, exported.output
    pd.testing.assert_frame_equal(pd.read_csv(out), stored)
    assert _import(out).exit_code == 0  # an export imports back as a no-op
    pd.testing.assert_frame_equal(CandleStore(Settings().candles_dir).read(key), stored)


@pytest.mark.slow  # the CLI end to end: gate, store, export
def test_cli_import_refuses_a_file_that_fails_the_contract_and_leaves_it_untouched(
    shared_data: Path, home: Path
) -> None:
    path = _formats(shared_data) / "cryptodatadownload_Binance_BTCUSDT_d.csv"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = _import(path)
    assert result.exit_code == 1
    assert "refused" in result.output and "expect_column_values_to_be_unique" in result.output
    assert not CandleStore(Settings().candles_dir).list_series()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_cli_import_names_an_unknown_format(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "candles.xlsx"
    path.write_text("x")
    result = _import(path)
    assert result.exit_code == 2 and "--format" in result.output


def test_cli_import_names_an_empty_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = _import(path)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "empty.csv" in lines[0] and "non-empty csv" in lines[0], result.output


# Synthetic twins: the same readers and commands on files written here from seeded candles, so they always
# run (the tests above need ../shared/data).

SYNTH_START = 1_704_067_200_000  # 2024-01-01


def _synthetic(n: int, timeframe: str, start: int = SYNTH_START) -> pd.DataFrame:
    return synthetic_candles("BTC/USDT", start, n, timeframe=timeframe, seed=5)


def test_synthetic_freqtrade_json_and_feather(tmp_path: Path) -> None:
    frame = _synthetic(500, "5m")
    js = tmp_path / "BTC_USDT-5m.json"  # freqtrade download-data: [[ms, open, high, low, close, volume], ...]
    js.write_text(json.dumps(frame.astype(object).to_numpy().tolist()))
    feather = tmp_path / "BTC_USDT-5m.feather"  # freqtrade's feather: a UTC datetime column named date
    dated = frame.assign(date=pd.to_datetime(frame["timestamp"], unit="ms", utc=True))
    dated[["date", *CANDLE_COLUMNS[1:]]].to_feather(feather)
    for path in (js, feather):
        got = read_candles(path)
        _check(got)
        pd.testing.assert_frame_equal(got, frame)


def _cdd_csv(frame: pd.DataFrame, path: Path, url_line: bool) -> None:
    """A CryptoDataDownload export: newest first, old rows' unix in seconds, base and quote volumes."""
    unix = frame["timestamp"].astype(float).where(frame.index >= len(frame) // 2, frame["timestamp"] / 1000)
    out = pd.DataFrame({"unix": unix, "date": pd.to_datetime(frame["timestamp"], unit="ms").astype(str)})
    out["symbol"] = "BTC/USDT"
    out[["open", "high", "low", "close"]] = frame[["open", "high", "low", "close"]]
    out["Volume BTC"], out["Volume USDT"] = frame["volume"], frame["volume"] * frame["close"]
    out["tradecount"] = 100
    conflicting = out.iloc[[10]].assign(close=out["close"].iloc[10] * 1.01)  # the same day twice
    text = pd.concat([out, conflicting]).iloc[::-1].to_csv(index=False)
    path.write_text(("https://www.CryptoDataDownload.com\n" if url_line else "") + text)


def test_synthetic_cryptodatadownload_mixed_seconds_and_milliseconds(tmp_path: Path) -> None:
    frame = _synthetic(200, "1d")
    for url_line in (False, True):
        path = tmp_path / f"Binance_BTCUSDT_d_{url_line}.csv"
        _cdd_csv(frame, path, url_line)
        assert detect_format(path) == "cryptodatadownload"
        got = read_candles(path)
        _check(got)
        assert got["timestamp"].duplicated().sum() == 1  # different values: kept for the gate to refuse
        deduped = got.drop_duplicates("timestamp", keep="first").reset_index(drop=True)
        assert deduped["timestamp"].tolist() == frame["timestamp"].tolist()  # seconds and ms both read as ms
        np.testing.assert_allclose(deduped["volume"], frame["volume"])  # the base volume, not the quote's


def test_synthetic_plain_csv_with_date_strings_and_a_column_mapping(tmp_path: Path) -> None:
    frame = _synthetic(300, "1h")
    dated = tmp_path / "mine.csv"
    frame.assign(timestamp=pd.to_datetime(frame["timestamp"], unit="ms").dt.strftime("%Y-%m-%d %H:%M")).to_csv(
        dated, index=False
    )
    pd.testing.assert_frame_equal(read_candles(dated), frame)
    renamed = tmp_path / "mine.parquet"
    frame.rename(columns={"timestamp": "t", "volume": "vol"}).assign(t=frame["timestamp"] // 1000).to_parquet(renamed)
    pd.testing.assert_frame_equal(
        read_candles(renamed, columns={"timestamp": "t", "volume": "vol"}, time_unit="s"), frame
    )
    with pytest.raises(ValueError, match="no 'volume' column.*--columns volume="):
        read_candles(renamed, columns={"timestamp": "t"})


@pytest.mark.slow  # the CLI end to end: gate, store, export
def test_synthetic_cli_import_drops_the_forming_candle_stores_and_export_round_trips(
    home: Path, tmp_path: Path
) -> None:
    today = int(time.time() * 1000) // DAY * DAY
    frame = _synthetic(120, "1d", start=today - 119 * DAY)  # the last candle opened today: still forming
    path = tmp_path / "btc_1d.csv"
    frame.to_csv(path, index=False)
    result = _import(path)
    assert result.exit_code == 0, result.output
    assert "imported 119 candles" in result.output and "dropped 1 unclosed" in result.output
    key = SeriesKey("binance", "BTC/USDT", "1d")
    stored = CandleStore(Settings().candles_dir).read(key)
    pd.testing.assert_frame_equal(stored, frame.iloc[:-1])
    out = tmp_path / "out.parquet"
    exported = CliRunner().invoke(app, ["export", str(out), "-e", "binance", "-s", "BTC/USDT", "-t", "1d"])
    assert exported.exit_code == 0, exported.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), stored)
    again = _import(out)  # an export imports back as a no-op
    assert again.exit_code == 0 and "(0 new)" in again.output
    pd.testing.assert_frame_equal(CandleStore(Settings().candles_dir).read(key), stored)


@pytest.mark.slow  # the CLI end to end: gate, store, export
def test_synthetic_cli_import_refuses_conflicting_duplicates_and_leaves_the_file_untouched(
    home: Path, tmp_path: Path
) -> None:
    frame = _synthetic(100, "1d")
    path = tmp_path / "btc_1d.csv"
    pd.concat([frame, frame.iloc[[40]].assign(close=frame["close"].iloc[40] * 1.02)]).to_csv(path, index=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = _import(path)
    assert result.exit_code == 1
    assert "refused" in result.output and "expect_column_values_to_be_unique" in result.output
    assert not CandleStore(Settings().candles_dir).list_series()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_cli_import_refuses_a_symbol_not_in_unified_form_and_creates_nothing(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "btc_1d.csv"
    _synthetic(30, "1d").to_csv(path, index=False)
    for symbol, guess in (("BTCUSDT", "BTC/USDT"), ("btc-usdt", "BTC/USDT"), ("ETHBTC", "ETH/BTC")):
        result = CliRunner().invoke(app, ["import", str(path), "-e", "binance", "-s", symbol, "-t", "1d"])
        assert result.exit_code == 2, result.output
        message = " ".join(result.output.split())
        assert f"symbol '{symbol}' is not in ccxt's unified form BASE/QUOTE (did you mean '{guess}'?)" in message
    assert not CandleStore(Settings().candles_dir).list_series()
    assert not (Settings().root / "quarantine").exists() and not Settings().validation_dir.exists()


def test_symbol_suggestions() -> None:
    from candlecast.data.symbols import check_symbol, suggest_symbol

    assert check_symbol("BTC/USDT") == "BTC/USDT" and check_symbol("1INCH/USDT") == "1INCH/USDT"
    assert suggest_symbol("BTCUSDT") == "BTC/USDT" and suggest_symbol("SOLFDUSD") == "SOL/FDUSD"
    assert suggest_symbol("btc_usdt") == "BTC/USDT" and suggest_symbol("BTC/USDT:USDT") is None
    assert suggest_symbol("XYZ") is None
    with pytest.raises(ValueError, match=r"'BTCUSDT' is not in ccxt's unified form.*did you mean 'BTC/USDT'"):
        check_symbol("BTCUSDT")
