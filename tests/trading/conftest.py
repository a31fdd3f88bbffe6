"""Fixtures of the trading tests; the builders live in trading_helpers.py."""

from __future__ import annotations

import pandas as pd
import pytest
from trading_helpers import synthetic_pair


@pytest.fixture
def pair() -> dict[str, pd.DataFrame]:
    """Seeded synthetic BTC/USDT and ETH/USDT hourly candles (1200 each, same timestamps)."""
    return synthetic_pair()
