"""The candle contract: what every OHLCV frame must satisfy before it is stored or trained on.

The suite is code (not a stored JSON suite) so that it is reviewed, versioned and tested like the rest
of the project. Every check is a GX expectation. GX has no built-in for timestamp alignment, gaps, flat
filler candles or moves relative to a series' own range, so those are small custom expectations here.

Severity decides the gate: a critical failure blocks the write or the training; a warning is reported
and lets the batch through, because real exchange outages leave gaps that must not stop a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnAggregateExpectation,
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.metrics import (
    ColumnAggregateMetricProvider,
    ColumnMapMetricProvider,
    column_aggregate_value,
)
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider

# The decorators from the modules that define them: the package re-exports each under the name of its
# own submodule, so a type checker reads ``metrics.column_condition_partial`` as the module, not the function.
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from candlecast.expectations.wording import InWords
from candlecast.schema import CANDLE_COLUMNS, PRICE_COLUMNS, timeframe_ms

if TYPE_CHECKING:
    from great_expectations.execution_engine import ExecutionEngine

CRITICAL = "critical"
WARNING = "warning"

# Suite parameters of the live suite, filled in per run from the clock (see live_parameters).
LAST_CLOSED = "last_closed_open_ms"
FRESHEST = "freshest_open_ms"

# high >= low, high >= open, high >= close, open >= low, close >= low: together they say that
# high is the top and low the bottom of the candle, which GX cannot express as one built-in.
OHLC_PAIRS: list[tuple[str, str]] = [
    ("high", "low"),
    ("high", "open"),
    ("high", "close"),
    ("open", "low"),
    ("close", "low"),
]

_MULTICOLUMN_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


@dataclass(frozen=True)
class CandleBounds:
    """Tunable limits of the contract; the defaults pass every clean real file in ../shared/data.

    Attributes:
        max_gap_candles: Longest run of missing candles before a warning; 0 reports every gap.
        warn_missing_share: Share of missing candles in the covered range that warns.
        max_missing_share: Share that blocks: a series that is mostly holes is a mislabelled timeframe
            or a broken fetch, not an outage.
        move_window: Candles around each candle whose median move is its "recent range".
        min_move_history: Candles needed in that window before a move is judged at all.
        max_move_ratio: A candle whose move exceeds this many times its recent median is flagged. The
            clean 1h main set peaks at 37; real 1m and 1d crashes reach 140-180, hence a warning only.
    """

    max_gap_candles: int = 0
    warn_missing_share: float = 0.01
    max_missing_share: float = 0.5
    move_window: int = 168
    min_move_history: int = 24
    max_move_ratio: float = 50.0


# ---------------------------------------------------------------------------------------------------
# Timestamp alignment


class ColumnValuesAlignedToStep(ColumnMapMetricProvider):
    """Row-wise 'value is a whole multiple of step', so GX can count and sample misaligned candles."""

    condition_metric_name = "column_values.candlecast_aligned_to_step"
    condition_value_keys = ("step_ms",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, step_ms: int, **kwargs: object) -> pd.Series:
        return column % step_ms == 0


class ExpectColumnValuesToBeAlignedToTimeframe(InWords, ColumnMapExpectation):
    """Expect epoch-ms candle open times to sit on the timeframe grid (ts % step_ms == 0).

    A candle that is off the grid (e.g. +1 s) is a different candle to every later join, resample and
    upsert.
    """

    step_ms: int
    words: ClassVar[str] = "$column values are open times on the $step candle grid (whole multiples of $step_ms ms)"
    map_metric: ClassVar[str] = ColumnValuesAlignedToStep.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("step_ms", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "step_ms")


# ---------------------------------------------------------------------------------------------------
# Gaps


def gap_stats(timestamps: np.ndarray, step_ms: int, largest: int = 5) -> dict[str, Any]:
    """Missing candles between the first and last timestamp, and the largest holes.

    Duplicates and order are other expectations' business, so the distinct sorted timestamps are used.
    """
    ts = np.unique(np.asarray(timestamps, dtype="int64"))
    if len(ts) < 2:
        return {"expected": len(ts), "missing": 0, "share": 0.0, "gaps": 0, "longest": 0, "largest": []}
    missing = np.diff(ts) // step_ms - 1
    holes = np.flatnonzero(missing > 0)
    top = holes[np.argsort(-missing[holes], kind="stable")][:largest]
    expected = int((ts[-1] - ts[0]) // step_ms + 1)
    n_missing = int(missing[holes].sum())
    return {
        "expected": expected,
        "missing": n_missing,
        "share": n_missing / expected,
        "gaps": len(holes),
        "longest": int(missing.max(initial=0)),
        "largest": [
            {"from": _iso(ts[i] + step_ms), "to": _iso(ts[i + 1] - step_ms), "missing": int(missing[i])}
            for i in sorted(top)
        ],
    }


def _iso(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")


class ColumnGapStats(ColumnAggregateMetricProvider):
    """The gap_stats of a timestamp column as one GX metric, shared by both gap expectations."""

    metric_name = "column.candlecast_gap_stats"
    value_keys = ("step_ms",)

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, step_ms: int, **kwargs: object) -> dict[str, Any]:
        return gap_stats(column.to_numpy(), step_ms)


class _GapExpectation(ColumnAggregateExpectation):
    """Compare one gap statistic with a bound; the result carries the largest holes as details."""

    step_ms: int

    metric_dependencies: ClassVar[tuple[str, ...]] = (ColumnGapStats.metric_name,)
    statistic: ClassVar[str]
    bound_key: ClassVar[str]

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict | None = None,
        execution_engine: ExecutionEngine | None = None,
    ) -> dict[str, Any]:
        stats = metrics[ColumnGapStats.metric_name]
        bound = self._get_success_kwargs()[self.bound_key]
        observed = stats[self.statistic]
        return {"success": bool(observed <= bound), "result": {"observed_value": observed, "details": stats}}


class ExpectColumnLongestGapToBeAtMost(_GapExpectation):
    """Expect no run of missing candles longer than ``max_missing_candles``."""

    max_missing_candles: int

    statistic: ClassVar[str] = "longest"
    bound_key: ClassVar[str] = "max_missing_candles"
    success_keys: ClassVar[tuple[str, ...]] = ("step_ms", "max_missing_candles")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "step_ms", "max_missing_candles")


class ExpectColumnMissingCandleShareToBeAtMost(_GapExpectation):
    """Expect at most ``max_share`` of the candles between the first and the last to be missing."""

    max_share: float

    statistic: ClassVar[str] = "share"
    bound_key: ClassVar[str] = "max_share"
    success_keys: ClassVar[tuple[str, ...]] = ("step_ms", "max_share")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "step_ms", "max_share")


# ---------------------------------------------------------------------------------------------------
# Filler candles and extreme moves


class CandlesNotFlatZeroVolume(MulticolumnMapMetricProvider):
    """Row-wise 'not a filler candle': O = H = L = C with zero volume.

    Data vendors insert such candles for hours the exchange was down, and downstream they are
    indistinguishable from real candles.
    """

    condition_metric_name = "multicolumn_values.candlecast_not_flat_zero_volume"
    condition_domain_keys = _MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: object) -> pd.Series:
        o, h, low, c, v = (column_list.iloc[:, i] for i in range(5))
        return ~((o == h) & (h == low) & (low == c) & (v == 0))


class ExpectCandlesToNotBeFlatZeroVolumeFiller(MulticolumnMapExpectation):
    """Expect no flat zero-volume filler candles; column_list is open, high, low, close, volume."""

    map_metric: ClassVar[str] = CandlesNotFlatZeroVolume.condition_metric_name


def move_ratio(high: pd.Series, low: pd.Series, close: pd.Series, window: int, min_history: int) -> pd.Series:
    """Each candle's move (its log range, or its log return if larger) over the median move around it.

    The window is centred so that the first candle of a file is judged too (a trailing window would
    never see a bogus first candle). This is a data check, not a feature: no model ever sees it. A zero
    median (a stretch of flat candles) gives NaN, i.e. no verdict, instead of flagging every move.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = np.log(close.astype("float64"))
        move = np.fmax(np.log(high.astype("float64") / low.astype("float64")), log_close.diff().abs())
    scale = move.rolling(window, center=True, min_periods=min_history).median()
    return move / scale.where(scale > 0)


