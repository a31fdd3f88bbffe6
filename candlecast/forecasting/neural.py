"""Fitting a Lightning forecaster on one fold, quietly and reproducibly, behind the shared interface.

Reproducibility comes from seeding (``_prepare``), not from torch's deterministic-algorithms switch:
on the CPU path two seeded fits at the same thread count are bitwise identical without it, and the
switch changes no bit of them (tests/models/test_reproducible_fit.py), while it cost about 10% of
training (docs/benchmarks.md) and stayed on process-wide after a Lightning fit.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, replace
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping

from candlecast.config import RunConfig, TrainConfig
from candlecast.features.scaling import AnyScaler, SeriesScalers, input_width, scaler_for
from candlecast.features.windows import (
    SeriesArrays,
    WindowDataset,
    fit_scaler,
    fit_series_scalers,
    make_loader,
)
from candlecast.forecasting.interface import Forecaster
from candlecast.forecasting.pooled import PooledSpec, pooled_module, prepare
from candlecast.forecasting.recency import network_params, recent
from candlecast.forecasting.splits import Fold
from candlecast.forecasting.targets import Target, target_of
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.models import ForecastModule, HeadLoss, resolve
from candlecast.models.pooled import PooledVarianceModule
from candlecast.schema import Range, timeframe_ms


def quiet_lightning() -> None:
    """Silence the banner lines and known harmless warnings (see DEPENDENCIES.md §4)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*but have no `val_dataloader`.*")  # a refit has no early-stopping block


@dataclass
class FitResult:
    """A fitted network with what it needs to forecast (its scaler) and how the fit went."""

    model: ForecastModule
    scaler: AnyScaler  # a SeriesScalers for a global model (per-series scaling and series ids)
    best_val_loss: float  # NaN for a refit without an early-stopping block
    epochs: int  # epochs run
    best_epoch: int  # epochs to the weights kept (the best early-stopping epoch, or all of a refit)
    n_train: int
    n_val: int
    windows: Range  # origins of the first and the last training window: what the fit saw, for lineage and tests


class EpochMetrics(Callback):
    """Collects per-epoch metrics so the caller can log them wherever it tracks runs."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the epoch's logged metrics (train and validation)."""
        if trainer.sanity_checking:
            return
        self.history.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def build_model(
    name: str,
    n_features: int,
    horizon: int,
    hparams: dict[str, Any],
    quantiles: list[float] | None = None,
    loss: HeadLoss | None = None,
    scaler: AnyScaler | None = None,
    columns: list[str] | None = None,
) -> ForecastModule:
    """The named architecture with its hyperparameters, for ``n_features`` inputs per step and ``horizon`` steps.

    ``loss`` is the target's head (candlecast.forecasting.targets): it sets the outputs per step. A
    scaler whose series id is an index makes it the pooled variance model (candlecast.forecasting.pooled)
    around the architecture, laid out by the feature ``columns``.
    """
    cls, params = resolve(name, network_params(hparams))
    if quantiles is not None:
        params["quantiles"] = quantiles
    if isinstance(scaler, SeriesScalers) and scaler.id_input == "index":
        return pooled_module(cls, params, n_features, horizon, scaler, list(columns or []), loss)
    return cls(n_features=n_features, horizon=horizon, loss=loss, **params)


def fit_fold(
    model_name: str,
    hparams: dict[str, Any],
    series: list[SeriesArrays],
    fold: Fold,
    lookback: int,
    horizon: int,
    cfg: TrainConfig,
    max_epochs: int | None = None,
    callbacks: list[Callback] | None = None,
    quantiles: list[float] | None = None,
    winsor_quantile: float | None = None,
    loss: HeadLoss | None = None,
    per_series: bool = False,
    pooled: PooledSpec | None = None,
) -> FitResult:
    """Fit on the fold's training range, early-stop on its early-stopping block, restore the best epoch.

    ``per_series``: a global model (each series scaled on its own rows, its id a one-hot input);
    ``pooled``: the pooled variance model (its id an embedding's index, inputs and HAR from training rows).
    """
    _prepare(cfg)
    fold = replace(fold, train=recent(fold.train, hparams))  # the configuration's training window (recency.py)
    scaler = _fit_scaler(series, fold.train, winsor_quantile, per_series, pooled)
    train_rows = [s.sample_rows(fold.train) for s in series]
    val_rows = [s.sample_rows(fold.val) for s in series]
    n_train, n_val = sum(map(len, train_rows)), sum(map(len, val_rows))
    if n_train == 0 or n_val == 0:
        raise ValueError(f"fold has {n_train} training and {n_val} early-stopping windows: need more candles")
    train_dl = make_loader(WindowDataset(series, train_rows, scaler, lookback), cfg.batch_size, True, cfg.seed)
    val_dl = make_loader(WindowDataset(series, val_rows, scaler, lookback), 1024, False)
    model = _build(model_name, series, fold.train, horizon, hparams, quantiles, loss, scaler, pooled)
    best = _BestWeights()
    stop = EarlyStopping(monitor="val_loss", patience=cfg.patience, mode="min")
    trainer = _trainer(max_epochs or cfg.max_epochs, [stop, best, *(callbacks or [])])
    trainer.fit(model, train_dataloaders=train_dl, val_dataloaders=val_dl)
    model.load_state_dict(best.state)
    model.eval()
    return FitResult(
        model, scaler, best.loss, trainer.current_epoch, best.epoch, n_train, n_val, _span(series, train_rows)
    )


