"""Features for the last window only: what prediction computes from the newest candles equals the full history's.

Prediction (candlecast.forecasting.runtime) computes features on the window and its warm-up
(``BundleSpec.min_candles + 1`` candles), not on the whole history. Every rolling feature of the
last window then equals the full computation's to float rounding; the recursive averages (RSI, MACD,
ATR) keep a start-up weight under 2% of their first gap (``warmup_rows``), under 1e-3 of each
column's spread. Exogenous files are read once per process while the file stays the same file.
For many series at once (``last_windows``: serving, ``predict_many``) the last windows equal each
series' own ``compute_features`` on its tail.
"""

import os

import numpy as np
import pandas as pd
import pytest

from candlecast.config import ExogenousConfig, FeatureConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import compute_features, feature_columns, warmup_rows
from candlecast.features.exogenous import cached_exogenous
from candlecast.features.last_window import batchable, last_windows
from candlecast.features.realized import MEASURES
from candlecast.io import write_csv
from tests.conftest import SHARED_DATA

HOUR = 3_600_000
RECURSIVE = ("rsi", "macd", "macd_signal", "macd_hist", "atr")


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def candles(request) -> pd.DataFrame:
    if request.param == "real":
        return pd.read_csv(SHARED_DATA / "binance" / "binance_ETH-USDT_1h.csv.gz").iloc[-3000:].reset_index(drop=True)
    return synthetic_candles("ETH/USDT", 1_717_200_000_000, 3000, seed=11)


