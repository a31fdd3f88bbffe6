"""The feature contract: what a feature file must satisfy before a sweep trains on it.

Checked on the files written by ``candlecast.features.compute.build_feature_file``: the expected columns, no
infinities anywhere, no NaN in a feature after the warm-up rows (targets may be NaN: at the end and
across gaps they are undefined on purpose), and the bounded features inside their mathematical range.
"""

from __future__ import annotations

from typing import ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from candlecast.features.compute import BASE_COLUMNS, target_columns
from expectations.candles import CRITICAL, _tag

FEATURE_SUITE = "feature_contract"

# Sane ranges of the features whose scale is known. A log return or range beyond +-5 is a price moving
# ~150x in one candle; a rolling z-score over w candles cannot exceed sqrt(w), so +-50 is already a bug.
# Features not listed here are only checked for being finite.
FEATURE_BOUNDS: dict[str, tuple[float, float]] = {
    "ret_1": (-5.0, 5.0),
    "range": (0.0, 5.0),
    "body": (-5.0, 5.0),
    "rvol": (0.0, 5.0),
    "volume_z": (-50.0, 50.0),
    "rsi": (-1.0, 1.0),
    "hour_sin": (-1.0, 1.0),
    "hour_cos": (-1.0, 1.0),
    "dow_sin": (-1.0, 1.0),
    "dow_cos": (-1.0, 1.0),
}


class ColumnValuesFinite(ColumnMapMetricProvider):
    """Row-wise 'not +-inf'; GX drops nulls before a map metric, so NaN is left to the null checks."""

    condition_metric_name = "column_values.candlecast_finite"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: object) -> pd.Series:
        return pd.Series(np.isfinite(column.to_numpy(dtype="float64")), index=column.index)


class ExpectColumnValuesToBeFinite(ColumnMapExpectation):
    """Expect no +-inf: an infinite feature poisons every scaler fitted on it."""

    map_metric: ClassVar[str] = ColumnValuesFinite.condition_metric_name


class ColumnValuesNotNullAfterWarmup(ColumnMapMetricProvider):
    """Row-wise 'not null, unless within the first warmup_rows rows' (by position in the frame)."""

    condition_metric_name = "column_values.candlecast_not_null_after_warmup"
    condition_value_keys = ("warmup_rows",)
    filter_column_isnull = False

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, warmup_rows: int, **kwargs: object) -> pd.Series:
        return column.notna() | (np.arange(len(column)) < warmup_rows)


class ExpectColumnValuesToNotBeNullAfterWarmup(ColumnMapExpectation):
    """Expect a feature to be defined on every row after the warm-up of its rolling windows."""

    warmup_rows: int

    map_metric: ClassVar[str] = ColumnValuesNotNullAfterWarmup.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("warmup_rows", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column", "warmup_rows")


def feature_suite(features: tuple[str, ...], warmup: int, horizon: int) -> gx.ExpectationSuite:
    """Build the feature contract for one feature set.

    Args:
        features: The input columns of the file (``candlecast.features.compute.feature_columns``); the base
            features must be among them whatever else the config adds.
        warmup: Rows at the start whose features may still be NaN (``candlecast.features.compute.warmup_rows``).
        horizon: Target columns target_1..target_<horizon> must be present.
    """
    targets = target_columns(horizon)
    expectations: list[gxe.Expectation] = [
        # extra columns are the config's optional features; the base ones and the targets must be there
        gxe.ExpectTableColumnsToMatchSet(column_set=["timestamp", "close", *BASE_COLUMNS, *targets], exact_match=False),
        gxe.ExpectTableRowCountToBeBetween(min_value=warmup + 1),
        gxe.ExpectColumnValuesToBeUnique(column="timestamp"),
        gxe.ExpectColumnValuesToBeIncreasing(column="timestamp", strictly=True),
        gxe.ExpectColumnValuesToNotBeNull(column="close"),
        *(ExpectColumnValuesToBeFinite(column=c) for c in [*features, *targets]),
        *(ExpectColumnValuesToNotBeNullAfterWarmup(column=c, warmup_rows=warmup) for c in features),
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
            for c, (lo, hi) in FEATURE_BOUNDS.items()
            if c in features
        ),
    ]
    return gx.ExpectationSuite(
        name=FEATURE_SUITE,
        expectations=[_tag(e, CRITICAL) for e in expectations],
        meta={"warmup_rows": warmup, "horizon": horizon, "features": list(features)},
    )
