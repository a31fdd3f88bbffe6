"""Quarantine: a refused batch is kept with its report, listed, shown, and stored only once it passes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from candlecast.data import quarantine
from candlecast.data.candle_store import CandleStore
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings
from deployments.cli import app
from expectations.runner import validate_candles

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


def test_cli_list_show_release(home: Path, tmp_path: Path) -> None:
    settings = Settings()
    staged, frame, report = _bad_batch(settings)
    entry = quarantine.quarantine_batch(settings, SERIES, staged, report)
    runner = CliRunner()
    export = tmp_path / "fix.csv"

    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    shown = runner.invoke(app, ["quarantine", "show", entry.id, "--export", str(export)])
    refused = runner.invoke(app, ["quarantine", "release", entry.id])
    fixed = pd.read_csv(export)
    fixed.loc[5, "high"] = fixed.loc[5, ["open", "close", "low"]].max()
    fixed.to_csv(export, index=False)
    released = runner.invoke(app, ["quarantine", "release", entry.id, "--file", str(export)])
    missing = runner.invoke(app, ["quarantine", "show", "nope"])

    assert listed.exit_code == 0
    assert json.loads(listed.output) == [
        {"id": entry.id, "series": str(SERIES), "rows": 48, "quarantined_at": entry.quarantined_at}
        | {"failed": entry.failed_expectations}
    ]
    assert shown.exit_code == 0 and "high, low: 1 unexpected" in shown.output
    assert refused.exit_code == 1 and "stays in quarantine" in refused.output
    assert released.exit_code == 0, released.output
    assert "48 new candles" in " ".join(released.output.split())
    assert len(CandleStore(settings.candles_dir).read(SERIES)) == 48
    assert missing.exit_code == 2 and "no quarantined batch" in missing.output
