"""The synthetic fear & greed index: published like the real one, from nothing but earlier days' candles."""

import pandas as pd

from candlecast.devtools.sentiment import synthetic_fear_greed
from candlecast.devtools.synthetic import synthetic_candles

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY = 86_400_000


def test_one_value_a_day_from_the_day_after_the_first_complete_day():
    candles = synthetic_candles("BTC/USDT", START, 24 * 30 + 5, seed=7)  # the last day is still forming
    index = synthetic_fear_greed(candles, seed=7)
    assert index["timestamp"].iloc[0] == START + DAY  # day 1's market, published at day 2's 00:00
    assert index["timestamp"].diff().dropna().eq(DAY).all() and len(index) == 30
    assert index["fear_greed"].between(0, 100).all()


def test_a_value_never_depends_on_its_own_day_or_later():
    candles = synthetic_candles("BTC/USDT", START, 24 * 40, seed=3)
    full = synthetic_fear_greed(candles, seed=3)
    cut_day = 20
    shocked = candles.copy()
    later = shocked["timestamp"] >= START + cut_day * DAY
    shocked.loc[later, ["open", "high", "low", "close"]] *= 3.0  # rewrite day 20 onwards
    changed = synthetic_fear_greed(shocked, seed=3)
    known = full["timestamp"] <= START + cut_day * DAY  # published by day 20's 00:00: from days before it
    pd.testing.assert_frame_equal(changed[known], full[known])
    assert not changed[~known].equals(full[~known])