def _daily_index(path, candles: pd.DataFrame) -> ExogenousConfig:
    days = np.arange(int(candles["timestamp"].iloc[0]) // 86_400_000, int(candles["timestamp"].iloc[-1]) // 86_400_000)
    write_csv(pd.DataFrame({"timestamp": days * 86_400_000, "index": np.cos(days)}), path)
    return ExogenousConfig(path=str(path), delay_ms=HOUR)


@pytest.mark.parametrize(
    "options",
    [{}, {"higher_timeframes": ["4h", "1d"]}, {"indicators": True, "higher_timeframes": ["4h"]}],
    ids=["base", "higher-timeframes", "indicators"],
)
def test_the_last_windows_features_equal_the_full_computations(candles, options, tmp_path):
    cfg = FeatureConfig(lookback=48, exogenous=[_daily_index(tmp_path / "index.csv", candles)], **options)
    exogenous = [cached_exogenous(source.path) for source in cfg.exogenous]
    need = warmup_rows(cfg, "1h") + cfg.lookback + 1  # what prediction computes: BundleSpec.min_candles + 1
    full = compute_features(candles, cfg, "1h", exogenous=exogenous)
    last = compute_features(candles.tail(need), cfg, "1h", exogenous=exogenous)
    assert len(last) == need < len(full) / 10
    columns = feature_columns(full)
    assert feature_columns(last) == columns and any(c.startswith("exo_") for c in columns)
    window, expected = last.iloc[-cfg.lookback :], full.iloc[-cfg.lookback :]
    assert np.isfinite(window[columns].to_numpy()).all()
    np.testing.assert_array_equal(window["timestamp"], expected["timestamp"])
    for col in columns:
        tolerance = 1e-3 * full[col].std() if col in RECURSIVE else 1e-9
        np.testing.assert_allclose(window[col], expected[col], rtol=0, atol=tolerance, err_msg=col)


def test_an_exogenous_file_is_read_once_while_it_stays_the_same_file(tmp_path):
    path = tmp_path / "sentiment.csv"
    write_csv(pd.DataFrame({"timestamp": [0, 86_400_000], "score": [1.0, 2.0]}), path)
    first = cached_exogenous(path)
    assert cached_exogenous(path) is first  # no second read
    assert cached_exogenous(path, ["score"]) is not first  # another column selection is another frame
    # a new day appended and the file replaced atomically, as a feed writes it: read again
    write_csv(pd.DataFrame({"timestamp": [0, 86_400_000, 172_800_000], "score": [1.0, 2.0, 3.0]}), path)
    again = cached_exogenous(path)
    assert list(again["score"]) == [1.0, 2.0, 3.0]
    # same size, new content: the modification time tells
    write_csv(pd.DataFrame({"timestamp": [0, 86_400_000, 172_800_000], "score": [1.0, 2.0, 4.0]}), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert list(cached_exogenous(path)["score"]) == [1.0, 2.0, 4.0]


def test_a_missing_exogenous_file_is_one_clear_line(tmp_path):
    with pytest.raises(ValueError, match=r"exogenous file .*missing\.csv does not exist: fix features\.exogenous"):
        cached_exogenous(tmp_path / "missing.csv")


def _real_1h(symbol: str) -> pd.DataFrame:
    return pd.read_csv(SHARED_DATA / "binance" / f"binance_{symbol}-USDT_1h.csv.gz").iloc[-1500:].reset_index(drop=True)


@pytest.mark.real_data
@pytest.mark.parametrize(
    "options",
    [{}, {"indicators": True, "higher_timeframes": ["4h", "1d"]}, {"realized": list(MEASURES)}],
    ids=["base", "indicators-htf", "realized"],
)
def test_many_series_last_windows_in_one_pass_equal_each_series_own_computation(options):
    """``last_windows`` (serving, predict_many) against ``compute_features`` on each series' tail alone.

    Five real markets, each cut at two closes (the hour, and so the higher-timeframe bucket, the
    window ends in differs), with the real fear & greed index joined; a tail one candle shorter
    (a request of exactly ``min_candles``); a tail with a missing candle in its warm-up and an
    unsorted one, which go through compute_features alone (``fallback``), and a gap in the window.
    """
    fear_greed = ExogenousConfig(path=str(SHARED_DATA / "exogenous" / "alternative_me_fear_greed_1d.csv.gz"))
    cfg = FeatureConfig(lookback=48, exogenous=[fear_greed.model_copy(update={"delay_ms": HOUR})], **options)
    assert batchable(cfg)  # realized measures too: only cross assets and the Hampel filter go one by one
    assert not batchable(cfg.model_copy(update={"denoise": "hampel"}))
    exogenous = [cached_exogenous(source.path) for source in cfg.exogenous]
    need = warmup_rows(cfg, "1h") + cfg.lookback + 1
    tails = []
    for i, symbol in enumerate(["BNB", "BTC", "ETH", "SOL", "XRP"]):
        candles = _real_1h(symbol)
        tails += [candles.tail(need), candles.iloc[: -(7 * i + 2)].tail(need)]
    eth = _real_1h("ETH")
    tails.append(eth.tail(need - 1))
    holed = eth.drop(index=eth.index[-need + 5]).tail(need)  # a candle missing in the warm-up
    window_gap = eth.drop(index=eth.index[-10]).tail(need)  # and one in the window itself
    tails += [holed, window_gap, eth.tail(need).sample(frac=1.0, random_state=0)]
    windows = last_windows(tails, cfg, "1h", cfg.lookback, exogenous)
    assert windows.fallback == [len(tails) - 3, len(tails) - 2, len(tails) - 1]
    assert windows.features.shape == (len(tails), cfg.lookback, len(windows.columns))
    for j, tail in enumerate(tails):
        alone = compute_features(tail, cfg, "1h", exogenous=exogenous).iloc[-cfg.lookback :]
        assert windows.columns == feature_columns(alone)
        np.testing.assert_allclose(
            windows.features[j], alone[windows.columns].to_numpy(), rtol=1e-10, atol=0, err_msg=f"tail {j}"
        )
        np.testing.assert_array_equal(windows.timestamps[j], alone["timestamp"])
        assert windows.closes[j] == alone["close"].iloc[-1]
    finite = np.isfinite(windows.features).all(axis=(1, 2))
    assert finite[:-2].all() and not finite[-2]  # only the window with a missing candle has holes
    assert any(c.startswith("exo_") for c in windows.columns)
    assert all(f"rm_{m}_m" in windows.columns for m in options.get("realized", []) if m not in ("semivariance",))


def test_a_series_shorter_than_one_window_is_one_clear_line():
    candles = synthetic_candles("ETH/USDT", 1_717_200_000_000, 300, seed=11)
    cfg = FeatureConfig(lookback=48)
    with pytest.raises(ValueError, match=r"^series 1 has 40 candles, fewer than the 48 of one window$"):
        last_windows([candles, candles.tail(40)], cfg, "1h", cfg.lookback)
