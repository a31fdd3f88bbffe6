"""The run config: one typed, frozen object that says what a run does, loadable from YAML.

Unknown keys are errors: a typo in a config file must not silently fall back to a default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from candlecast.schema import SeriesKey, timeframe_ms


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExchangeConfig(_Frozen):
    id: str = "binance"
    emulator: bool = Field(True, description="serve seeded synthetic candles from a local Binance emulator")
    api_url: str | None = Field(None, description="override the exchange's REST base URL (Binance-shaped)")
    rate_limit: bool = True
    synthetic_start: datetime = Field(
        datetime(2024, 1, 1, tzinfo=UTC), description="first candle of the emulator's synthetic history"
    )
    seed: int = 7


class DataConfig(_Frozen):
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


class FeatureConfig(_Frozen):
    lookback: int = Field(48, ge=2, description="input window length in candles")
    horizon: int = Field(24, ge=1, description="forecast steps ahead (direct multi-step)")
    vol_window: int = Field(24, ge=2, description="rolling window of volatility and volume z-score")


class SplitConfig(_Frozen):
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="untouched final range for evaluation")
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="validation range of each walk-forward fold")
    n_folds: int = Field(1, ge=1, description="walk-forward folds inside the development range")


class TrainConfig(_Frozen):
    max_epochs: int = Field(8, ge=1)
    patience: int = Field(2, ge=1)
    batch_size: int = Field(256, ge=8)
    seed: int = 42
    threads: int | None = Field(None, description="torch threads; default: all cores")


class SweepConfig(_Frozen):
    model: str = "lstm"
    n_trials: int = Field(6, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    max_epochs: int = Field(4, ge=1, description="epochs per trial (the final fit uses train.max_epochs)")
    seed: int = 42
    pruner_startup_trials: int = 2


class PromotionConfig(_Frozen):
    model_name: str = "candlecast-lstm"
    min_improvement: float = Field(
        0.0, ge=0, lt=1, description="required relative RMSE gain over naive and over the champion"
    )


class PredictConfig(_Frozen):
    interval: float = Field(0.8, gt=0, lt=1, description="central prediction interval coverage")


class RunConfig(_Frozen):
    name: str = "candlecast"
    exchange: ExchangeConfig = ExchangeConfig()
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()
    sweep: SweepConfig = SweepConfig()
    promotion: PromotionConfig = PromotionConfig()
    predict: PredictConfig = PredictConfig()

    @model_validator(mode="after")
    def _model_known(self) -> RunConfig:
        from models import MODELS

        if self.sweep.model not in MODELS:
            raise ValueError(f"sweep.model {self.sweep.model!r} is not one of {sorted(MODELS)}")
        return self

    @property
    def series(self) -> list[SeriesKey]:
        return [SeriesKey(self.exchange.id, s, self.data.timeframe) for s in self.data.symbols]

    @property
    def experiment_name(self) -> str:
        return self.name

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """Load a YAML file; errors name the file and the bad key."""
        path = Path(path)
        try:
            raw: Any = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"config file {path} is invalid:\n{exc}") from None
