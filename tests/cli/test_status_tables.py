"""`status`, `models`, `quarantine list` and `validate` as a user reads them, piped or as JSON.

Piped (not a terminal) every table prints whole as markdown: full timestamps, full reasons, a
``[critical]`` label kept. A corrupt parquet file is named with its repair and exits 3 while the
readable series are still shown; a refused batch shows next to the stored data's verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.data.provenance import exchange_source
from candlecast.data.validations import record_validation
from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

BTC = SeriesKey("binance", "BTC/USDT", "1h")
ETH = SeriesKey("binance", "ETH/USDT", "1h")
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
runner = CliRunner()


@pytest.fixture
def store(home: Path) -> CandleStore:
    """Two stored series through the real store; BTC's last check passed, then a batch of it was refused."""
    candles = CandleStore(home / "candles")
    for key in (BTC, ETH):
        candles.upsert(key, synthetic_candles(key.symbol, START, 48))
    settings = Settings()
    passed = {"success": True, "status": "passed", "checked_at": "2024-01-03T00:05:00+00:00", "failures": []}
    record_validation(settings, BTC, passed)
    refused = {"success": False, "status": "FAILED", "checked_at": "2024-01-03T01:05:00+00:00", "quarantine": "q-1"}
    record_validation(settings, BTC, refused, refused_batch=True)
    return candles


def _truncate(store: CandleStore, key: SeriesKey) -> Path:
    path = next(iter(store.files(key)))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_piped_status_prints_whole_times_and_the_refused_batch_beside_the_stored_verdict(store):
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    btc_row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {BTC} "))
    assert "2024-01-02 23:00" in btc_row, "the last candle, to the minute"
    assert "passed; refused 2024-01-03 01:05 (quarantine q-1)" in btc_row
    assert "…" not in result.stdout


def test_status_shows_each_series_source_without_its_credentials(store):
    source = exchange_source("binance", "https://bot:s3cret@mirror.example.com/?apiKey=k3y")
    store.upsert(ETH, synthetic_candles(ETH.symbol, START + 48 * 3_600_000, 2), source)
    table = runner.invoke(app, ["status"]).stdout
    eth_row = next(line for line in table.splitlines() if line.startswith(f"| {ETH} "))
    assert eth_row.endswith("| exchange binance at https://mirror.example.com |")
    assert next(line for line in table.splitlines() if line.startswith(f"| {BTC} ")).endswith("| - |")
    report = runner.invoke(app, ["status", "--json"]).stdout
    assert "s3cret" not in report and "k3y" not in report
    by_series = {s["series"]: s for s in json.loads(report)["series"]}
    assert by_series[str(ETH)]["sources"][0]["identity"]["endpoint"] == "https://mirror.example.com"
    assert by_series[str(BTC)]["source"] is None, "stored before sources were recorded"


def test_a_truncated_parquet_file_is_named_with_its_repair_and_exits_3(store):
    path = _truncate(store, ETH)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 3, result.output
    assert f"| {BTC} | 48 |" in result.stdout, "the readable series are still shown"
    assert f"| {ETH} | unreadable |" in result.stdout
    assert str(path) in result.stderr and f"candlecast store repair {ETH}" in result.stderr
    assert "Traceback" not in result.output


def test_status_json_stays_parseable_with_a_corrupt_file(store):
    path = _truncate(store, ETH)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    by_series = {s["series"]: s for s in report["series"]}
    assert str(path) in by_series[str(ETH)]["corrupt"] and by_series[str(BTC)]["corrupt"] is None
    assert by_series[str(BTC)]["last_validation"]["last_refused"]["quarantine"] == "q-1"


def test_models_has_json_and_a_whole_table(home):
    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0, table.output
    assert "| version | aliases | rmse_ratio |" in table.stdout
    as_json = runner.invoke(app, ["models", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == {"name": "candlecast-lstm", "versions": []}


def test_validate_says_the_verdict_once_and_keeps_the_critical_label(home, tmp_path):
    good = tmp_path / "binance_BTC-USDT_1h.csv"
    frame = synthetic_candles("BTC/USDT", START, 48)
    frame.to_csv(good, index=False)
    passed = runner.invoke(app, ["validate", str(good)])
    assert passed.exit_code == 0, passed.output
    assert passed.stdout.count("passed") == 1
    bad = tmp_path / "binance_ETH-USDT_1h.csv"
    frame.assign(high=frame["low"] - 1).to_csv(bad, index=False)
    failed = runner.invoke(app, ["validate", str(bad)])
    assert failed.exit_code == 1
    assert "[critical]" in failed.stdout


def test_quarantine_list_json_is_a_list(home):
    result = runner.invoke(app, ["quarantine", "list", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
