"""The look-ahead self-test: features of data truncated at t equal the full-data features before t.

It runs every feature (indicators, realized measures, 4h and 1d context, a cross asset, an exogenous
series, the Hampel filter) over several cut points, including cuts in the middle of a higher-timeframe candle,
on two markets: a seeded synthetic one with planted outages (always runs) and the real Binance
candles in ../shared/data (when present).
"""

import numpy as np
import pandas as pd
import pytest

from candlecast.config import ExogenousConfig, FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import compute_features, feature_columns
from candlecast.features.exogenous import read_exogenous

HOUR = 3_600_000
SYNTHETIC_START = 1_717_200_000_000  # 2024-06-01 00:00 UTC
# Outages planted in the synthetic market, like the real files' (a few hours each, different per asset),
# so the higher-timeframe buckets and the cross-asset join also meet holes.
ETH_OUTAGES = (range(700, 703), range(1800, 1801))
BTC_OUTAGES = (range(1200, 1204),)
CUTS = (400, 701, 1501, 1502, 2222, 2999)  # odd cuts end inside a 4h and a 1d candle; 701 just after an outage


def _with_outages(frame: pd.DataFrame, outages: tuple[range, ...]) -> pd.DataFrame:
    drop = [i for hole in outages for i in hole]
    return frame.drop(index=drop).reset_index(drop=True)


def _synthetic_market() -> tuple[pd.DataFrame, pd.DataFrame]:
    n = 3000 + sum(len(h) for h in ETH_OUTAGES)  # 3000 rows after the holes, like the real slice
    eth = _with_outages(synthetic_candles("ETH/USDT", SYNTHETIC_START, n, seed=11), ETH_OUTAGES)
    btc = _with_outages(synthetic_candles("BTC/USDT", SYNTHETIC_START, n, seed=11), BTC_OUTAGES)
    return eth, btc


def _real_market(shared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = shared_data / "binance"
    eth = pd.read_csv(root / "binance_ETH-USDT_1h.csv.gz").iloc[-3000:].reset_index(drop=True)
    btc = pd.read_csv(root / "binance_BTC-USDT_1h.csv.gz").iloc[-3000:].reset_index(drop=True)
    return eth, btc


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def market(request) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ETH and BTC hourly candles, 3000 rows each; the real pair is deselected when ../shared/data is absent."""
    if request.param == "real":
        return _real_market(request.getfixturevalue("shared_data"))
    return _synthetic_market()


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
        realized=[
            "rv",
            "parkinson",
            "garman_klass",
            "rogers_satchell",
            "yang_zhang",
            "semivariance",
            "jump",
            "quarticity",
        ],
    )
    return cfg, [read_exogenous(path)]


def test_truncated_features_equal_full_features_for_every_column(market, tmp_path):
    eth, btc = market
    cfg, exo = _everything(tmp_path, int(eth["timestamp"].iloc[0]))
    full = compute_features(eth, cfg, "1h", cross={"BTC/USDT": btc}, exogenous=exo)
    # 9 base, 10 indicators, 27 realized (9 measures x day, week, month), 6 higher-timeframe, 4 cross, 1 exogenous
    assert len(feature_columns(full)) == 57
    assert full[feature_columns(full)].iloc[-1000:].notna().all().all(), (
        "every feature must be live, or it tests nothing"
    )
    for cut in CUTS:
        # the truncated world knows nothing after the cut, the cross asset included
        part = compute_features(
            eth.iloc[:cut],
            cfg,
            "1h",
            cross={"BTC/USDT": btc[btc["timestamp"] <= eth["timestamp"][cut - 1]]},
            exogenous=exo,
        )
        pd.testing.assert_frame_equal(part, full.iloc[:cut], check_exact=False, rtol=1e-9, atol=1e-12)


def _centred_hampel(x: pd.Series, window: int, sigmas: float) -> pd.Series:
    """The Hampel filter with a centred window: each value is judged against candles still to come."""
    med = x.rolling(window, center=True, min_periods=1).median()
    mad = (x - med).abs().rolling(window, center=True, min_periods=1).median() * 1.4826
    return x.where((x - med).abs() <= sigmas * mad, med)


# leak name -> (function of candlecast.features.compute to replace, its leaky stand-in factory, the config using it)
LEAKS = {
    # a higher-timeframe bucket shown one candle before it closes
    "higher_timeframe": ("_higher_timeframe", lambda f: lambda *a: f(*a).shift(-1), {"higher_timeframes": ["4h"]}),
    # the cross asset's next candle joined to this one
    "cross_asset": ("_cross_asset", lambda f: lambda *a: f(*a).shift(-1), {"cross_assets": ["BTC/USDT"]}),
    # realized measures over windows that end one candle late
    "realized": ("realized_features", lambda f: lambda *a: f(*a).shift(-1), {"realized": ["yang_zhang", "jump"]}),
    # an outlier filter that looks both ways
    "centred_hampel": ("hampel", lambda f: _centred_hampel, {"denoise": "hampel"}),
}


def _cuts_that_differ(eth: pd.DataFrame, btc: pd.DataFrame, cfg: FeatureConfig) -> list[int]:
    """The cut points where features of the truncated data differ from the full-data features."""
    full = compute_features(eth, cfg, "1h", cross={"BTC/USDT": btc})
    differ = []
    for cut in CUTS:
        known = {"BTC/USDT": btc[btc["timestamp"] <= eth["timestamp"][cut - 1]]}
        try:
            part = compute_features(eth.iloc[:cut], cfg, "1h", cross=known)
            pd.testing.assert_frame_equal(part, full.iloc[:cut], check_exact=False, rtol=1e-9, atol=1e-12)
        except AssertionError:
            differ.append(cut)
    return differ


@pytest.mark.parametrize("leak", list(LEAKS))
def test_the_self_test_catches_a_leak(market, monkeypatch, leak):
    """Each planted leak must fail the truncated-versus-full comparison, or the self-test proves nothing."""
    import candlecast.features.compute as features

    eth, btc = market
    name, leaky, settings = LEAKS[leak]
    cfg = FeatureConfig(**settings)
    assert _cuts_that_differ(eth, btc, cfg) == []

    monkeypatch.setattr(features, name, leaky(getattr(features, name)))
    assert _cuts_that_differ(eth, btc, cfg), f"the planted {leak} leak went unnoticed"
