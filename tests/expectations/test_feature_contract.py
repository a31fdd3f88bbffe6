"""The feature contract: real feature files pass, and each corruption is caught by the right expectation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import market_faults as mf
import numpy as np
import pandas as pd
import pytest
from test_candle_contract import clean_frame

from candlecast.config import FeatureConfig
from candlecast.expectations.features import rows_since_restart
from candlecast.expectations.runner import validate_features
from candlecast.features.compute import feature_columns, series_features, warmup_rows

CFG = FeatureConfig(horizon=6)
WARMUP = warmup_rows(CFG, "1h")
FINITE = "expect_column_values_to_be_finite"
AFTER_WARMUP = "expect_feature_to_be_defined_after_warmup"
BETWEEN = "expect_column_values_to_be_between"
TS = "timestamp"


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return series_features(clean_frame(n=WARMUP + 200), CFG, "1h")


def _set(column: str, row: int, value: float) -> Callable[[pd.DataFrame], None]:
    def corrupt(df: pd.DataFrame) -> None:
        df.loc[row, column] = value

    return corrupt


CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame | None], tuple[str, str]]] = {
    "missing_base_feature": (lambda df: df.drop(columns=["rvol"]), ("expect_table_columns_to_match_set", "")),
    "missing_target": (lambda df: df.drop(columns=["target_6"]), ("expect_table_columns_to_match_set", "")),
    "too_short": (lambda df: df.iloc[:WARMUP].copy(), ("expect_table_row_count_to_be_between", "")),
    "duplicate_timestamp": (
        lambda df: pd.concat([df, df.iloc[[-1]]]),
        ("expect_column_values_to_be_unique", "timestamp"),
    ),
    "unsorted": (lambda df: df.iloc[::-1], ("expect_column_values_to_be_increasing", "timestamp")),
    "infinite_feature": (_set("ret_1", WARMUP + 5, np.inf), (FINITE, "ret_1")),
    "infinite_target": (_set("target_3", WARMUP + 5, -np.inf), (FINITE, "target_3")),
    "nan_after_warmup": (_set("volume_z", WARMUP + 10, np.nan), (AFTER_WARMUP, "timestamp, volume_z")),
    # GX judges a column map only on its non-null values: a feature column with none at all must still fail
    "all_nan_feature": (lambda df: df.assign(volume_z=np.nan), (AFTER_WARMUP, "timestamp, volume_z")),
    "scaled_feature_out_of_bounds": (_set("volume_z", WARMUP + 10, 80.0), (BETWEEN, "volume_z")),
    "cycle_out_of_bounds": (_set("hour_sin", WARMUP + 11, 1.5), (BETWEEN, "hour_sin")),
    "negative_range": (_set("range", WARMUP + 12, -0.1), (BETWEEN, "range")),
}


def test_clean_features_pass(features: pd.DataFrame) -> None:
    assert features[feature_columns(features)].iloc[:WARMUP].isna().any().any(), "the warm-up must have NaN"

    report = validate_features(features, CFG, "1h", "test")

    assert report.success and report.failures == [], report.summary()
    assert report.suite == "feature_contract"


def test_nan_inside_the_warmup_and_in_targets_is_allowed(features: pd.DataFrame) -> None:
    df = features.copy()
    df.loc[WARMUP - 1, "rvol"] = np.nan
    df.loc[WARMUP + 3, "target_2"] = np.nan  # a target across a gap is undefined on purpose

    assert validate_features(df, CFG, "1h").success


def test_rows_since_restart_counts_from_the_start_and_from_each_missing_candle() -> None:
    hour = 3_600_000
    ts = np.array([0, 1, 2, 5, 6, 7, 8, 10]) * hour  # holes before 5 and before 10

    assert rows_since_restart(ts, hour).tolist() == [0, 1, 2, 0, 1, 2, 3, 0]
    assert rows_since_restart(ts[:0], hour).tolist() == []


def test_a_missing_candle_restarts_the_warmup_and_nothing_more(features: pd.DataFrame) -> None:
    """Right after an outage a return is undefined on purpose; far after it, NaN is a bug again."""
    gap_at = WARMUP + 50
    gappy = features.drop(index=[gap_at]).reset_index(drop=True)
    after_gap = gappy.copy()
    after_gap.loc[gap_at, "ret_1"] = np.nan  # the first row after the hole
    after_gap.loc[gap_at + WARMUP - 1, "rvol"] = np.nan  # still inside the restarted warm-up
    too_late = gappy.copy()
    too_late.loc[gap_at + WARMUP, "rvol"] = np.nan  # one row past it

    allowed = validate_features(after_gap, CFG, "1h")
    caught = validate_features(too_late, CFG, "1h")

    assert allowed.success and allowed.failures == [], allowed.summary()
    assert not caught.success
    assert [(f["expectation"], f["columns"], f["unexpected_count"]) for f in caught.failures] == [
        (AFTER_WARMUP, "timestamp, rvol", 1)
    ]


def test_extra_columns_of_other_configs_are_allowed(features: pd.DataFrame) -> None:
    report = validate_features(features.assign(x_btc_usdt_ret_1=0.0), CFG, "1h")

    assert report.success, report.summary()


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_caught(features: pd.DataFrame, name: str) -> None:
    corrupt, expected = CORRUPTIONS[name]
    df = features.copy()
    out = corrupt(df)
    df = df if out is None else out.reset_index(drop=True)

    report = validate_features(df, CFG, "1h")

    assert not report.success
    assert expected in {(f["expectation"], f["columns"]) for f in report.failures}, report.summary()


def test_real_feature_file_passes(shared_data: Path) -> None:
    """The whole main BTC file, with its 10 real outages (each restarts the warm-up of gap-aware returns)."""
    candles = pd.read_csv(shared_data / "binance" / "binance_BTC-USDT_1h.csv.gz")
    cfg = FeatureConfig()

    report = validate_features(series_features(candles, cfg, "1h"), cfg, "1h", "binance_BTC-USDT_1h")

    assert report.success and report.failures == [], report.summary()


def test_synthetic_feature_file_passes() -> None:
    """The twin of test_real_feature_file_passes on a synthetic hourly market with the real set's outages."""
    candles = mf.main_set("BTC")
    cfg = FeatureConfig()

    report = validate_features(series_features(candles, cfg, "1h"), cfg, "1h", "synthetic_BTC-USDT_1h")

    assert report.success and report.failures == [], report.summary()