class CandleMovesWithinRecentRange(MulticolumnMapMetricProvider):
    """Row-wise 'move ratio is at most max_ratio' over (high, low, close)."""

    condition_metric_name = "multicolumn_values.candlecast_move_within_recent_range"
    condition_domain_keys = _MULTICOLUMN_DOMAIN
    condition_value_keys = ("window", "min_history", "max_ratio")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column_list: pd.DataFrame, window: int, min_history: int, max_ratio: float, **kwargs: object
    ) -> pd.Series:
        high, low, close = (column_list.iloc[:, i] for i in range(3))
        return ~(move_ratio(high, low, close, window, min_history) > max_ratio)


class ExpectCandleMovesToBeWithinRecentRange(MulticolumnMapExpectation):
    """Expect no candle to move more than ``max_ratio`` times the median move of the candles around it."""

    window: int
    min_history: int
    max_ratio: float

    map_metric: ClassVar[str] = CandleMovesWithinRecentRange.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("window", "min_history", "max_ratio", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_list", "window", "min_history", "max_ratio")


# ---------------------------------------------------------------------------------------------------
# The suite


def _tag(expectation: gxe.Expectation, severity: str = CRITICAL, description: str | None = None) -> gxe.Expectation:
    """Mark severity both in meta (what the runner reports) and in GX's own field (what GX actions read)."""
    expectation.meta = {**(expectation.meta or {}), "severity": severity}
    expectation.severity = FailureSeverity(severity)
    if description:
        expectation.description = description
    return expectation


def suite_name(timeframe: str, live: bool = False) -> str:
    """The suite's name per timeframe; the live suite (closed-candle and freshness checks) has its own."""
    return f"candle_contract_{timeframe}" + ("_live" if live else "")


def live_parameters(timeframe: str, now_ms: int, max_staleness_ms: int | None = None) -> dict[str, int]:
    """Suite parameters for a live series at ``now_ms``.

    A candle opened at t is closed once t + step <= now. The newest closed candle may lag now by up to
    ``max_staleness_ms`` (default: three candles) before freshness warns.
    """
    step = timeframe_ms(timeframe)
    staleness = 3 * step if max_staleness_ms is None else int(max_staleness_ms)
    if staleness < 0:
        raise ValueError(f"max_staleness must be zero or positive, got {staleness} ms")
    last_closed = (int(now_ms) // step - 1) * step
    return {LAST_CLOSED: last_closed, FRESHEST: last_closed - staleness}


def candle_suite(timeframe: str, live: bool = False, bounds: CandleBounds | None = None) -> gx.ExpectationSuite:
    """Build the candle contract for one timeframe.

    Built with ``ExpectationSuite(expectations=[...])`` rather than ``add_expectation`` because in GX
    1.24 ``add_expectation`` needs an active data context, and building a suite should not create one.

    Args:
        timeframe: ccxt timeframe such as '1m', '1h' or '1d'; fixes the timestamp grid.
        live: Add the closed-candle and freshness checks, which need the suite parameters from
            ``live_parameters`` at validation time. Historical files have no "now" to check against.
        bounds: Gap, missing-share and move limits; the defaults when None.

    Returns:
        A suite named ``suite_name(timeframe, live)`` that is not attached to any context.

    Raises:
        ValueError: If the timeframe is not a ccxt timeframe.
    """
    b = bounds or CandleBounds()
    step_ms = timeframe_ms(timeframe)
    critical: list[gxe.Expectation] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(CANDLE_COLUMNS)),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in CANDLE_COLUMNS),
        gxe.ExpectColumnValuesToBeOfType(column="timestamp", type_="int64"),
        *(gxe.ExpectColumnValuesToBeOfType(column=c, type_="float64") for c in [*PRICE_COLUMNS, "volume"]),
        gxe.ExpectColumnValuesToBeUnique(column="timestamp"),
        gxe.ExpectColumnValuesToBeIncreasing(column="timestamp", strictly=True),
        ExpectColumnValuesToBeAlignedToTimeframe(column="timestamp", step_ms=step_ms),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True) for c in PRICE_COLUMNS),
        gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        *(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True) for a, b in OHLC_PAIRS),
    ]
    expectations = [_tag(e) for e in critical]
    expectations += [
        _tag(
            ExpectColumnMissingCandleShareToBeAtMost(
                column="timestamp", step_ms=step_ms, max_share=b.max_missing_share
            ),
            CRITICAL,
            f"at most {b.max_missing_share:.0%} of the candles in the covered range are missing",
        ),
        _tag(
            ExpectColumnLongestGapToBeAtMost(
                column="timestamp", step_ms=step_ms, max_missing_candles=b.max_gap_candles
            ),
            WARNING,
            f"no gap longer than {b.max_gap_candles} missing candles (real outages: reported, not blocked)",
        ),
        _tag(
            ExpectColumnMissingCandleShareToBeAtMost(
                column="timestamp", step_ms=step_ms, max_share=b.warn_missing_share
            ),
            WARNING,
            f"at most {b.warn_missing_share:.0%} of the candles in the covered range are missing",
        ),
        _tag(
            ExpectCandlesToNotBeFlatZeroVolumeFiller(column_list=["open", "high", "low", "close", "volume"]),
            WARNING,
            "no flat zero-volume filler candles (O = H = L = C, volume 0)",
        ),
        _tag(
            ExpectCandleMovesToBeWithinRecentRange(
                column_list=["high", "low", "close"],
                window=b.move_window,
                min_history=b.min_move_history,
                max_ratio=b.max_move_ratio,
            ),
            WARNING,
            f"no candle moves more than {b.max_move_ratio:g}x the median move of the {b.move_window} around it",
        ),
    ]
    if live:
        expectations += [
            _tag(
                gxe.ExpectColumnValuesToBeBetween(column="timestamp", max_value={"$PARAMETER": LAST_CLOSED}),
                CRITICAL,
                "every candle is closed (open time + timeframe <= now): a forming candle is never stored",
            ),
            _tag(
                gxe.ExpectColumnMaxToBeBetween(column="timestamp", min_value={"$PARAMETER": FRESHEST}),
                WARNING,
                "the newest candle is recent (freshness of a live series)",
            ),
        ]
    return gx.ExpectationSuite(
        name=suite_name(timeframe, live),
        expectations=expectations,
        meta={"timeframe": timeframe, "step_ms": step_ms, "live": live},
    )