def fit_to_cutoff(
    model_name: str,
    hparams: dict[str, Any],
    series: list[SeriesArrays],
    train: Range,
    epochs: int,
    lookback: int,
    horizon: int,
    cfg: TrainConfig,
    quantiles: list[float] | None = None,
    winsor_quantile: float | None = None,
    loss: HeadLoss | None = None,
    per_series: bool = False,
    callbacks: list[Callback] | None = None,
    pooled: PooledSpec | None = None,
) -> FitResult:
    """Refit on every window of ``train`` for a fixed number of epochs: the model that ships.

    No block is held out for early stopping: the epoch count comes from the walk-forward folds, so
    the shipped model sees the newest data the evaluation could not.
    """
    _prepare(cfg)
    train = recent(train, hparams)
    scaler = _fit_scaler(series, train, winsor_quantile, per_series, pooled)
    rows = [s.sample_rows(train) for s in series]
    n_train = sum(map(len, rows))
    if n_train == 0:
        raise ValueError("no complete window to refit on: the training range holds no window with known targets")
    loader = make_loader(WindowDataset(series, rows, scaler, lookback), cfg.batch_size, True, cfg.seed)
    model = _build(model_name, series, train, horizon, hparams, quantiles, loss, scaler, pooled)
    trainer = _trainer(epochs, list(callbacks or []))
    trainer.fit(model, train_dataloaders=loader)
    model.eval()
    return FitResult(model, scaler, float("nan"), trainer.current_epoch, epochs, n_train, 0, _span(series, rows))


def _span(series: list[SeriesArrays], rows: list[np.ndarray]) -> Range:
    stamps = np.concatenate([s.timestamps[r] for s, r in zip(series, rows, strict=True)])
    return Range(int(stamps.min()), int(stamps.max()))


def _fit_scaler(
    series: list[SeriesArrays], train: Range, winsor_quantile: float | None, per_series: bool, pooled: PooledSpec | None
) -> AnyScaler:
    if pooled is not None:
        return fit_series_scalers(series, train, winsor_quantile, id_input="index")
    if per_series:
        return fit_series_scalers(series, train, winsor_quantile)
    return fit_scaler(series, train, winsor_quantile)


def _build(
    model_name: str,
    series: list[SeriesArrays],
    train: Range,
    horizon: int,
    hparams: dict[str, Any],
    quantiles: list[float] | None,
    loss: HeadLoss | None,
    scaler: AnyScaler,
    pooled: PooledSpec | None,
) -> ForecastModule:
    """The network for these series; the pooled one gets its buffers from the training rows before it trains."""
    width = input_width(series[0].features.shape[1], scaler)
    model = build_model(model_name, width, horizon, hparams, quantiles, loss, scaler, series[0].columns)
    if pooled is not None:
        assert isinstance(scaler, SeriesScalers) and isinstance(model, PooledVarianceModule)
        prepare(model, series, train, scaler, pooled)
    return model


def _prepare(cfg: TrainConfig) -> None:
    quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)


def _trainer(max_epochs: int, callbacks: list[Callback]) -> pl.Trainer:
    # deterministic=False: seeding already makes CPU fits bitwise reproducible (see the module docstring)
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        deterministic=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        callbacks=callbacks,
    )


class _BestWeights(Callback):
    """Keeps the weights of the best validation epoch in memory (no checkpoint files)."""

    def __init__(self) -> None:
        self.loss = float("inf")
        self.epoch = 0  # epochs run when the best weights were seen
        self.state: dict[str, torch.Tensor] = {}

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("val_loss")
        if loss is not None and float(loss) < self.loss:
            self.loss, self.epoch = float(loss), trainer.current_epoch + 1
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


