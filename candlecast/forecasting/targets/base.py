"""What a forecasting target is: everything that differs between returns, volatility and the next one.

The walk-forward engine, the evaluation, the refit, the gate, the registry, prediction and live
scoring are written once and ask the run's ``Target`` for the label, the network's loss head
(which sets its output size), the metrics and the one the gate reads, the baselines and their
table columns, how intervals or Value-at-Risk are derived and what the served forecast looks like.
docs/architecture.md ("Targets") says how to add one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np
import pandas as pd

from candlecast.config import RunConfig
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.retrain import CUTOFF, Refit
from candlecast.forecasting.splits import Fold
from candlecast.schema import timeframe_ms

if TYPE_CHECKING:
    from candlecast.models import HeadLoss


@dataclass(frozen=True)
class Walk:
    """How every model is walked forward and judged, whatever the target: the engine's settings."""

    step_ms: int  # candle length
    horizon: int  # candles ahead
    interval: float = 0.8  # central interval coverage (targets with intervals)
    stride: int = 1  # candles between forecast origins
    adaptive_rate: float = 0.0  # adaptive conformal step (0: each fold's static calibration)
    references: tuple[str, ...] | None = None  # models the others are compared with (None: the target's default)
    refit: Refit = CUTOFF  # how each fold's model meets its test block (stale, or refit at its start)

    @classmethod
    def of(cls, cfg: RunConfig, references: Iterable[str] | None = None, refit: Refit | None = None) -> Walk:
        """The walk a run config asks for (``refit`` overrides ``backtest.refit`` and ``backtest.refit_every``)."""
        bt = cfg.backtest
        return cls(
            step_ms=timeframe_ms(cfg.data.timeframe),
            horizon=cfg.features.horizon,
            interval=cfg.predict.interval,
            stride=cfg.backtest.stride,
            adaptive_rate=cfg.predict.adaptive_rate,
            references=None if references is None else tuple(references),
            refit=refit or Refit(bt.refit, bt.refit_every),
        )


class FoldForecasts(Protocol):
    """One model's forecasts on one fold's test windows, series pooled: what a target's fold gives the engine."""

    series: np.ndarray  # (N,) series name per window
    timestamps: np.ndarray  # (N,) forecast origin, ms
    fit_seconds: float

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        """Pool forecasts (folds or series); what belongs to one fold (fit time, tracked state) resets."""
        ...

    def subset(self, mask: np.ndarray) -> Self:
        """The windows ``mask`` selects or reorders."""
        ...


@dataclass
class BacktestResult:
    """What a walk-forward backtest found: per-fold and pooled scores, and the forecasts they came from.

    The forecasts are kept so the gate can run Diebold-Mariano tests on the very windows it scored.
    """

    target: Target
    per_fold: pd.DataFrame  # one row per (model, fold)
    summary: pd.DataFrame  # one row per model, over all folds' windows
    forecasts: dict[str, list[Any]] = field(default_factory=dict)  # per model, one FoldForecasts per fold

    def pooled(self, name: str) -> Any:
        """One model's forecasts over every fold, per series in time order."""
        parts = self.forecasts[name]
        f = type(parts[0]).concat(parts)
        return f.subset(np.lexsort((f.timestamps, f.series)))


