"""The candle contract on many series' new candles in one GX run: the live loop's screen.

GX's cost is per expectation, not per row (a one-candle frame takes as long as a day's), so the ten
series that close together are checked as one stacked frame with a ``series`` column (each frame's
position): one run instead of ten. The checks that are row-wise in the per-series suite (nulls, bounds,
grid, OHLC order, filler, closed candles) are the same expectations on the stack; those that look along a
series (unique and increasing open times, gaps, moves against the recent range, freshness) are computed
within each frame. The screen is stricter than the per-series contract: it fails on any gap at all and on
anything the per-series suite would only warn about.

A frame with no failing row in the screen passes every expectation of its own suite, with no warning
(``frames_at_fault``; runner.validate_candles_many accepts it from the screen's verdict):

- not null, price and volume bounds, grid, OHLC order, filler, closed candle: the same row-wise check;
- one-candle steps within the frame: its open times are unique and strictly increasing, with no gap, so
  neither gap expectation nor the missing shares can fail;
- moves: the same ratio (candles.move_ratio) over the frame's own rows;
- freshness: every row of a stale frame fails, so a frame with no failing row has a recent newest candle;
- columns, their types and a row at all are table-wide and name no row: ``stacked`` takes only frames
  that satisfy them, and should one fail anyway, no frame is accepted from the screen.
"""

from __future__ import annotations

from typing import Any, ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import MulticolumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from candlecast.expectations.candles import (
    _MULTICOLUMN_DOMAIN,
    CRITICAL,
    OHLC_PAIRS,
    CandleBounds,
    ExpectCandlesToNotBeFlatZeroVolumeFiller,
    ExpectColumnValuesToBeAlignedToTimeframe,
    _tag,
    move_ratio,
    suite_name,
)
from candlecast.expectations.failures import _exception_message
from candlecast.schema import CANDLE_COLUMNS, PRICE_COLUMNS, timeframe_ms

_DTYPES = ["int64"] + ["float64"] * (len(CANDLE_COLUMNS) - 1)  # timestamp, then prices and volume
SERIES = "series"  # the stacked frame's extra column: the position of the frame a row comes from


class SeriesStepsAreOneCandle(MulticolumnMapMetricProvider):
    """Row-wise over (series, timestamp): the first row of a series, or exactly one candle after the row before."""

    condition_metric_name = "multicolumn_values.candlecast_series_step_is_one_candle"
    condition_domain_keys = _MULTICOLUMN_DOMAIN
    condition_value_keys = ("step_ms",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, step_ms: int, **kwargs: object) -> pd.Series:
        series, ts = column_list.iloc[:, 0], column_list.iloc[:, 1]
        return (series != series.shift()) | (ts - ts.shift() == step_ms)


class ExpectSeriesStepsToBeOneCandle(MulticolumnMapExpectation):
    """Expect each series' open times to step one candle at a time: unique, increasing and gap-free."""

    step_ms: int

    map_metric: ClassVar[str] = SeriesStepsAreOneCandle.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("step_ms", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_list", "step_ms")


class SeriesMovesWithinRecentRange(MulticolumnMapMetricProvider):
    """Row-wise over (series, high, low, close): the move ratio (candles.move_ratio) within its series <= max_ratio."""

    condition_metric_name = "multicolumn_values.candlecast_series_move_within_recent_range"
    condition_domain_keys = _MULTICOLUMN_DOMAIN
    condition_value_keys = ("window", "min_history", "max_ratio")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column_list: pd.DataFrame, window: int, min_history: int, max_ratio: float, **kwargs: object
    ) -> pd.Series:
        ratios = [
            move_ratio(g.iloc[:, 1], g.iloc[:, 2], g.iloc[:, 3], window, min_history)
            for _, g in column_list.groupby(column_list.iloc[:, 0], sort=False)
        ]
        return ~(pd.concat(ratios).reindex(column_list.index) > max_ratio)


