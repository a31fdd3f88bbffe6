"""The run config: one typed, frozen object that says what a run does, loadable from YAML.

Unknown keys are errors: a typo in a config file must not silently fall back to a default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from candlecast.configfile import home_relative, one_line, read_mapping, resolve_path, with_paths
from candlecast.liveconfig import LiveConfig
from candlecast.schema import SeriesKey, timeframe_ms

#: Names a config may use. The registries themselves (``models.MODELS``, ``forecasting.baselines.BASELINES``)
#: import torch and statsforecast, so config keeps the names only; a unit test holds the two in step.
ModelName = Literal["lstm", "attention_lstm", "cnn_lstm", "lstm_family"]
BaselineName = Literal["naive", "drift", "snaive", "ridge", "arima", "ets", "prophet"]
RiskBaselineName = Literal["naive_vol", "ewma", "garch", "gjr_garch", "har", "har_range", "harq", "har_j"]
RealizedName = Literal[
    "rv", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang", "semivariance", "jump", "quarticity"
]
TargetName = Literal["returns", "volatility"]  # the keys of forecasting.targets.TARGETS (a unit test holds them equal)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExchangeConfig(_Frozen):
    """Where candles come from: a ccxt exchange, or the local emulator's seeded synthetic market.

    The emulator is the default so a fresh clone runs end to end offline; its synthetic knobs set how
    much a model can learn, which the demo and the tests rely on.
    """

    id: str = "binance"
    emulator: bool = Field(True, description="serve seeded synthetic candles from a local Binance emulator")
    api_url: str | None = Field(None, description="override the exchange's REST base URL (Binance-shaped)")
    rate_limit: bool = True
    synthetic_start: datetime = Field(
        datetime(2024, 1, 1, tzinfo=UTC), description="first candle of the emulator's synthetic history"
    )
    synthetic_end: datetime | None = Field(
        None,
        description="the emulator's clock: its history ends here (null: now, so each day serves new candles)",
    )
    synthetic_ar_phi: float = Field(0.15, gt=-1, lt=1, description="AR(1) coefficient of the synthetic returns")
    synthetic_vol_regime: float = Field(0.0, ge=0, le=2, description="log-vol swings shared by every symbol")
    synthetic_hour_mean: float = Field(
        0.15, ge=0, description="hour-of-day mean return of the synthetic market, in return standard deviations"
    )
    synthetic_sentiment_path: Path | None = Field(
        None,
        description="the emulator also writes a seeded daily fear & greed index here (join it via features.exogenous)",
    )
    seed: int = 7


class DataConfig(_Frozen):
    """Which series to keep: unified ccxt symbols on one timeframe, and how far back to backfill."""

    symbols: list[str] = ["BTC/USDT", "ETH/USDT"]
    timeframe: str = "1h"
    history_days: int = Field(730, gt=0, description="backfill this far back when a series is empty")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        timeframe_ms(value)
        return value

    @field_validator("symbols")
    @classmethod
    def _unified_symbols(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if "/" not in s]
        if bad or not value:
            raise ValueError(f"symbols must be unified ccxt symbols like 'BTC/USDT', got {bad or value}")
        return value


class ExogenousConfig(_Frozen):
    """An external series from a file (e.g. a sentiment index), joined point in time."""

    path: Path = Field(
        description="CSV or parquet with a `timestamp` column (ms UTC) and numeric value columns; relative to the "
        "config file's folder, or ${CANDLECAST_HOME}/... in the state folder"
    )
    columns: list[str] | None = Field(None, description="value columns to use (default: every other column)")
    delay_ms: int = Field(0, ge=0, description="publication delay: a value stamped s is known from s + delay_ms")


class FeatureConfig(_Frozen):
    """What a model sees: the window, the horizon and the causal features computed from closed candles."""

    lookback: int = Field(48, ge=2, description="input window length in candles")
    horizon: int = Field(24, ge=1, description="forecast steps ahead (direct multi-step)")
    vol_window: int = Field(24, ge=2, description="rolling window of volatility and volume z-score")
    indicators: bool = Field(
        False, description="add technical indicators (return lags, MA ratios, RSI, MACD, %B, ATR); longer warm-up"
    )
    return_lags: list[int] = Field([4, 24], description="k-candle log returns beside the 1-candle return")
    ma_windows: list[int] = Field([12, 48], description="log(close / moving average) per window")
    rsi_window: int = Field(14, ge=2)
    atr_window: int = Field(14, ge=2)
    bb_window: int = Field(20, ge=2, description="Bollinger band window (2 standard deviations) for %B")
    macd: tuple[int, int, int] = Field((12, 26, 9), description="MACD fast, slow and signal spans")
    higher_timeframes: list[str] = Field([], description="closed higher-timeframe candles as context, e.g. [4h, 1d]")
    htf_window: int = Field(6, ge=2, description="volatility window on each higher timeframe, in its candles")
    cross_assets: list[str] = Field([], description="symbols whose returns join as inputs, e.g. [BTC/USDT]")
    exogenous: list[ExogenousConfig] = []
    realized: list[RealizedName] = Field([], description="realized measures over a day, week and month of candles")
    denoise: Literal["none", "hampel", "winsorize"] = Field(
        "none", description="input noise reduction; targets are never touched"
    )
    hampel_window: int = Field(24, ge=3, description="trailing window of the Hampel filter")
    hampel_sigmas: float = Field(4.0, gt=0)
    winsor_quantile: float = Field(0.005, gt=0, lt=0.5, description="clip inputs at these training-fold quantiles")

    @field_validator("higher_timeframes")
    @classmethod
    def _known_timeframes(cls, value: list[str]) -> list[str]:
        for tf in value:
            timeframe_ms(tf)
        return value

    @field_validator("macd")
    @classmethod
    def _macd_order(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if not 1 <= value[0] < value[1] or value[2] < 1:
            raise ValueError(f"macd spans must be fast < slow and signal >= 1, got {value}")
        return value


class SplitConfig(_Frozen):
    """How the timeline is cut into train, validation, calibration and test blocks with purge gaps between.

    The gaps keep a training target from overlapping the windows that judge it; the calibration block
    sets the conformal intervals and steers nothing else.
    """

    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="untouched final range for evaluation")
    val_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="early-stopping block of each fold (and each sweep fold's test block)"
    )
    cal_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="calibration block of each fold: conformal intervals, never training"
    )
    n_folds: int = Field(1, ge=1, description="walk-forward folds of the sweep, inside the development range")
    test_folds: int = Field(1, ge=1, description="walk-forward folds the evaluation refits on, tiling the test range")
    window: Literal["expanding", "sliding"] = "expanding"
    train_fraction: float | None = Field(
        None, gt=0, lt=1, description="training length of a sliding window, as a share of the timeline"
    )
    gap: int | None = Field(None, ge=1, description="purge gap in candles; default lookback + horizon, never < horizon")

    @model_validator(mode="after")
    def _sliding_needs_length(self) -> SplitConfig:
        if self.window == "sliding" and self.train_fraction is None:
            raise ValueError("split.window 'sliding' needs split.train_fraction (the window's share of the timeline)")
        return self


class TrainConfig(_Frozen):
    """How the final model is fitted: epochs, early-stopping patience, batch size, seed and threads."""

    max_epochs: int = Field(8, ge=1)
    patience: int = Field(2, ge=1)
    batch_size: int = Field(256, ge=8)
    seed: int = 42
    threads: int | None = Field(None, description="torch threads; default: all cores")


class SweepConfig(_Frozen):
    """The Optuna search: which architecture, how many trials, how long, pruning and parallel workers."""

    model: ModelName = Field("lstm", description="an architecture, or 'lstm_family' to search the architecture too")
    n_trials: int = Field(6, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    max_epochs: int = Field(4, ge=1, description="epochs per trial (the final fit uses train.max_epochs)")
    seed: int = 42
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="epoch-level pruning of trials")
    pruner_startup_trials: int = Field(2, ge=0, description="trials the median pruner never prunes")
    workers: int = Field(1, ge=1, description="worker processes sharing the study (one torch thread each)")
    study_name: str | None = Field(
        None, description="Optuna study to create or resume (default: derived from config and data)"
    )


class BacktestConfig(_Frozen):
    """How forecasts are scored: which baselines stand beside the model, and how far apart the origins are."""

    baselines: list[BaselineName] = Field(
        ["naive", "drift", "snaive", "ridge"], description="return baselines scored on the same folds and windows"
    )
    risk_baselines: list[RiskBaselineName] = Field(
        ["naive_vol", "ewma", "garch", "gjr_garch", "har"],
        description="volatility baselines scored on the same folds (target: volatility)",
    )
    stride: int = Field(1, ge=1, description="candles between forecast origins")
    refit: Literal["stale", "cutoff"] = Field(
        "cutoff", description="cutoff: refit each fold's model at its test start, as production refits; stale: never"
    )
    refit_every: int | None = Field(None, ge=1, description="refit again every N candles inside a test block")
    stat_window: int = Field(
        2000, ge=100, description="candles AutoARIMA/AutoETS/Prophet fit on (the end of each training range)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_trading_costs(cls, raw: Any) -> Any:
        """Trading keys of older configs fail with where they went: one simulator trades the forecasts."""
        moved = sorted(set(raw) & set(_MOVED_TO_TRADING)) if isinstance(raw, dict) else []
        if moved:
            where = ", ".join(f"backtest.{k} -> {_MOVED_TO_TRADING[k]}" for k in moved)
            raise ValueError(
                f"the forecasting backtest no longer simulates trading ({where}): trading costs belong to the "
                "trading config of `candlecast trade backtest` (docs/trading.md); delete these keys"
            )
        return raw


#: Keys BacktestConfig had until the trade columns left the forecast table, and their trading-config home.
_MOVED_TO_TRADING = {
    "fee_bps": "execution.taker_fee_bps",
    "slippage_bps": "execution.slippage_bps",
    "allow_short": "policy.allow_short",
    "short_funding_bps_per_day": "(not modelled by the trading engine)",
}


class PromotionConfig(_Frozen):
    """The promotion gate as policy: what a challenger must show to become @champion.

    Both a margin and significance, against naive and against the champion refitted on the same
    folds: a ratio of 0.9999 with a Diebold-Mariano p-value of 0.4 is noise, and noise is not promoted.
    """

    model_name: str = "candlecast-lstm"
    min_gain_vs_naive: float = Field(
        0.001, ge=0, lt=1, description="required relative RMSE gain over naive (0.001: the ratio must be < 0.999)"
    )
    max_dm_pvalue: float | None = Field(
        0.05,
        gt=0,
        le=1,
        description="one-sided Diebold-Mariano p-value vs naive must be below this (null: not required)",
    )
    min_gain_vs_champion: float = Field(
        0.0, ge=0, lt=1, description="required relative RMSE gain over the champion on the same windows"
    )
    max_dm_pvalue_vs_champion: float | None = Field(
        0.05, gt=0, le=1, description="Diebold-Mariano p-value vs the refitted champion must be below this"
    )


class PredictConfig(_Frozen):
    """How the champion serves: interval coverage and adaptation, staleness limit, where forecasts go."""

    interval: float = Field(0.8, gt=0, lt=1, description="central prediction interval coverage")
    adaptive_rate: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="adaptive conformal step as a share of the interval width per realised outcome (0: static)",
    )
    max_model_age_days: float | None = Field(
        14.0,
        gt=0,
        description="refuse a champion whose training data ends longer than this before the newest stored candle",
    )
    store_url: str | None = Field(
        None, description="SQLAlchemy URL of a SQL prediction table (default: parquet under the state folder)"
    )

    @field_validator("store_url")
    @classmethod
    def _no_password_in_config(cls, url: str | None) -> str | None:
        # A run config is logged to MLflow, Optuna and Prefect as it is: a password there would be shown to all.
        if url and (urlsplit(url).password or "password=" in urlsplit(url).query.lower()):
            raise ValueError(
                "predict.store_url carries a password, and a run config is logged to MLflow, Optuna and Prefect: "
                "leave it out (postgresql://user@host/db with PGPASSWORD or ~/.pgpass), or set the whole URL in "
                "CANDLECAST_PREDICTION_STORE_URL"
            )
        return url

    risk_model_name: str | None = Field(
        "candlecast-risk", description="registered risk model whose @champion also forecasts volatility and VaR"
    )


class MultiSeriesConfig(_Frozen):
    """Many symbols: one global model over all of them, and fan-out of per-symbol work on Dask."""

    global_model: bool = Field(
        False,
        description="one network for every symbol: each series scaled on its own training rows, its id a "
        "one-hot input (default: one pooled network with a shared scaler and no id)",
    )
    pooled_volatility: Literal["off", "residual", "direct"] = Field(
        "off", description="volatility: one network for all symbols, a series embedding, residual on log-HAR or not"
    )
    dask_workers: int = Field(
        2, ge=1, description="worker processes of the local Dask cluster (unless CANDLECAST_DASK_ADDRESS is set)"
    )
    predict_chunk: int = Field(25, ge=1, description="symbols per batch-prediction task (one forward pass each)")


class RunConfig(_Frozen):
    """Everything a run does, from one YAML file: a frozen, validated tree of the sections above.

    Frozen and strict (unknown keys fail), so a typo fails when the file loads, not hours into a run;
    the Prefect UI builds its parameter form from this schema.
    """

    name: str = "candlecast"
    target: TargetName = Field(
        "returns", description="what the models forecast: the next h candles' returns, or their volatility and VaR"
    )
    exchange: ExchangeConfig = ExchangeConfig()
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()
    sweep: SweepConfig = SweepConfig()
    promotion: PromotionConfig = PromotionConfig()
    predict: PredictConfig = PredictConfig()
    backtest: BacktestConfig = BacktestConfig()
    multi_series: MultiSeriesConfig = MultiSeriesConfig()
    live: LiveConfig = LiveConfig()

    @model_validator(mode="before")
    @classmethod
    def _risk_models_register_apart(cls, raw: Any) -> Any:
        """A volatility run registers under its own name (its own @champion) unless one is given."""
        if isinstance(raw, dict) and raw.get("target") == "volatility":
            promotion = dict(raw.get("promotion") or {})
            promotion.setdefault("model_name", "candlecast-risk")
            raw = {**raw, "promotion": promotion}
        return raw

    @model_validator(mode="after")
    def _gap_covers_horizon(self) -> RunConfig:
        if self.split.gap is not None and self.split.gap < self.features.horizon:
            raise ValueError(
                f"split.gap {self.split.gap} is shorter than features.horizon {self.features.horizon}: "
                "training targets would overlap the validation range; raise the gap or leave it unset"
            )
        return self

    @property
    def gap(self) -> int:
        """Candles purged between training, validation and test ranges."""
        return self.split.gap or self.features.lookback + self.features.horizon

    @property
    def series(self) -> list[SeriesKey]:
        """The configured series: every symbol on the exchange at the timeframe."""
        return [SeriesKey(self.exchange.id, s, self.data.timeframe) for s in self.data.symbols]

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the runs go to: the config's name, so runs of one config compare side by side."""
        return self.name

    @classmethod
    def from_yaml(cls, path: str | Path, home: Path | None = None) -> RunConfig:
        """Load a YAML file, its relative paths made absolute once, here; errors are one line naming the file.

        A relative path is relative to the file's folder, ``${CANDLECAST_HOME}/x`` to the state folder
        (``home``, default: the settings' one), so the config means the same from any working directory.
        """
        path = Path(path)
        raw = read_mapping(path)
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"config file {path} is invalid: {one_line(exc)}") from None
        if home is None:
            from candlecast.settings import Settings

            home = Settings().root
        base = path.expanduser().resolve().parent
        try:
            return with_paths(cfg, lambda value, _: resolve_path(value, base, home))
        except ValueError as exc:
            raise ValueError(f"config file {path}: {exc}") from None

    def to_yaml(self, home: Path | None = None) -> str:
        """The config as YAML that loads back to it; paths inside ``home`` written as ``${CANDLECAST_HOME}/...``."""
        raw = self.model_dump(mode="json")
        if home is not None:
            home_relative(raw, str(home))
        return yaml.safe_dump(raw, sort_keys=False)
