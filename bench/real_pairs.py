"""What the trading benches share: the shared Binance pairs' hourly files and the walk-forward folds they score.

The folds are fixed here once (three over the last 30% of each pair), so every trading bench compares its
strategies on the same forecast bars.
"""

from __future__ import annotations

from pathlib import Path

from candlecast.config import RunConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pair_sources(pairs: str) -> list[str]:
    """The hourly candle files of comma-separated pairs such as ``BTC-USDT,ETH-USDT``."""
    return [str(DATA / "binance" / f"binance_{p}_1h.csv.gz") for p in pairs.split(",")]


def walk_forward_config(hold: int) -> RunConfig:
    """The risk models' walk-forward: horizon ``hold``, lookback 48, three test folds over the last 30%."""
    return RunConfig.model_validate(
        {
            "features": {"horizon": hold, "lookback": 48},
            "split": {"test_folds": 3, "test_fraction": 0.3, "val_fraction": 0.1, "cal_fraction": 0.1},
        }
    )
