"""The live loop's section of the run config (``RunConfig.live``): a leaf beside config.py, which imports it.

Its own module so config.py stays under 400 lines; frozen and strict like every section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class LiveConfig(BaseModel):
    """The living loop (`candlecast live`): candles as they close, forecasts on events, drift that retrains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settle_ms: int = Field(
        250,
        ge=0,
        description="exchange-clock ms after a candle's close before it is fetched (the exchange's publish lag)",
    )
    max_poll_s: float = Field(5.0, gt=0, description="longest real wait between two reads of the exchange clock")
    max_catchup: int = Field(
        500, ge=1, description="after downtime, forecast at most this many missed candles per series (the newest)"
    )
    detector: Literal["adwin", "page_hinkley"] = Field(
        "page_hinkley", description="river's sequential change detector on the per-forecast loss ratio"
    )
    detector_delta: float = Field(
        0.005, gt=0, description="ADWIN's confidence, or Page-Hinkley's tolerated drift of the mean"
    )
    detector_threshold: float = Field(20.0, gt=0, description="Page-Hinkley's alarm threshold (lambda)")
    min_scored: int = Field(30, ge=1, description="scored forecasts of a champion before any drift alarm")
    loss_ratio_cap: float = Field(
        10.0, gt=1, description="per-forecast loss ratio clipped here, so one near-zero naive error is not an alarm"
    )
    guard_days: float = Field(
        7.0, gt=0, description="window of the hard guard: the rolling loss ratio above guard_ratio"
    )
    guard_ratio: float = Field(1.0, gt=0, description="the hard guard's limit on the rolling loss ratio to naive")
    max_model_age_days: float | None = Field(
        7.0,
        gt=0,
        description="champion trained this long before the newest candle is degraded (keep it below "
        "predict.max_model_age_days, where serving refuses it)",
    )
    retrain_trials: int = Field(
        4,
        ge=0,
        description="trials a retrain's sweep runs after the champion's own configuration (its first trial)",
    )
    retrain_window_days: list[PositiveFloat] = Field(
        [15.0, 30.0, 60.0],
        description="training windows (newest days) a retrain also searches, beside all of the history",
    )
    paper: bool = Field(
        False, description="paper-trade every series' live candles with the champion's forecasts (NautilusTrader)"
    )
    paper_trading: str | None = Field(
        None, description="trading YAML of the paper accounts (policy:, execution:, hold:); None: the defaults"
    )
    paper_wait_s: float = Field(
        10.0,
        ge=0,
        description="with forecasts by the predict deployment, how long (real seconds) a paper bar waits for its "
        "forecast to reach the store before it trades without it",
    )
    transport: Literal["auto", "rest", "websocket"] = Field(
        "auto",
        description="how closed candles arrive: websocket (ccxt.pro watch_ohlcv, REST catching up any gap), rest "
        "(polling aligned to the close), or auto: websocket where the exchange offers it",
    )
