"""The contract on real candles: clean Binance data passes, real faults are refused for the right reasons.

Counts asserted here were verified against the data itself (see ../shared/data/README.md for provenance).
"""

from __future__ import annotations

from pathlib import Path

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


def _check(path: Path, timeframe: str, **kwargs: object) -> tuple[pd.DataFrame, ValidationReport]:
    df = pd.read_csv(path)
    return df, validate_candles(df, timeframe, path.name, **kwargs)  # type: ignore[arg-type]


def _by_type(report: ValidationReport) -> dict[str, dict]:
    return {f["expectation"]: f for f in report.failures}


@pytest.mark.parametrize("pair", ["BTC", "ETH", "BNB", "SOL", "XRP"])
def test_main_1h_set_passes_with_its_outages_as_warnings(shared_data: Path, pair: str) -> None:
    _, report = _check(shared_data / "binance" / f"binance_{pair}-USDT_1h.csv.gz", "1h")

    assert report.success, report.summary()
    failures = _by_type(report)
    # the README's 10 real outages (20 missing hours, longest 4) and the 2 flat candles before two of them
    assert set(failures) == {GAP, FILLER}
    details = failures[GAP]["sample"]["details"]
    assert (details["gaps"], details["missing"], details["longest"]) == (10, 20, 4)
    assert failures[FILLER]["unexpected_count"] == 2
    assert {f["severity"] for f in report.failures} == {"warning"}


def test_daily_file_with_a_forming_last_candle_passes_as_history_but_not_live(shared_data: Path) -> None:
    # The last row (2026-01-06) was still forming when the file was written: a history has no "now" to
    # check it against, a live series does.
    df, history = _check(shared_data / "binance" / "binance_BTC-USDT_1d.csv.gz", "1d")
    last = int(df["timestamp"].iloc[-1])
    live = validate_candles(df, "1d", now_ms=last + 12 * HOUR)

    assert history.success and history.failures == [], history.summary()
    assert not live.success
    assert {(f["expectation"], f["columns"]) for f in live.failures if f["severity"] == "critical"} == {CLOSED}
    assert [r["timestamp"] for r in live.failures[0]["rows"]] == [last]


def test_dirty_1h_export_is_refused_for_its_conflicting_duplicates(shared_data: Path) -> None:
    df, report = _check(shared_data / "dirty" / "binance_BTC-USDT_1h.csv.gz", "1h")

    assert not report.success
    failures = _by_type(report)
    assert {e for e, f in failures.items() if f["severity"] == "critical"} == {UNIQUE, INCREASING}
    # 2,649 hours exist twice with different values (old and new export format): both copies are flagged
    assert failures[UNIQUE]["unexpected_count"] == 2 * 2649
    assert failures[INCREASING]["unexpected_count"] == 2649
    dup = failures[UNIQUE]["rows"][:2]
    assert dup[0]["timestamp"] == dup[1]["timestamp"] and dup[0]["open"] != dup[1]["open"]
    # CDD filled outages with 117 flat zero-volume candles: flagged, not silently kept
    assert failures[FILLER]["severity"] == "warning" and failures[FILLER]["unexpected_count"] == 117


def test_dirty_bogus_first_candle_is_flagged_as_an_extreme_move(shared_data: Path) -> None:
    # Row 0 (2017-08-17 04:00) has open = high = 16199.91 and low 4261.32: a 280% range in one hour,
    # where the true open was 4261.48. It is the only candle of the file beyond 50x its neighbours' moves.
    df, report = _check(shared_data / "dirty" / "binance_BTC-USDT_1h.csv.gz", "1h")

    moves = _by_type(report)[MOVES]
    assert moves["unexpected_count"] == 1
    assert moves["rows"] == [{"row": 0, **df.iloc[[0]].to_dict("records")[0]}]
    assert df.loc[0, "open"] == df.loc[0, "high"] == 16199.91


@pytest.mark.parametrize(
    ("name", "timeframe", "true_volume"),
    [("binance_BTC-USDT_1h.csv.gz", "1h", 5776.297141), ("binance_BTC-USDT_1d.csv.gz", "1d", 78466.0053)],
)
def test_dirty_partial_last_candle_is_caught_by_the_closed_candle_check(
    shared_data: Path, name: str, timeframe: str, true_volume: float
) -> None:
    # The export was taken minutes into its last candle: its volume is a fraction of the closed candle's
    # (from the Binance sets). Given the clock of the export, the closed-candle check names exactly it.
    df, history = _check(shared_data / "dirty" / name, timeframe)
    last = int(df["timestamp"].iloc[-1])
    live = validate_candles(df, timeframe, name, now_ms=last + 15 * 60_000)

    assert df["volume"].iloc[-1] < 0.15 * true_volume
    assert CLOSED not in {(f["expectation"], f["columns"]) for f in history.failures}
    closed = next(f for f in live.failures if (f["expectation"], f["columns"]) == CLOSED)
    assert closed["severity"] == "critical" and closed["unexpected_count"] == 1
    assert closed["rows"][0]["timestamp"] == last


def test_dirty_daily_export_has_one_conflicting_duplicate(shared_data: Path) -> None:
    _, report = _check(shared_data / "dirty" / "binance_BTC-USDT_1d.csv.gz", "1d")

    assert not report.success
    assert _by_type(report)[UNIQUE]["unexpected_count"] == 2


@pytest.mark.parametrize(
    ("name", "timeframe", "gaps", "missing", "share_warned"),
    [
        ("bittrex_UNITTEST-BTC_1m.csv.gz", "1m", 538, 717, True),
        ("binance_XRP-ETH_1m.csv.gz", "1m", 676, 1091, True),
        ("bittrex_ADA-BTC_5m.csv.gz", "5m", 5, 40, False),
    ],
)
def test_freqtrade_no_trade_gaps_are_reported_not_blocked(
    shared_data: Path, name: str, timeframe: str, gaps: int, missing: int, share_warned: bool
) -> None:
    _, report = _check(shared_data / "freqtrade_testdata" / name, timeframe)

    assert report.success, report.summary()
    failures = _by_type(report)
    details = failures[GAP]["sample"]["details"]
    assert (details["gaps"], details["missing"]) == (gaps, missing)
    assert (SHARE in failures) == share_warned
