"""The ingest flow on Prefect's local server: all series fetched at once, gated, stored; a rerun fetches nothing."""

from __future__ import annotations

import json

import pytest

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.settings import Settings
from flows.ingest import ingest_flow

pytestmark = pytest.mark.slow


def test_ingest_flow_backfills_then_is_a_noop(home, prefect_server) -> None:
    cfg = RunConfig.model_validate({"data": {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "history_days": 20}})
    first = ingest_flow(cfg)
    assert set(first) == {str(s) for s in cfg.series}
    assert all(20 * 24 - 1 <= n <= 20 * 24 for n in first.values())

    settings = Settings()
    store = CandleStore(settings.candles_dir)
    for series in cfg.series:
        candles = store.read(series)
        assert len(candles) == first[str(series)] and candles["timestamp"].diff().dropna().eq(3_600_000).all()
        assert json.loads((settings.validation_dir / f"{series.slug}.json").read_text())["success"]
    report = json.loads((settings.root / "ingest" / "last.json").read_text())
    assert [r["error"] for r in report] == [None] * 3 and all(r["missing"] == 0 for r in report)
    assert not list(settings.staging_dir.glob("*.parquet"))

    second = ingest_flow(cfg)  # seconds later: at most the candle that closed meanwhile
    assert all(n <= 1 for n in second.values())
