"""`candlecast validate --series`: a stored series' live checks honour the options (slow: GX writes results)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from candlecast.data.candle_store import CandleStore
from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

KEY = SeriesKey("binance", "BTC/USDT", "1h")
START = 1_704_067_200_000  # 2024-01-01
HOUR = 3_600_000


def test_max_staleness_reaches_the_stored_series_check(home: Path):
    candles = synthetic_candles("BTC/USDT", START, 48, seed=3)
    CandleStore(Settings().candles_dir).upsert(KEY, candles)
    now = pd.Timestamp(int(candles["timestamp"].iloc[-1]) + 11 * HOUR, unit="ms").strftime("%Y-%m-%dT%H:%MZ")

    def validate(limit: str):
        return CliRunner().invoke(app, ["validate", "--series", str(KEY), "--now", now, "--max-staleness", limit])

    stale = validate("2h")  # the newest candle closed 10 h before the clock: a freshness warning
    assert stale.exit_code == 0 and "freshness of a live series" in stale.output, stale.output
    fresh = validate("2d")  # was ignored for a stored series: the default (3 candles) warned here too
    assert fresh.exit_code == 0 and "freshness" not in fresh.output, fresh.output
    assert fresh.output.startswith("passed") and "warning" not in fresh.output, fresh.output
