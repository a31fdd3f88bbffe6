"""The live candle contract on many series in one GX run: the same verdicts as each series alone, fewer runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from candlecast.expectations.candles import CandleBounds, live_parameters
from candlecast.expectations.runner import ValidationReport, validate_candles
from tests.expectations.candle_frames import HOUR_MS, clean_frame, failed


def _stale(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[:-5].reset_index(drop=True)  # the newest candles missing: freshness warns


def _gap(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(index=50).reset_index(drop=True)


def _duplicate(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[-1]]], ignore_index=True)


def _filler(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[30, ["open", "high", "low", "close"]], df.loc[30, "volume"] = df.loc[30, "close"], 0.0
    return df


def _jump(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.loc[100, "high"] = df.loc[100, "high"] * 5  # a move far past the recent range (a warning)
    return df


def _float32(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"volume": "float32"})


@pytest.fixture
def gx_runs(monkeypatch) -> list[str]:
    """The suites of the GX runs made while the test runs (the real runs, counted on their way)."""
    from candlecast.expectations import runner

    runs: list[str] = []
    validate = runner._validate

    def counted(df, suite, *args, **kwargs):
        runs.append(suite.name)
        return validate(df, suite, *args, **kwargs)

    monkeypatch.setattr(runner, "_validate", counted)
    return runs


def _verdicts(reports: list[ValidationReport]) -> list[tuple[str, bool, set[tuple[str, str]]]]:
    return [(r.series, r.success, failed(r)) for r in reports]


NOW_MANY = int(clean_frame()["timestamp"].iloc[-1]) + 2 * HOUR_MS  # the frames' close: the newest candle is fresh


@pytest.fixture(scope="module")
def clean_alone() -> list[ValidationReport]:
    """Five clean series, each validated on its own (once for the module)."""
    return [validate_candles(clean_frame(200, seed=i), "1h", f"s{i}", now_ms=NOW_MANY) for i in range(5)]


@pytest.mark.parametrize("corrupt", [None, _stale, _gap, _duplicate, _filler, _jump, _float32])
def test_many_series_in_one_run_answer_as_each_series_alone(
    corrupt, clean_alone: list[ValidationReport], gx_runs: list[str]
) -> None:
    """The live loop's batch check: one run for all; a series at fault (by its failing rows) gets its own report."""
    from candlecast.expectations.runner import validate_candles_many

    frames = [(f"s{i}", clean_frame(200, seed=i)) for i in range(5)]
    alone = list(clean_alone)
    if corrupt is not None:
        frames[2] = ("s2", corrupt(frames[2][1]))
        alone[2] = validate_candles(frames[2][1], "1h", "s2", now_ms=NOW_MANY)
    gx_runs.clear()

    many = validate_candles_many(frames, "1h", now_ms=NOW_MANY)

    assert _verdicts(many) == _verdicts(alone)
    screen, own = "candle_contract_1h_live_screen", "candle_contract_1h_live"
    assert gx_runs == ([screen] if corrupt is None else [screen, own])  # 2 runs, not 1 + 5
    assert [r.suite for r in many] == [screen, screen, screen if corrupt is None else own, screen, screen]


def test_each_frame_is_judged_alone_two_chunks_of_a_series_and_two_series_at_fault(gx_runs: list[str]) -> None:
    """An old chunk is stale even when the next chunk of its series is fresh; two series at fault, one run each."""
    from candlecast.expectations.runner import validate_candles_many

    first = clean_frame(200, seed=0)
    chunks = [("s0", first.iloc[:100].reset_index(drop=True)), ("s0", first.iloc[100:].reset_index(drop=True))]
    faults = [
        ("s1", _gap(clean_frame(200, seed=1))),
        ("s2", clean_frame(200, seed=2)),
        ("s3", _filler(clean_frame(200, seed=3))),
    ]

    for frames, runs in ((chunks, 2), (faults, 3)):  # the screen, then each frame at fault on its own
        gx_runs.clear()
        many = validate_candles_many(frames, "1h", now_ms=NOW_MANY)
        assert len(gx_runs) == runs
        assert _verdicts(many) == _verdicts([validate_candles(df, "1h", name, now_ms=NOW_MANY) for name, df in frames])
    stale = validate_candles_many(chunks, "1h", now_ms=NOW_MANY)[0]
    assert failed(stale) == {("expect_column_max_to_be_between", "timestamp")}  # 100 candles old: a warning


def test_a_screen_failure_that_names_no_rows_accepts_no_frame() -> None:
    """A table-wide failure (here a column missing from the stack) cannot be put on a frame: None, not 'none'."""
    from candlecast.expectations.batch import frames_at_fault, stacked
    from candlecast.expectations.runner import _SCREEN_FORMAT, _screen_suite, _validate

    stack = stacked([clean_frame(50, seed=0), clean_frame(50, seed=1)]).drop(columns=["volume"])
    now = int(stack["timestamp"].max()) + 2 * HOUR_MS
    params = live_parameters("1h", now)
    suite = _screen_suite("1h", params["freshest_open_ms"], CandleBounds())
    result, _ = _validate(stack, suite, params, None, _SCREEN_FORMAT)

    assert not result.success
    assert frames_at_fault(result.results, stack) is None


def test_a_page_written_after_the_verdict_is_linked_only_while_the_record_holds_it(tmp_path) -> None:
    """CandleGate.keep writes a close's pages after its verdicts were recorded; a newer verdict is never undone."""
    import dataclasses
    from urllib.parse import unquote, urlparse

    from candlecast.data.validations import read_validation, record_validation
    from candlecast.expectations.gate import CandleGate
    from candlecast.schema import SeriesKey
    from candlecast.settings import Settings

    settings = Settings(home=tmp_path)
    first, second = SeriesKey("test", "A/USDT", "1h"), SeriesKey("test", "B/USDT", "1h")
    gate = CandleGate(settings.root, NOW_MANY)
    reports = gate.many([(first, clean_frame(200, seed=0)), (second, clean_frame(200, seed=1))])
    for key, report in zip((first, second), reports, strict=True):
        record_validation(settings, key, report.to_dict())  # as the ingest step records a close's verdicts
    newer = dataclasses.replace(reports[1], checked_at="2030-01-01T00:00:00+00:00")
    record_validation(settings, second, newer.to_dict())  # B checked again before the close's pages are written

    gate.keep()

    linked = read_validation(settings, first)
    assert linked is not None and linked["suite"] == "candle_contract_1h_live_screen"
    assert Path(unquote(urlparse(linked["data_docs"]).path)).is_file()
    assert read_validation(settings, second) == newer.to_dict()  # not the older check's page over the newer verdict
