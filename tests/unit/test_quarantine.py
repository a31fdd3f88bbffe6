"""Quarantine: a refused batch is kept with its report, listed, shown, and stored only once it passes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.data import quarantine
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.runner import validate_candles
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

SERIES = SeriesKey("binance", "BTC/USDT", "1h")
START = 1_704_067_200_000


def _check(frame: pd.DataFrame, series: SeriesKey) -> dict:
    report = validate_candles(frame, series.timeframe, str(series))
    return report.to_dict() | {"summary": report.summary()}


def _bad_batch(settings: Settings) -> tuple[Path, pd.DataFrame, dict]:
    frame = synthetic_candles("BTC/USDT", START, 48, timeframe="1h", seed=1)
    frame.loc[5, "high"] = frame.loc[5, "low"] - 1.0
    staged = settings.staging_dir / f"{SERIES.slug}_{START}_{int(frame['timestamp'].iloc[-1])}.parquet"
    write_parquet(frame, staged)
    return staged, frame, _check(frame, SERIES)


def test_quarantine_moves_the_batch_with_its_report(home: Path) -> None:
    settings = Settings()
    staged, frame, report = _bad_batch(settings)

    entry = quarantine.quarantine_batch(settings, SERIES, staged, report)

    assert not staged.exists()
    pd.testing.assert_frame_equal(quarantine.read_batch(entry), frame)
    assert entry.series == SERIES and entry.rows == 48
    assert "expect_column_pair_values_a_to_be_greater_than_b on high, low" in entry.failed_expectations
    assert json.loads((entry.path / "report.json").read_text())["success"] is False
    assert [e.id for e in quarantine.list_entries(settings)] == [entry.id]
    assert quarantine.get_entry(settings, entry.id[:20]).id == entry.id  # a unique prefix is enough


def test_release_of_a_still_failing_batch_keeps_it(home: Path) -> None:
    settings = Settings()
    entry = quarantine.quarantine_batch(settings, SERIES, *_bad_batch(settings)[::2])

    outcome = quarantine.release(settings, entry.id, _check)

    assert not outcome.released and outcome.new_candles == 0
    assert entry.batch_path.exists()
    assert not CandleStore(settings.candles_dir).path(SERIES).exists()


def test_release_of_a_fixed_batch_stores_it_and_keeps_the_record(home: Path) -> None:
    settings = Settings()
    staged, frame, report = _bad_batch(settings)
    entry = quarantine.quarantine_batch(settings, SERIES, staged, report)
    fixed = frame.copy()
    fixed.loc[5, "high"] = fixed.loc[5, ["open", "close", "low"]].max()

    outcome = quarantine.release(settings, entry.id, _check, fixed=fixed)

    assert outcome.released and outcome.new_candles == 48
    pd.testing.assert_frame_equal(CandleStore(settings.candles_dir).read(SERIES), fixed)
    assert quarantine.list_entries(settings) == []
    kept = quarantine.quarantine_dir(settings) / quarantine.RELEASED / entry.id
    pd.testing.assert_frame_equal(pd.read_parquet(kept / "batch.parquet"), fixed)
    with pytest.raises(quarantine.QuarantineError, match="already released"):
        quarantine.get_entry(settings, entry.id)


def test_bad_requests_say_what_to_do(home: Path) -> None:
    settings = Settings()
    with pytest.raises(quarantine.QuarantineError, match="candlecast quarantine list"):
        quarantine.get_entry(settings, "nope")
    with pytest.raises(quarantine.QuarantineError, match="does not exist"):
        quarantine.quarantine_batch(settings, SERIES, settings.staging_dir / "gone.parquet", {})
    staged, _, report = _bad_batch(settings)
    entry = quarantine.quarantine_batch(settings, SERIES, staged, report)
    with pytest.raises(quarantine.QuarantineError, match="lacks columns"):
        quarantine.release(settings, entry.id, _check, fixed=pd.DataFrame({"timestamp": [1]}))


def test_an_entry_interrupted_before_its_report_is_still_listed(home: Path) -> None:
    settings = Settings()
    staged, _, report = _bad_batch(settings)
    entry = quarantine.quarantine_batch(settings, SERIES, staged, report)
    (entry.path / "report.json").unlink()
    (entry.path / "meta.json").unlink()

    (listed,) = quarantine.list_entries(settings)

    assert listed.series == SERIES and listed.report is None


# Every entry point quarantines a refused batch (issue 12 item 4): an import as the flow does (the CLI's ingest:
# tests/integration/test_quarantine_cli.py).


def test_a_refused_import_is_quarantined_and_keeps_the_last_successful_validation(home: Path, tmp_path: Path) -> None:
    settings = Settings()
    series = SeriesKey("binance", "BTC/USDT", "1d")
    candles = synthetic_candles("BTC/USDT", START, 60, timeframe="1d", seed=6)
    clean, broken = tmp_path / "clean.csv", tmp_path / "broken.csv"
    candles.iloc[:40].to_csv(clean, index=False)
    later = candles.iloc[40:]
    pd.concat([later, later.iloc[[3]].assign(close=later["close"].iloc[3] * 1.02)]).to_csv(broken, index=False)
    args = ["-e", "binance", "-s", "BTC/USDT", "-t", "1d"]

    first = CliRunner().invoke(app, ["import", str(clean), *args])
    stored_before = CandleStore(settings.candles_dir).read(series)
    refused = CliRunner().invoke(app, ["import", str(broken), *args])

    assert first.exit_code == 0, first.output
    assert refused.exit_code == 1 and "refused" in refused.output
    (entry,) = quarantine.list_entries(settings)
    assert entry.series == series and entry.rows == 21 and entry.id in " ".join(refused.output.split())
    pd.testing.assert_frame_equal(CandleStore(settings.candles_dir).read(series), stored_before)
    record = json.loads((settings.validation_dir / f"{series.slug}.json").read_text())
    assert record["success"] is True and record["n_rows"] == 40  # the stored data's verdict stands
    assert record["last_refused"]["success"] is False and record["last_refused"]["quarantine"] == entry.id
    assert "expect_column_values_to_be_unique" in {f["expectation"] for f in record["last_refused"]["failures"]}


def test_the_validation_record_keeps_the_stored_verdict_beside_the_last_refused_batch(home: Path) -> None:
    from candlecast.data.validations import read_validation, record_validation

    settings = Settings()
    passed = {"success": True, "status": "passed", "checked_at": "2026-01-01T00:00:00+00:00"}
    refused = {"success": False, "status": "FAILED", "checked_at": "2026-01-02T00:00:00+00:00", "quarantine": "q1"}

    record_validation(settings, SERIES, refused, refused_batch=True)  # nothing checked before: it is the verdict
    assert read_validation(settings, SERIES)["success"] is False
    record_validation(settings, SERIES, passed)
    record_validation(settings, SERIES, refused | {"quarantine": "q2"}, refused_batch=True)
    record = read_validation(settings, SERIES)
    assert record["success"] is True and record["checked_at"] == passed["checked_at"]
    assert record["last_refused"]["quarantine"] == "q2"
    record_validation(settings, SERIES, passed | {"checked_at": "2026-01-03T00:00:00+00:00"})
    record = read_validation(settings, SERIES)  # a later pass keeps the refused attempt on record
    assert record["checked_at"] == "2026-01-03T00:00:00+00:00" and record["last_refused"]["quarantine"] == "q2"