@torch.no_grad()
def predict_rows(
    model: ForecastModule,
    scaler: AnyScaler,
    series: SeriesArrays,
    rows: np.ndarray,
    lookback: int,
    target: Target = RETURNS,
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts (N, H) and raw bounds of the windows ending at ``rows``, decoded by the target.

    For returns: cumulative log returns and sorted quantile bounds (N, H, Q); for volatility: the
    (N, 1) variances of the next h candles and no bounds.
    """
    if len(rows) == 0:
        return np.empty((0, model.horizon)), np.empty((0, model.horizon, model.n_outputs - 1))
    ds = WindowDataset([series], [rows], scaler, lookback)
    out = np.concatenate([model(x).numpy() for x, _ in make_loader(ds, 2048, False)])
    return target.decode(out, np.asarray(scaler_for(scaler, series.name).target_scale))


@torch.no_grad()
def forecast_windows(
    model: ForecastModule, windows: torch.Tensor, target_scale: np.ndarray, target: Target = RETURNS
) -> tuple[np.ndarray, np.ndarray]:
    """``predict_rows`` for windows already scaled and stacked (N, L, F'), one forward pass for all.

    ``target_scale`` is (H,) for one scaler or (N, H) with each window's own series scale.
    """
    return target.decode(model(windows).numpy(), target_scale)


class NeuralForecaster(Forecaster):
    """A Lightning architecture behind the shared interface: fit_fold on a fold, predict_rows on windows."""

    def __init__(
        self,
        model_name: str,
        hparams: dict[str, Any],
        lookback: int,
        horizon: int,
        cfg: TrainConfig,
        quantiles: list[float],
        winsor_quantile: float | None = None,
        max_epochs: int | None = None,
        callbacks: list[Callback] | None = None,
        target: Target = RETURNS,
        per_series: bool = False,
        pooled: PooledSpec | None = None,
    ):
        self.name = model_name if model_name != "lstm_family" else hparams["architecture"]
        self.per_series = per_series  # a global model: per-series scaling and a one-hot series id
        self.pooled = pooled  # the pooled variance model: a series embedding, residual on log-HAR
        self.target = target
        self.model_name, self.hparams, self.lookback, self.horizon = model_name, hparams, lookback, horizon
        self.cfg, self.quantiles, self.winsor_quantile = cfg, quantiles, winsor_quantile
        self.max_epochs, self.callbacks = max_epochs, callbacks
        self.result: FitResult | None = None

    def fit(self, series: list[SeriesArrays], fold: Fold) -> None:
        """Fit on the fold's training range, early-stopping on its validation block (``fit_fold``)."""
        self.result = fit_fold(
            self.model_name,
            self.hparams,
            series,
            fold,
            self.lookback,
            self.horizon,
            self.cfg,
            max_epochs=self.max_epochs,
            callbacks=self.callbacks,
            quantiles=self.quantiles,
            winsor_quantile=self.winsor_quantile,
            loss=self.target.loss(self.quantiles),
            per_series=self.per_series,
            pooled=self.pooled,
        )

    def refit(self, series: list[SeriesArrays], train: Range, epochs: int | None = None) -> None:
        """Fit on all of ``train`` for ``epochs`` epochs (``fit_to_cutoff``); by default the epochs ``fit`` kept.

        One path for the shipped model (the folds' median epochs, candlecast.registry.refit) and the
        backtest's refit at each test start (the fold's own early-stopping epoch).
        """
        if epochs is None:
            if self.result is None:
                raise RuntimeError(f"{self.name}: fit() chooses the epoch count a refit without one reuses")
            epochs = self.result.best_epoch
        self.result = fit_to_cutoff(
            self.model_name,
            self.hparams,
            series,
            train,
            epochs,
            self.lookback,
            self.horizon,
            self.cfg,
            quantiles=self.quantiles,
            winsor_quantile=self.winsor_quantile,
            loss=self.target.loss(self.quantiles),
            per_series=self.per_series,
            callbacks=self.callbacks,
            pooled=self.pooled,
        )

    def forecast(self, series: SeriesArrays, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point forecasts and raw quantile bounds of the windows ending at ``rows`` (``predict_rows``)."""
        if self.result is None:
            raise RuntimeError(f"{self.name}: call fit() before forecast()")
        return predict_rows(self.result.model, self.result.scaler, series, rows, self.lookback, self.target)


def neural_forecaster(cfg: RunConfig, model_name: str, hparams: dict[str, Any], **kwargs: Any) -> NeuralForecaster:
    """A Lightning forecaster configured by the run: window, winsorizing, and the target's horizon, quantiles and head.

    The target (candlecast.forecasting.targets) decides what the network outputs: H steps with
    quantiles for returns, one variance per window for volatility. With ``multi_series.global_model``
    it is one global model over every series it is fitted on; with ``multi_series.pooled_volatility``
    the pooled variance model (candlecast.forecasting.pooled).
    """
    fc = cfg.features
    target = target_of(cfg)
    kwargs.setdefault("per_series", cfg.multi_series.global_model)
    kwargs.setdefault("pooled", pooled_spec(cfg))
    return NeuralForecaster(
        model_name,
        hparams,
        fc.lookback,
        target.network_horizon(fc.horizon),
        cfg.train,
        target.quantiles(cfg.predict.interval),
        fc.winsor_quantile if fc.denoise == "winsorize" else None,
        target=target,
        **kwargs,
    )


def pooled_spec(cfg: RunConfig) -> PooledSpec | None:
    """The pooled variance model ``multi_series.pooled_volatility`` asks for; None when it is off."""
    mode = cfg.multi_series.pooled_volatility
    if mode == "off":
        return None
    if cfg.target != "volatility":
        raise ValueError("multi_series.pooled_volatility is a volatility model: set target: volatility, or turn it off")
    return PooledSpec(mode == "residual", cfg.features.horizon, timeframe_ms(cfg.data.timeframe))
