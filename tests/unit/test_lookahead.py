"""The look-ahead self-test: features of data truncated at t equal the full-data features before t.

It runs every feature (indicators, 4h and 1d context, a cross asset, an exogenous series, the
Hampel filter) over real Binance candles and several cut points, including cuts in the middle of
a higher-timeframe candle.
"""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import ExogenousConfig, FeatureConfig
from candlecast.features.compute import compute_features, feature_columns
from candlecast.features.exogenous import read_exogenous

HOUR = 3_600_000


@pytest.fixture
def real(shared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = shared_data / "binance"
    eth = pd.read_csv(root / "binance_ETH-USDT_1h.csv.gz").iloc[-3000:].reset_index(drop=True)
    btc = pd.read_csv(root / "binance_BTC-USDT_1h.csv.gz").iloc[-3000:].reset_index(drop=True)
    return eth, btc


def _everything(tmp_path, start: int) -> tuple[FeatureConfig, list[pd.DataFrame]]:
    path = tmp_path / "index.csv"
    days = np.arange(200)
    pd.DataFrame({"timestamp": start + days * 24 * HOUR + 5 * HOUR, "index": np.cos(days)}).to_csv(path, index=False)
    cfg = FeatureConfig(
        indicators=True,
        higher_timeframes=["4h", "1d"],
        cross_assets=["BTC/USDT"],
        exogenous=[ExogenousConfig(path=path)],
        denoise="hampel",
    )
    return cfg, [read_exogenous(path)]


def test_truncated_features_equal_full_features_for_every_column(real, tmp_path):
    eth, btc = real
    cfg, exo = _everything(tmp_path, int(eth["timestamp"].iloc[0]))
    full = compute_features(eth, cfg, "1h", cross={"BTC/USDT": btc}, exogenous=exo)
    assert len(feature_columns(full)) == 30  # 9 base, 10 indicators, 6 higher-timeframe, 4 cross, 1 exogenous
    for cut in (400, 1501, 1502, 2222, 2999):  # odd cuts end inside a 4h and a 1d candle
        # the truncated world knows nothing after the cut, the cross asset included
        part = compute_features(
            eth.iloc[:cut],
            cfg,
            "1h",
            cross={"BTC/USDT": btc[btc["timestamp"] <= eth["timestamp"][cut - 1]]},
            exogenous=exo,
        )
        pd.testing.assert_frame_equal(part, full.iloc[:cut], check_exact=False, rtol=1e-9, atol=1e-12)


def test_the_self_test_catches_a_leak(real, monkeypatch):
    """A higher-timeframe join that shows a bucket one candle before it closes must fail the comparison."""
    import candlecast.features.compute as features

    eth, _ = real
    original = features._higher_timeframe
    monkeypatch.setattr(features, "_higher_timeframe", lambda *a: original(*a).shift(-1))
    cfg = FeatureConfig(higher_timeframes=["4h"])
    full = compute_features(eth, cfg, "1h")
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(compute_features(eth.iloc[:1502], cfg, "1h"), full.iloc[:1502])
