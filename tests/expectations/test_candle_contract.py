"""The candle contract: one clean frame passes, and each corruption is caught by the right expectation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from candlecast.schema import CANDLE_COLUMNS, timeframe_ms
from expectations.candles import candle_suite
from expectations.runner import ValidationReport, validate_candles

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_1H = SHARED_DATA / "binance" / "binance_BTC-USDT_1h.csv.gz"
DIRTY_1H = SHARED_DATA / "dirty" / "binance_BTC-USDT_1h.csv.gz"

HOUR_MS = timeframe_ms("1h")
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
BETWEEN = "expect_column_values_to_be_between"
SCHEMA = "expect_table_columns_to_match_ordered_list"


def clean_frame(n: int = 200, seed: int = 7) -> pd.DataFrame:
    """A valid 1h random-walk frame: aligned, increasing ms timestamps and consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 20_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.01, n))
    start = 1_600_560_000_000  # 2020-09-20 00:00 UTC, on the hour
    timestamp = start + np.arange(n, dtype="int64") * HOUR_MS
    volume = rng.uniform(0.0, 50.0, n)
    return pd.DataFrame(
        {"timestamp": timestamp, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


def _set(column: str, row: int, value: Callable[[pd.DataFrame], object]) -> Callable[[pd.DataFrame], None]:
    """Corruption that overwrites one cell with a value computed from the clean frame."""

    def corrupt(df: pd.DataFrame) -> None:
        df.loc[row, column] = value(df)

    return corrupt


def _swap_timestamps(df: pd.DataFrame) -> None:
    df.loc[[20, 21], "timestamp"] = df.loc[[21, 20], "timestamp"].to_numpy()


def _failed(report: ValidationReport) -> set[tuple[str, str]]:
    return {(f["expectation"], f["columns"]) for f in report.failures}


# name -> (corruption applied in place or returning a new frame, expected (expectation, columns))
CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame | None], tuple[str, str]]] = {
    "missing_column": (lambda df: df.drop(columns=["volume"]), (SCHEMA, "")),
    "extra_column": (lambda df: df.assign(trades=1), (SCHEMA, "")),
    "null_close": (_set("close", 10, lambda df: np.nan), ("expect_column_values_to_not_be_null", "close")),
    "duplicate_timestamp": (
        _set("timestamp", 11, lambda df: df.loc[10, "timestamp"]),
        ("expect_column_values_to_be_unique", "timestamp"),
    ),
    "non_increasing_timestamp": (_swap_timestamps, ("expect_column_values_to_be_increasing", "timestamp")),
    "misaligned_timestamp": (
        _set("timestamp", 30, lambda df: df.loc[30, "timestamp"] + 1_000),
        ("expect_column_values_to_be_aligned_to_timeframe", "timestamp"),
    ),
    "zero_price": (_set("low", 40, lambda df: 0.0), (BETWEEN, "low")),
    "negative_price": (_set("close", 41, lambda df: -1.0), (BETWEEN, "close")),
    "negative_volume": (_set("volume", 42, lambda df: -5.0), (BETWEEN, "volume")),
    "high_below_low": (_set("high", 50, lambda df: df.loc[50, "low"] - 1.0), (PAIR, "high, low")),
    "high_below_close": (_set("close", 51, lambda df: df.loc[51, "high"] + 1.0), (PAIR, "high, close")),
    "high_below_open": (_set("open", 52, lambda df: df.loc[52, "high"] + 1.0), (PAIR, "high, open")),
    "low_above_open": (_set("open", 53, lambda df: df.loc[53, "low"] - 1.0), (PAIR, "open, low")),
    "low_above_close": (_set("close", 54, lambda df: df.loc[54, "low"] - 1.0), (PAIR, "close, low")),
    "float_timestamps": (
        lambda df: df.astype({"timestamp": "float64"}),
        ("expect_column_values_to_be_of_type", "timestamp"),
    ),
    "integer_volume": (
        lambda df: df.assign(volume=df["volume"].round().astype("int64")),
        ("expect_column_values_to_be_of_type", "volume"),
    ),
    "empty_frame": (lambda df: df.iloc[:0], ("expect_table_row_count_to_be_between", "")),
}


