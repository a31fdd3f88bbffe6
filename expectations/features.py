"""The feature contract: what a feature file must satisfy before a sweep trains on it.

Checked on the files written by ``candlecast.features.compute.build_feature_file``: the expected columns, no
infinities anywhere, no NaN in a feature after the warm-up rows (targets may be NaN: at the end and
across gaps they are undefined on purpose), and the bounded features inside their mathematical range.

A missing candle restarts the warm-up: returns never bridge a gap (``ret_1`` right after an outage is
NaN on purpose), and the windowing skips every window with an undefined feature, so NaN within the
warm-up length after a gap is by design, exactly as at the start of the file.
"""

from __future__ import annotations

from typing import ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider

# from its defining module: the package's name of the same spelling is the submodule (see candles.py)
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)

from candlecast.expectations.candles import _MULTICOLUMN_DOMAIN, CRITICAL, _tag
from candlecast.expectations.wording import InWords
from candlecast.features.compute import BASE_COLUMNS, target_columns

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


class ExpectColumnValuesToBeFinite(InWords, ColumnMapExpectation):
    """Expect no +-inf: an infinite feature poisons every scaler fitted on it."""

    words: ClassVar[str] = "$column values are finite (no +inf or -inf)"
    map_metric: ClassVar[str] = ColumnValuesFinite.condition_metric_name


def rows_since_restart(timestamps: pd.Series | np.ndarray, step_ms: int) -> np.ndarray:
    """Rows since the frame started or since the last missing candle, whichever is later (0 on those rows).

    A row restarts the count when its timestamp is not exactly one candle after the previous row's.
    """
    ts = np.asarray(timestamps, dtype="int64")
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    restart = np.r_[True, np.diff(ts) != step_ms]
    last_restart = np.maximum.accumulate(np.where(restart, np.arange(len(ts)), 0))
    return np.arange(len(ts)) - last_restart


class FeatureDefinedAfterWarmup(MulticolumnMapMetricProvider):
    """Row-wise 'feature not null, unless within warmup_rows of the frame's start or of a missing candle'.

    column_list is (timestamp, feature): the timestamps say where the gaps are.
    """

    condition_metric_name = "multicolumn_values.candlecast_defined_after_warmup"
    condition_domain_keys = _MULTICOLUMN_DOMAIN
    condition_value_keys = ("warmup_rows", "step_ms")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, warmup_rows: int, step_ms: int, **kwargs: object) -> pd.Series:
        timestamps, feature = column_list.iloc[:, 0], column_list.iloc[:, 1]
        warming = rows_since_restart(timestamps, step_ms) < warmup_rows
        return feature.notna() | pd.Series(warming, index=column_list.index)


class ExpectFeatureToBeDefinedAfterWarmup(InWords, MulticolumnMapExpectation):
    """Expect a feature to be defined on every row once its rolling windows have warmed up.

    The warm-up runs from the start of the file and again from every missing candle; column_list is
    (timestamp, feature).
    """

    warmup_rows: int
    step_ms: int
    words: ClassVar[str] = (
        "$column_list: the feature is defined on every row after the first $warmup_rows, counted again after each "
        "missing $step candle"
    )
    map_metric: ClassVar[str] = FeatureDefinedAfterWarmup.condition_metric_name
    success_keys: ClassVar[tuple[str, ...]] = ("warmup_rows", "step_ms", "mostly")
    args_keys: ClassVar[tuple[str, ...]] = ("column_list", "warmup_rows", "step_ms")


def feature_suite(features: tuple[str, ...], warmup: int, horizon: int, step_ms: int) -> gx.ExpectationSuite:
    """Build the feature contract for one feature set.

    Args:
        features: The input columns of the file (``candlecast.features.compute.feature_columns``); the base
            features must be among them whatever else the config adds.
        warmup: Rows at the start, and after each missing candle, whose features may still be NaN
            (``candlecast.features.compute.warmup_rows``).
        horizon: Target columns target_1..target_<horizon> must be present.
        step_ms: The candles' timeframe in ms, which tells a missing candle from consecutive ones.
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
        *(
            ExpectFeatureToBeDefinedAfterWarmup(column_list=["timestamp", c], warmup_rows=warmup, step_ms=step_ms)
            for c in features
        ),
        *(
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
            for c, (lo, hi) in FEATURE_BOUNDS.items()
            if c in features
        ),
    ]
    return gx.ExpectationSuite(
        name=FEATURE_SUITE,
        expectations=[_tag(e, CRITICAL) for e in expectations],
        meta={"warmup_rows": warmup, "horizon": horizon, "step_ms": step_ms, "features": list(features)},
    )
