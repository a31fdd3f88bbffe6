"""The candle contract: what every OHLCV frame must satisfy before it is stored or trained on.

The suite is code (not a stored JSON suite) so that it is reviewed, versioned and tested like the rest
of the project. Every check is a GX expectation, including timestamp alignment, which GX has no
built-in for and which is therefore a small custom column-map expectation defined here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from candlecast.schema import CANDLE_COLUMNS, PRICE_COLUMNS, timeframe_ms

if TYPE_CHECKING:
    import pandas as pd

CRITICAL = "critical"
WARNING = "warning"

# high >= low, high >= open, high >= close, open >= low, close >= low: together they say that
# high is the top and low the bottom of the candle, which GX cannot express as one built-in.
OHLC_PAIRS: list[tuple[str, str]] = [
    ("high", "low"),
    ("high", "open"),
    ("high", "close"),
    ("open", "low"),
    ("close", "low"),
]

_ALIGNED_METRIC = "column_values.candlecast_aligned_to_step"


class ColumnValuesAlignedToStep(ColumnMapMetricProvider):
    """Row-wise 'value is a whole multiple of step', so GX can count and sample misaligned candles."""

    condition_metric_name = _ALIGNED_METRIC
    condition_value_keys = ("step_ms",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, step_ms: int, **kwargs: object) -> pd.Series:
        return column % step_ms == 0


class ExpectColumnValuesToBeAlignedToTimeframe(ColumnMapExpectation):
    """Expect epoch-ms candle open times to sit on the timeframe grid (ts % step_ms == 0).

    A candle that is off the grid (e.g. +1 s) is a different candle to every later join, resample and
    upsert; GX has no built-in for modular arithmetic, so this is a pandas-only custom map expectation.
    """

    step_ms: int

    map_metric: ClassVar[str] = _ALIGNED_METRIC
    success_keys: ClassVar[tuple[str, ...]] = ("step_ms", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "step_ms")


def _tag(expectation: gxe.Expectation, severity: str = CRITICAL) -> gxe.Expectation:
    """Mark severity both in meta (what the runner reports) and in GX's own field (what GX actions read)."""
    expectation.meta = {**(expectation.meta or {}), "severity": severity}
    expectation.severity = FailureSeverity(severity)
    return expectation


def candle_suite(timeframe: str) -> gx.ExpectationSuite:
    """Build the candle contract for one timeframe.

    Built with ``ExpectationSuite(expectations=[...])`` rather than ``add_expectation`` because in GX
    1.24 ``add_expectation`` needs an active data context, and building a suite should not create one.

    Args:
        timeframe: ccxt timeframe such as '1m', '1h' or '1d'; fixes the timestamp grid.

    Returns:
        A suite named ``candle_contract_<timeframe>`` that is not attached to any context.

    Raises:
        ValueError: If the timeframe is not a ccxt timeframe.
    """
    step_ms = timeframe_ms(timeframe)
    expectations: list[gxe.Expectation] = [
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
    return gx.ExpectationSuite(
        name=f"candle_contract_{timeframe}",
        expectations=[_tag(e) for e in expectations],
        meta={"timeframe": timeframe, "step_ms": step_ms},
    )