def test_clean_frame_passes() -> None:
    report = validate_candles(clean_frame(), "1h", series="test:BTC/USDT:1h")

    assert report.success, report.summary()
    assert report.failures == []
    assert report.n_rows == 200
    assert report.n_expectations == len(candle_suite("1h").expectations)
    assert report.suite == "candle_contract_1h"
    assert report.summary().startswith(f"passed {report.n_expectations} expectations on 200 rows")


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_caught_by_the_right_expectation(name: str) -> None:
    corrupt, expected = CORRUPTIONS[name]
    df = clean_frame()
    out = corrupt(df)  # cell edits change df in place and return None; the rest return a new frame
    if out is not None:
        df = out

    report = validate_candles(df, "1h")

    assert not report.success
    assert expected in _failed(report), report.summary()
    assert all(f["severity"] == "critical" for f in report.failures)


def test_missing_and_extra_columns_are_named_without_noise() -> None:
    missing = validate_candles(clean_frame().drop(columns=["close"]), "1h")
    extra = validate_candles(clean_frame().assign(trades=1), "1h")

    # Expectations on the absent column raise inside GX; they are folded into the schema failure.
    assert [f["expectation"] for f in missing.failures] == [SCHEMA]
    assert missing.failures[0]["sample"]["missing"] == ["close"]
    assert missing.failures[0]["sample"]["not_run"] > 0
    assert "close" in missing.summary()
    assert extra.failures[0]["sample"]["extra"] == ["trades"]
    assert "trades" in extra.summary()


def test_expectation_that_raises_inside_gx_is_a_failure() -> None:
    # String timestamps make GX's own metrics raise; GX reports that only via exception_info.
    report = validate_candles(clean_frame().astype({"timestamp": "str"}), "1h")

    assert not report.success
    errors = [f for f in report.failures if f["error"]]
    assert errors, report.summary()
    assert all(f["unexpected_count"] is None for f in errors)
    assert "error:" in report.summary()


def test_alignment_follows_the_timeframe() -> None:
    report = validate_candles(clean_frame(), "1d")

    assert not report.success
    assert _failed(report) == {("expect_column_values_to_be_aligned_to_timeframe", "timestamp")}


def test_summary_names_the_failure_and_to_dict_is_json() -> None:
    df = clean_frame()
    df.loc[50, "high"] = df.loc[50, "low"] - 1.0
    df.loc[7, "close"] = np.nan
    report = validate_candles(df, "1h", series="test:BTC/USDT:1h")

    text = report.summary()
    assert text.startswith("FAILED")
    assert f"{PAIR} on high, low: 1 unexpected" in text
    assert "expect_column_values_to_not_be_null on close: 1 unexpected" in text
    assert "test:BTC/USDT:1h" in text

    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["success"] is False
    assert {"expectation", "columns", "unexpected_count", "sample", "severity"} <= set(payload["failures"][0])
    pair = next(f for f in payload["failures"] if f["columns"] == "high, low")
    assert pair["sample"] == [{"index": 50, "value": [df.loc[50, "high"], df.loc[50, "low"]]}]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="timeframe"):
        validate_candles(clean_frame(), "1hour")
    with pytest.raises(TypeError, match="DataFrame"):
        validate_candles(clean_frame().to_dict(), "1h")  # type: ignore[arg-type]


def test_concurrent_validations_do_not_mix_frames() -> None:
    good, bad = clean_frame(), clean_frame()
    bad.loc[5, "volume"] = -1.0

    def check(i: int) -> bool:
        report = validate_candles(bad if i % 2 else good, "1h")
        return report.success == (i % 2 == 0)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(check, range(24)))


@pytest.mark.skipif(not REAL_1H.exists(), reason=f"real candles not found at {REAL_1H}")
def test_real_binance_file_passes() -> None:
    df = pd.read_csv(REAL_1H)
    assert list(df.columns) == CANDLE_COLUMNS
    validate_candles(df, "1h")  # warm-up: context and suite are built once per process

    start = time.perf_counter()
    report = validate_candles(df, "1h", series="binance:BTC/USDT:1h")
    elapsed = time.perf_counter() - start

    print(f"\nvalidate_candles on {len(df)} rows: {elapsed:.3f} s")
    assert report.success, report.summary()


@pytest.mark.skipif(not DIRTY_1H.exists(), reason=f"dirty candles not found at {DIRTY_1H}")
def test_dirty_file_fails_on_duplicate_timestamps() -> None:
    report = validate_candles(pd.read_csv(DIRTY_1H), "1h", series="cryptodatadownload:BTC/USDT:1h")

    assert not report.success
    unique = next(f for f in report.failures if f["expectation"] == "expect_column_values_to_be_unique")
    assert unique["columns"] == "timestamp"
    assert unique["unexpected_count"] > 0
    assert "expect_column_values_to_be_unique on timestamp" in report.summary()
