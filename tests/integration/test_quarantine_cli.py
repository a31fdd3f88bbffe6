"""Quarantine through the CLI, with the GX file context and Data Docs: a refused ingest batch, list, show, release.

Slow (each validation writes its result and rebuilds Data Docs under the state folder), so not in tests/unit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from candlecast.data import quarantine
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.emulator import ExchangeEmulator
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.expectations.runner import validate_candles
from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

SERIES = SeriesKey("binance", "BTC/USDT", "1h")
START = 1_704_067_200_000
HOUR = 3_600_000


def _check(frame: pd.DataFrame, series: SeriesKey) -> dict:
    report = validate_candles(frame, series.timeframe, str(series))
    return report.to_dict() | {"summary": report.summary()}


def _bad_batch(settings: Settings) -> tuple[Path, pd.DataFrame, dict]:
    frame = synthetic_candles("BTC/USDT", START, 48, timeframe="1h", seed=1)
    frame.loc[5, "high"] = frame.loc[5, "low"] - 1.0
    staged = settings.staging_dir / f"{SERIES.slug}_{START}_{int(frame['timestamp'].iloc[-1])}.parquet"
    write_parquet(frame, staged)
    return staged, frame, _check(frame, SERIES)


def _malformed_feed() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(what the exchange serves for BTC, every refetch alike, with two impossible rows; a healthy ETH)."""
    served = synthetic_candles("BTC/USDT", START, 100, timeframe="1h", seed=3)
    served.loc[70, ["high", "low"]] = served.loc[70, ["low", "high"]].to_numpy()
    served.loc[80, "close"] = -served.loc[80, "close"]
    return served, synthetic_candles("ETH/USDT", START, 100, timeframe="1h", seed=4)


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


def test_cli_ingest_quarantines_a_refused_batch_as_the_flow_does(home: Path) -> None:
    settings = Settings()
    served, healthy = _malformed_feed()
    feeds = {("BTC/USDT", "1h"): served, ("ETH/USDT", "1h"): healthy}
    with ExchangeEmulator(feeds, now_ms=int(served["timestamp"].iloc[-1]) + HOUR) as emu:
        args = ["--symbols", "BTC/USDT,ETH/USDT", "-t", "1h", "--since", "2024-01-01", "--api-url", emu.url]
        result = CliRunner().invoke(app, ["ingest", "-e", "binance", *args, "--no-rate-limit"])

    assert result.exit_code == 1, result.output
    (entry,) = quarantine.list_entries(settings)
    assert entry.series == SERIES and entry.rows == 100 and entry.id in result.output
    pd.testing.assert_frame_equal(quarantine.read_batch(entry), served)
    assert not list(settings.staging_dir.glob("*.parquet"))  # nothing left behind in staging
    shown = CliRunner().invoke(app, ["quarantine", "show", entry.id])
    assert shown.exit_code == 0 and "expect_column_pair_values_a_to_be_greater_than_b" in shown.output
    store = CandleStore(settings.candles_dir)
    pd.testing.assert_frame_equal(store.read(SeriesKey("binance", "ETH/USDT", "1h")), healthy)
    assert not store.path(SERIES).exists()
    record = json.loads((settings.validation_dir / f"{SERIES.slug}.json").read_text())
    assert record["last_refused"]["quarantine"] == entry.id
