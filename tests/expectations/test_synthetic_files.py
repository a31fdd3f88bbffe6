"""Twins of test_real_files.py on seeded synthetic files with the same faults planted: they always run.

Each test here mirrors one real-file test (same verdicts, same expectations named), with counts known
from the planted faults instead of measured from ../shared/data.
"""

from __future__ import annotations

import market_faults as mf
import pandas as pd
import pytest

from candlecast.expectations.runner import ValidationReport, validate_candles

GAP = "expect_column_longest_gap_to_be_at_most"
SHARE = "expect_column_missing_candle_share_to_be_at_most"
FILLER = "expect_candles_to_not_be_flat_zero_volume_filler"
MOVES = "expect_candle_moves_to_be_within_recent_range"
UNIQUE = "expect_column_values_to_be_unique"
INCREASING = "expect_column_values_to_be_increasing"
CLOSED = ("expect_column_values_to_be_between", "timestamp")
HOUR = 3_600_000


def _check(df: pd.DataFrame, timeframe: str, name: str = "synthetic", **kwargs: object) -> ValidationReport:
    return validate_candles(df, timeframe, name, **kwargs)  # type: ignore[arg-type]


def _by_type(report: ValidationReport) -> dict[str, dict]:
    return {f["expectation"]: f for f in report.failures}


@pytest.fixture(scope="module")
def dirty() -> pd.DataFrame:
    return mf.dirty_export()


@pytest.mark.parametrize("pair", ["BTC", "ETH", "BNB", "SOL", "XRP"])
def test_main_1h_set_passes_with_its_outages_as_warnings(pair: str) -> None:
    report = _check(mf.main_set(pair), "1h")

    assert report.success, report.summary()
    failures = _by_type(report)
    assert set(failures) == {GAP, FILLER}
    details = failures[GAP]["sample"]["details"]
    assert (details["gaps"], details["missing"], details["longest"]) == (10, 20, 4)
    assert failures[FILLER]["unexpected_count"] == 2
    assert {f["severity"] for f in report.failures} == {"warning"}


def test_daily_file_with_a_forming_last_candle_passes_as_history_but_not_live() -> None:
    df = mf.with_partial_last_candle(mf.market("BTC/USDT", 1400, "1d"))
    last = mf.last_open(df)

    history = _check(df, "1d")
    live = _check(df, "1d", now_ms=last + 12 * HOUR)

    assert history.success and history.failures == [], history.summary()
    assert not live.success
    assert {(f["expectation"], f["columns"]) for f in live.failures if f["severity"] == "critical"} == {CLOSED}
    assert [r["timestamp"] for r in live.failures[0]["rows"]] == [last]


def test_dirty_1h_export_is_refused_for_its_conflicting_duplicates(dirty: pd.DataFrame) -> None:
    report = _check(dirty, "1h")

    assert not report.success
    failures = _by_type(report)
    assert {e for e, f in failures.items() if f["severity"] == "critical"} == {UNIQUE, INCREASING}
    n = len(mf.DUPLICATED_HOURS)
    assert failures[UNIQUE]["unexpected_count"] == 2 * n  # both copies of each duplicated hour
    assert failures[INCREASING]["unexpected_count"] == n  # the second copy does not increase
    dup = failures[UNIQUE]["rows"][:2]
    assert dup[0]["timestamp"] == dup[1]["timestamp"] and dup[0]["open"] != dup[1]["open"]
    assert failures[FILLER]["severity"] == "warning"
    assert failures[FILLER]["unexpected_count"] == len(mf.FILLER_ROWS)


def test_dirty_bogus_first_candle_is_flagged_as_an_extreme_move(dirty: pd.DataFrame) -> None:
    moves = _by_type(_check(dirty, "1h"))[MOVES]

    assert moves["unexpected_count"] == 1
    assert moves["rows"] == [{"row": 0, **dirty.iloc[[0]].to_dict("records")[0]}]


@pytest.mark.parametrize("timeframe", ["1h", "1d"])
def test_dirty_partial_last_candle_is_caught_by_the_closed_candle_check(dirty: pd.DataFrame, timeframe: str) -> None:
    df = dirty if timeframe == "1h" else mf.dirty_daily()
    last = mf.last_open(df)

    history = _check(df, timeframe)
    live = _check(df, timeframe, now_ms=mf.minutes_into_last(df, timeframe, 15))

    assert CLOSED not in {(f["expectation"], f["columns"]) for f in history.failures}
    closed = next(f for f in live.failures if (f["expectation"], f["columns"]) == CLOSED)
    assert closed["severity"] == "critical" and closed["unexpected_count"] == 1
    assert closed["rows"][0]["timestamp"] == last


def test_dirty_daily_export_has_one_conflicting_duplicate() -> None:
    report = _check(mf.dirty_daily(), "1d")

    assert not report.success
    assert _by_type(report)[UNIQUE]["unexpected_count"] == 2


@pytest.mark.parametrize(
    ("timeframe", "n", "holes", "share_warned"),
    [("1m", 3000, 200, True), ("1m", 4000, 300, True), ("5m", 2000, 5, False)],
)
def test_no_trade_gaps_are_reported_not_blocked(timeframe: str, n: int, holes: int, share_warned: bool) -> None:
    df, gaps, missing = mf.no_trade_gaps(timeframe, n, holes, seed=n + holes)

    report = _check(df, timeframe)

    assert report.success, report.summary()
    failures = _by_type(report)
    details = failures[GAP]["sample"]["details"]
    assert (details["gaps"], details["missing"]) == (gaps, missing)
    assert (SHARE in failures) == share_warned
