"""The candle contract: one clean frame passes, and each corruption is caught by the right expectation."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from candlecast.expectations.candles import CandleBounds, candle_suite, gap_stats, live_parameters, move_ratio
from candlecast.expectations.runner import validate_candles
from tests.expectations.candle_frames import HOUR_MS, clean_frame, failed

PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
BETWEEN = "expect_column_values_to_be_between"
SCHEMA = "expect_table_columns_to_match_ordered_list"
LONGEST_GAP = "expect_column_longest_gap_to_be_at_most"
SHARE = "expect_column_missing_candle_share_to_be_at_most"
FILLER = "expect_candles_to_not_be_flat_zero_volume_filler"
MOVES = "expect_candle_moves_to_be_within_recent_range"


def _set(column: str, row: int, value: Callable[[pd.DataFrame], object]) -> Callable[[pd.DataFrame], None]:
    """Corruption that overwrites one cell with a value computed from the clean frame."""

    def corrupt(df: pd.DataFrame) -> None:
        df.loc[row, column] = value(df)

    return corrupt


def _swap_timestamps(df: pd.DataFrame) -> None:
    df.loc[[20, 21], "timestamp"] = df.loc[[21, 20], "timestamp"].to_numpy()


def _conflicting_duplicate(df: pd.DataFrame) -> pd.DataFrame:
    """A second, different copy of hour 10 (as in the CryptoDataDownload export): no gap, just a conflict."""
    copy = df.loc[[10]].assign(close=lambda d: d["close"] * 1.001, high=lambda d: d[["high", "close"]].max(axis=1))
    return pd.concat([df.iloc[:11], copy, df.iloc[11:]], ignore_index=True)


def _drop_rows(rows: list[int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda df: df.drop(index=rows).reset_index(drop=True)


def _flat_filler(df: pd.DataFrame) -> None:
    df.loc[60, ["open", "high", "low", "close"]] = df.loc[59, "close"]
    df.loc[60, "volume"] = 0.0


def _spike(df: pd.DataFrame) -> None:
    """One candle whose wick spans 80x the typical range: a bad print, not a market."""
    df.loc[100, "high"] = df.loc[100, "high"] * 4.0


# name -> (corruption applied in place or returning a new frame, expected (expectation, columns))
CRITICAL_CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame | None], tuple[str, str]]] = {
    "missing_column": (lambda df: df.drop(columns=["volume"]), (SCHEMA, "")),
    "extra_column": (lambda df: df.assign(trades=1), (SCHEMA, "")),
    "null_close": (_set("close", 10, lambda df: np.nan), ("expect_column_values_to_not_be_null", "close")),
    "duplicate_timestamp": (_conflicting_duplicate, ("expect_column_values_to_be_unique", "timestamp")),
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
    # every other candle missing: a 2h series labelled 1h, not an outage
    "mostly_missing": (lambda df: df.iloc[::3].reset_index(drop=True), (SHARE, "timestamp")),
}

WARNING_CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame | None], tuple[str, str]]] = {
    "outage_gap": (_drop_rows([70, 71, 72]), (LONGEST_GAP, "timestamp")),
    "many_small_gaps": (_drop_rows(list(range(20, 180, 40))), (SHARE, "timestamp")),
    "flat_zero_volume_filler": (_flat_filler, (FILLER, "open, high, low, close, volume")),
    "extreme_move": (_spike, (MOVES, "high, low, close")),
}


def _corrupted(name: str, table: dict) -> tuple[pd.DataFrame, tuple[str, str]]:
    corrupt, expected = table[name]
    df = clean_frame()
    out = corrupt(df)  # cell edits change df in place and return None; the rest return a new frame
    return (df if out is None else out), expected


def test_clean_frame_passes() -> None:
    report = validate_candles(clean_frame(), "1h", series="test:BTC/USDT:1h")

    assert report.success, report.summary()
    assert report.failures == []
    assert report.status == "passed"
    assert report.n_rows == 200
    assert report.n_expectations == len(candle_suite("1h").expectations)
    assert report.suite == "candle_contract_1h"
    assert report.summary().startswith(f"passed {report.n_expectations} expectations on 200 rows")


@pytest.mark.parametrize("name", list(CRITICAL_CORRUPTIONS))
def test_critical_corruption_is_caught_by_the_right_expectation(name: str) -> None:
    df, expected = _corrupted(name, CRITICAL_CORRUPTIONS)

    report = validate_candles(df, "1h")

    assert not report.success
    assert expected in failed(report), report.summary()
    assert next(f for f in report.failures if (f["expectation"], f["columns"]) == expected)["severity"] == "critical"


@pytest.mark.parametrize("name", list(WARNING_CORRUPTIONS))
def test_warning_is_reported_and_lets_the_batch_through(name: str) -> None:
    df, expected = _corrupted(name, WARNING_CORRUPTIONS)

    report = validate_candles(df, "1h")

    assert report.success, report.summary()
    assert report.status == "passed with warnings"
    assert expected in failed(report), report.summary()
    assert {f["severity"] for f in report.failures} == {"warning"}


def test_gap_warning_names_the_missing_range() -> None:
    report = validate_candles(clean_frame().drop(index=[70, 71, 72]).reset_index(drop=True), "1h")

    gap = next(f for f in report.failures if f["expectation"] == LONGEST_GAP)
    assert gap["sample"]["observed"] == 3
    hole = gap["sample"]["details"]["largest"]
    assert hole == [{"from": "2020-09-22T22:00Z", "to": "2020-09-23T00:00Z", "missing": 3}]
    assert "2020-09-22T22:00Z..2020-09-23T00:00Z (3)" in report.summary()


def test_gap_stats() -> None:
    ts = np.array([0, 1, 2, 5, 6, 10, 10]) * HOUR_MS  # holes of 2 and 3 candles, one duplicate

    stats = gap_stats(ts, HOUR_MS)

    assert stats | {"largest": None} == {
        "expected": 11, "missing": 5, "share": 5 / 11, "gaps": 2, "longest": 3, "largest": None
    }  # fmt: skip
    assert [g["missing"] for g in stats["largest"]] == [2, 3]  # in time order


def test_extreme_move_flags_the_spike_not_its_neighbours() -> None:
    df = clean_frame()
    _spike(df)

    ratio = move_ratio(df["high"], df["low"], df["close"], window=168, min_history=24)

    assert ratio.idxmax() == 100
    assert ratio[100] > 50 > ratio.drop(100).max()


def test_a_flat_stretch_gives_no_verdict_instead_of_flagging_every_move() -> None:
    df = clean_frame()
    df.loc[:150, ["open", "high", "low", "close"]] = 100.0  # an illiquid pair: mostly flat candles

    report = validate_candles(df, "1h")

    assert MOVES not in {f["expectation"] for f in report.failures}


def test_live_series_closed_and_fresh() -> None:
    df = clean_frame()
    last = int(df["timestamp"].iloc[-1])

    closed = validate_candles(df, "1h", now_ms=last + HOUR_MS)
    forming = validate_candles(df, "1h", now_ms=last + HOUR_MS // 2)
    stale = validate_candles(df, "1h", now_ms=last + 10 * HOUR_MS, max_staleness_ms=2 * HOUR_MS)

    assert closed.success and closed.failures == [], closed.summary()
    assert closed.suite == "candle_contract_1h_live"
    assert not forming.success
    assert failed(forming) == {(BETWEEN, "timestamp")}
    assert [r["timestamp"] for r in forming.failures[0]["rows"]] == [last]  # the forming candle, by name
    assert stale.success  # a lagging exchange warns: its candles are still right
    assert failed(stale) == {("expect_column_max_to_be_between", "timestamp")}
    assert stale.failures[0]["severity"] == "warning"


def test_live_parameters() -> None:
    params = live_parameters("1h", now_ms=10 * HOUR_MS + 5)

    assert params == {"last_closed_open_ms": 9 * HOUR_MS, "freshest_open_ms": 6 * HOUR_MS}
    with pytest.raises(ValueError, match="max_staleness"):
        live_parameters("1h", 0, max_staleness_ms=-1)


def test_bounds_are_parameters() -> None:
    gappy = clean_frame().drop(index=[70, 71, 72]).reset_index(drop=True)

    report = validate_candles(gappy, "1h", bounds=CandleBounds(max_gap_candles=3, warn_missing_share=0.02))

    assert report.failures == [], report.summary()


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
    assert all(f["unexpected_count"] is None for f in errors if f["severity"] == "critical")
    assert "error:" in report.summary()


def test_alignment_follows_the_timeframe() -> None:
    report = validate_candles(clean_frame(), "1d")

    assert not report.success
    assert ("expect_column_values_to_be_aligned_to_timeframe", "timestamp") in failed(report)


def test_summary_markdown_and_to_dict_show_the_offending_rows() -> None:
    df = clean_frame()
    df.loc[50, "high"] = df.loc[50, "low"] - 1.0
    df.loc[7, "close"] = np.nan
    report = validate_candles(df, "1h", series="test:BTC/USDT:1h")

    text = report.summary()
    assert text.startswith("FAILED")
    assert f"{PAIR} on high, low: 1 unexpected" in text
    assert "expect_column_values_to_not_be_null on close: 1 unexpected" in text
    assert "test:BTC/USDT:1h" in text
    assert f"timestamp={df.loc[50, 'timestamp']} (2020-09-22 02:00)" in text  # the whole offending row

    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["success"] is False and payload["status"] == "FAILED"
    pair = next(f for f in payload["failures"] if f["columns"] == "high, low")
    assert pair["sample"] == [{"index": 50, "value": [df.loc[50, "high"], df.loc[50, "low"]]}]
    assert pair["rows"] == [{"row": 50, **df.loc[[50]].to_dict("records")[0]}]

    markdown = report.markdown("Candle batch")
    assert markdown.startswith("# Candle batch: FAILED")
    assert f"| critical | {PAIR} | high, low | 1 |" in markdown
    assert f"| 50 | {df.loc[50, 'timestamp']} (2020-09-22 02:00) |" in markdown
    assert {r["expectation"] for r in report.table()} == {PAIR, "expect_column_values_to_not_be_null"}


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