class ExpectSeriesMovesToBeWithinRecentRange(MulticolumnMapExpectation):
    """Expect no candle to move more than ``max_ratio`` times the median move around it in its own series."""

    window: int
    min_history: int
    max_ratio: float

    map_metric: ClassVar[str] = SeriesMovesWithinRecentRange.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("window", "min_history", "max_ratio", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_list", "window", "min_history", "max_ratio")


class SeriesNewestIsRecent(MulticolumnMapMetricProvider):
    """Row-wise over (series, timestamp): the row's series has a candle opened at ``freshest_ms`` or later."""

    condition_metric_name = "multicolumn_values.candlecast_series_newest_is_recent"
    condition_domain_keys = _MULTICOLUMN_DOMAIN
    condition_value_keys = ("freshest_ms",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, freshest_ms: int, **kwargs: object) -> pd.Series:
        newest = column_list.iloc[:, 1].groupby(column_list.iloc[:, 0], sort=False).transform("max")
        return newest >= freshest_ms


class ExpectSeriesNewestToBeRecent(MulticolumnMapExpectation):
    """Expect every series' newest candle to have opened at ``freshest_ms`` or later (live freshness)."""

    freshest_ms: int

    map_metric: ClassVar[str] = SeriesNewestIsRecent.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("freshest_ms", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_list", "freshest_ms")


def screen_suite(timeframe: str, freshest_ms: int, bounds: CandleBounds) -> gx.ExpectationSuite:
    """The live candle contract for a stacked frame of many series (CANDLE_COLUMNS + ``series``).

    Every expectation is critical: the screen passes only when no series would see a failure or a warning.
    The closed-candle bound is the live suite's parameter (``candles.LAST_CLOSED``); freshness is a
    value here, since the suite is built per close.
    """
    from candlecast.expectations.candles import LAST_CLOSED

    step_ms = timeframe_ms(timeframe)
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=[*CANDLE_COLUMNS, SERIES]),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in [*CANDLE_COLUMNS, SERIES]),
        gxe.ExpectColumnValuesToBeOfType(column="timestamp", type_="int64"),
        *(gxe.ExpectColumnValuesToBeOfType(column=c, type_="float64") for c in [*PRICE_COLUMNS, "volume"]),
        ExpectSeriesStepsToBeOneCandle(column_list=[SERIES, "timestamp"], step_ms=step_ms),
        ExpectColumnValuesToBeAlignedToTimeframe(column="timestamp", step_ms=step_ms),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True) for c in PRICE_COLUMNS),
        gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        *(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True) for a, b in OHLC_PAIRS),
        ExpectCandlesToNotBeFlatZeroVolumeFiller(column_list=["open", "high", "low", "close", "volume"]),
        ExpectSeriesMovesToBeWithinRecentRange(
            column_list=[SERIES, "high", "low", "close"],
            window=bounds.move_window,
            min_history=bounds.min_move_history,
            max_ratio=bounds.max_move_ratio,
        ),
        gxe.ExpectColumnValuesToBeBetween(column="timestamp", max_value={"$PARAMETER": LAST_CLOSED}),
        ExpectSeriesNewestToBeRecent(column_list=[SERIES, "timestamp"], freshest_ms=freshest_ms),
    ]
    return gx.ExpectationSuite(
        name=f"{suite_name(timeframe, live=True)}_screen",
        expectations=[_tag(e, CRITICAL) for e in expectations],
        meta={"timeframe": timeframe, "step_ms": step_ms, "live": True, "screen": True},
    )


def stackable(frame: pd.DataFrame) -> bool:
    """True when a frame can join the stack as it is: rows, and exactly CANDLE_COLUMNS with their types.

    Any other frame goes to the per-series suite, whose report says what is wrong with it.
    """
    return bool(len(frame)) and list(frame.columns) == list(CANDLE_COLUMNS) and _dtypes(frame) == _DTYPES


def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The (stackable) frames one under the other, each row's ``series`` the position of its frame.

    Positions, not series names: two chunks of one series are two frames, each judged on its own as the
    per-series suite judges it (freshness and moves would otherwise look across both).
    """
    parts: list[Any] = [f.assign(**{SERIES: i}) for i, f in enumerate(frames)]
    return pd.concat(parts, ignore_index=True)


def frames_at_fault(results: list[Any], stack: pd.DataFrame) -> set[int] | None:
    """The positions of the frames with a failing row in the screen's GX results (run with COMPLETE).

    None when a failure cannot be put on frames: a table-wide expectation, one that raised inside GX, or a
    row list shorter than its count. Then no frame may be accepted from the screen.
    """
    at_fault: set[int] = set()
    for result in results:
        raised = _exception_message(result.exception_info)
        if result.success and not raised:
            continue
        body = result.result or {}
        rows = body.get("unexpected_index_list")
        if raised or rows is None or len(rows) != body.get("unexpected_count"):
            return None
        at_fault.update(int(i) for i in stack.loc[list(rows), SERIES])
    return at_fault


def _dtypes(frame: pd.DataFrame) -> list[str]:
    """The frame's column types as names (a concat could widen one frame's int32 into int64: not stacked then)."""
    return [str(t) for t in frame.dtypes]
