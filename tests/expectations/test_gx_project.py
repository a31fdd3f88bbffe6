"""The GX file context in the state folder, its Data Docs, and `candlecast validate`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import market_faults as mf
import pandas as pd
import yaml
from test_candle_contract import clean_frame
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.expectations.runner import validate_candles
from candlecast.schema import SeriesKey

runner = CliRunner()


def _page(url: str | None) -> Path:
    assert url and url.startswith("file://"), url
    return Path(urlparse(url).path)


def test_validation_against_the_state_folder_stores_suite_checkpoint_and_data_docs(home: Path) -> None:
    bad = clean_frame()
    bad.loc[3, "volume"] = -1.0

    good_report = validate_candles(clean_frame(), "1h", "test:BTC/USDT:1h", state_root=home)
    bad_report = validate_candles(bad, "1h", "test:BTC/USDT:1h", state_root=home)

    gx = home / "gx"
    config = yaml.safe_load((gx / "great_expectations.yml").read_text())
    assert config["progress_bars"] == {"globally": False, "metric_calculations": False}
    assert config["analytics_enabled"] is False
    assert (gx / "expectations" / "candle_contract_1h.json").exists()
    # one checkpoint and validation definition per suite and series, so each page names its series
    assert (gx / "checkpoints" / "candle_contract_1h-test_BTC-USDT_1h.json").exists()
    assert (gx / "validation_definitions" / "candle_contract_1h-test_BTC-USDT_1h.json").exists()
    good_page, bad_page = _page(good_report.data_docs), _page(bad_report.data_docs)
    assert good_page.exists() and bad_page.exists() and good_page != bad_page
    assert "expect_column_values_to_be_between" in bad_page.read_text() or "volume" in bad_page.read_text()
    assert (gx / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()
    assert not bad_report.success and f"Data Docs: {bad_report.data_docs}" in bad_report.summary()


def test_in_memory_validation_writes_nothing(home: Path) -> None:
    report = validate_candles(clean_frame(), "1h")

    assert report.data_docs is None
    assert not home.exists()


def test_cli_validate_file(home: Path, shared_data: Path) -> None:
    main = runner.invoke(app, ["validate", str(shared_data / "binance" / "binance_BTC-USDT_1h.csv.gz")])
    dirty = runner.invoke(app, ["validate", str(shared_data / "dirty" / "binance_BTC-USDT_1h.csv.gz")])
    partial = runner.invoke(
        app, ["validate", str(shared_data / "dirty" / "binance_BTC-USDT_1d.csv.gz"), "--now", "2021-06-11T00:15Z"]
    )

    assert main.exit_code == 0, main.output
    assert "passed with warnings" in main.output and "10 gaps, 20 missing candles" in main.output
    assert dirty.exit_code == 1, dirty.output
    assert "[critical] expect_column_values_to_be_unique on timestamp: 5298 unexpected" in dirty.output
    assert partial.exit_code == 1
    assert "every candle is closed" in partial.output and "2021-06-11 00:00" in partial.output


def test_cli_validate_synthetic_files(home: Path, tmp_path: Path) -> None:
    """The twin of test_cli_validate_file on synthetic files with the real ones' faults planted."""
    files = {"main": mf.main_set("BTC"), "dirty": mf.dirty_export(), "daily": mf.dirty_daily()}
    paths = {key: tmp_path / f"{key}_BTC-USDT_{'1d' if key == 'daily' else '1h'}.csv.gz" for key in files}
    for key, frame in files.items():
        frame.to_csv(paths[key], index=False)
    last_day = pd.Timestamp(mf.last_open(files["daily"]), unit="ms", tz="UTC")
    now = (last_day + pd.Timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%MZ")

    main = runner.invoke(app, ["validate", str(paths["main"])])
    dirty = runner.invoke(app, ["validate", str(paths["dirty"])])
    partial = runner.invoke(app, ["validate", str(paths["daily"]), "--now", now])

    assert main.exit_code == 0, main.output
    assert "passed with warnings" in main.output and "10 gaps, 20 missing candles" in main.output
    assert dirty.exit_code == 1, dirty.output
    unique = f"[critical] expect_column_values_to_be_unique on timestamp: {2 * len(mf.DUPLICATED_HOURS)} unexpected"
    assert unique in dirty.output
    assert partial.exit_code == 1
    assert "every candle is closed" in partial.output and f"{last_day:%Y-%m-%d %H:%M}" in partial.output


def test_cli_validate_stored_series(home: Path, tmp_path: Path) -> None:
    series = SeriesKey("binance", "BTC/USDT", "1h")
    CandleStore(home / "candles").upsert(series, clean_frame())
    csv = tmp_path / "candles.csv"
    clean_frame().to_csv(csv, index=False)

    stored = runner.invoke(app, ["validate", "--series", str(series)])
    file_with_timeframe = runner.invoke(app, ["validate", str(csv), "--timeframe", "1d"])

    assert stored.exit_code == 0, stored.output
    assert "passed 32 expectations on 200 rows" in stored.output
    assert (home / "validation" / f"{series.slug}.json").exists()
    assert file_with_timeframe.exit_code == 1  # hourly candles are off the daily grid
    assert "aligned_to_timeframe" in file_with_timeframe.output


def test_cli_validate_bad_input_exits_2_with_what_to_do(home: Path, tmp_path: Path) -> None:
    csv = tmp_path / "candles.csv"
    clean_frame().to_csv(csv, index=False)
    cases = {
        (): "give a candle file",
        ("--series", "binance:BTC/USDT:1h"): "no candles stored for binance:BTC/USDT:1h",
        ("--series", "BTC/USDT"): "EXCHANGE:SYMBOL:TIMEFRAME",
        (str(csv),): "pass --timeframe",
        (str(tmp_path / "nope.csv"), "--timeframe", "1h"): "does not exist",
        (str(csv), "--timeframe", "1h", "--now", "yesterday-ish"): "is not a time",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["validate", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)


def test_json_output_is_the_report(home: Path, tmp_path: Path) -> None:
    csv = tmp_path / "BTC-USDT_1h.csv"
    clean_frame().to_csv(csv, index=False)

    result = runner.invoke(app, ["validate", str(csv), "--json"])

    assert result.exit_code == 0, result.output
    payload = pd.read_json(result.output, typ="series")
    assert payload["status"] == "passed" and payload["suite"] == "candle_contract_1h"