class Target(ABC):
    """A kind of forecast: its label, its network head, its metrics, baselines, gate metric and served frame."""

    key: ClassVar[str]  # the config's ``target`` value
    bundle_key: ClassVar[str]  # what a bundle's spec records (kept stable: registered bundles must still load)
    registry_name: ClassVar[str]  # the registered model's default name (the config applies it)
    store_kind: ClassVar[str]  # which prediction store its forecasts go to
    gate_metric: ClassVar[str]  # the logged ratio the promotion gate reads (below 1 beats the reference)
    gate_reference: ClassVar[str]  # what that ratio is to, as the gate's reasons say it
    fold_metric: ClassVar[str]  # the per-fold score the logs and the CLI show
    objective_name: ClassVar[str]  # what the sweep minimises
    table_columns: ClassVar[list[str]]  # the markdown table's columns (the CSVs hold every metric)
    table_prefix: ClassVar[str]  # the run's tables are tables/<prefix>_summary.csv and friends
    shown: ClassVar[dict[str, str]]  # the CLI's columns: metric -> short label
    default_models: ClassVar[str]  # what `candlecast backtest` runs when no model is named
    default_references: ClassVar[tuple[str, ...]] = ()  # compared with in a plain backtest's summary
    forecast_plot: ClassVar[bool] = False  # the evaluation logs forecast-vs-actual plots (point and interval)

    # --- the label and the network ------------------------------------------------------------------

    def view(self, s: SeriesArrays) -> SeriesArrays:
        """The series with this target's label as its targets (the inputs never change)."""
        return s

    def network_horizon(self, horizon: int) -> int:
        """Output steps of the network for a run forecasting ``horizon`` candles ahead."""
        return horizon

    def quantiles(self, interval: float) -> list[float]:
        """Quantile levels the network's head learns beside its point forecast (none by default)."""
        return []

    @abstractmethod
    def loss(self, quantiles: list[float]) -> HeadLoss:
        """A fresh loss head for one network: it sets the outputs per step and how they are trained."""

    @abstractmethod
    def decode(self, out: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs (N, H, K) and the target scale (H,) or (N, H) to (point (N, H), raw bounds)."""

    # --- baselines ----------------------------------------------------------------------------------

    @property
    @abstractmethod
    def baselines(self) -> Iterable[str]:
        """The baseline names this target knows."""

    @abstractmethod
    def configured_baselines(self, cfg: RunConfig) -> list[str]:
        """The baselines a run's evaluation scores beside the model."""

    @abstractmethod
    def baseline(self, name: str, cfg: RunConfig) -> Forecaster:
        """A fresh baseline by name."""

    # --- the walk-forward ---------------------------------------------------------------------------

    @abstractmethod
    def run_fold(self, model: Forecaster, series: list[SeriesArrays], fold: Fold, walk: Walk) -> Any:
        """Fit on the fold, derive intervals or VaR on its calibration block, forecast its test windows."""

    @abstractmethod
    def score(self, f: Any, walk: Walk) -> dict[str, float]:
        """Every metric of one model's forecasts (a fold's, or pooled over folds)."""

    def against(self, name: str, f: Any, pooled: dict[str, Any], walk: Walk) -> dict[str, float]:
        """Summary metrics of model ``name`` next to the other models (e.g. ratios to references)."""
        return {}

    def per_fold_ratios(self, result: BacktestResult, walk: Walk) -> None:
        """Add comparisons between models to the per-fold table, if the target has any."""
        return None

    def objective(self, model: Forecaster, series: list[SeriesArrays], fold: Fold, walk: Walk, cfg: RunConfig) -> float:
        """One sweep fold's score (below 1 beats the reference): the gate's metric on that fold by default."""
        return self.score(self.run_fold(model, series, fold, walk), walk)[self.objective_name]

    # --- the evaluation and the shipped model -------------------------------------------------------

    @abstractmethod
    def run_metrics(self, result: BacktestResult, champion: str | None, walk: Walk) -> dict[str, float]:
        """The run's logged metrics: the gate's ratio and p-value, per fold, baselines, the champion's."""

    @abstractmethod
    def shipped(self, last: Any) -> dict[str, Any]:
        """BundleSpec fields the shipped model carries from the last test fold (interval offsets or VaR quantiles)."""

    def headline(self, results: dict[str, float]) -> str:
        """The evaluation's log line."""
        return f"test {self.gate_metric} {results[self.gate_metric]:.4f} (DM p {results['dm_pvalue']:.3f})"

    def progress(self, metrics: dict[str, float]) -> str:
        """One fold's line in `candlecast backtest`'s progress."""
        return f"{self.fold_metric} {metrics[self.fold_metric]:.4f}"

    # --- serving and live scoring -------------------------------------------------------------------

    @abstractmethod
    def frame(
        self, spec: Any, cutoffs: np.ndarray, closes: np.ndarray, point: np.ndarray, bounds: np.ndarray
    ) -> pd.DataFrame:
        """The served forecast rows of every series' last window (in the order of ``cutoffs``)."""

    @abstractmethod
    def realized(self, forecasts: pd.DataFrame, candles: pd.DataFrame, step_ms: int) -> pd.DataFrame:
        """Stored forecast rows whose outcome has closed, with the outcome."""

    @abstractmethod
    def live_metrics(self, rows: pd.DataFrame) -> dict[str, float]:
        """Live metrics of realised forecast rows (logged on the model version's run)."""


Factory = Callable[[], Forecaster]
