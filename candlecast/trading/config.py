"""What a trading run does: the sizing policy, its risk limits, and how orders meet the market.

One frozen object, like the run config, so a backtest and the live signals read the same policy.
Unknown keys and out-of-range values are errors with one line each, never silent defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from candlecast.configfile import one_line, read_mapping

PolicyName = Literal["sign", "vol_target"]
ExecutionMode = Literal["close", "next_open"]
POLICIES: tuple[str, ...] = ("sign", "vol_target")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyConfig(_Frozen):
    """How a forecast becomes a target exposure (a signed fraction of equity per symbol)."""

    name: PolicyName = Field(
        "vol_target", description="sign: full size in the forecast's direction; vol_target: size = target vol / vol"
    )
    target_vol: float = Field(0.5, gt=0, description="annualized volatility the vol_target policy aims at")
    no_trade_band: float = Field(
        0.1, ge=0, description="skip a rebalance smaller than this change in exposure (fraction of equity)"
    )
    allow_short: bool = Field(True, description="short on a negative forecast (else flat)")
    max_leverage: float = Field(1.0, gt=0, description="gross exposure cap over all symbols (1 = no leverage)")
    max_position: float = Field(1.0, gt=0, description="cap on one symbol's |exposure|, fraction of equity")
    max_drawdown: float | None = Field(
        0.5, gt=0, lt=1, description="drawdown from the equity peak that flattens everything and stops trading"
    )


class ExecutionConfig(_Frozen):
    """The venue: costs, fills and when an order reaches the market."""

    mode: ExecutionMode = Field(
        "next_open",
        description="close: fill at the decision bar's close (optimistic); next_open: after latency_ms, "
        "at the next candle's open",
    )
    latency_ms: int = Field(100, gt=0, description="order latency in next_open mode (less than one candle)")
    maker_fee_bps: float = Field(10.0, ge=0, description="maker fee, basis points of notional")
    taker_fee_bps: float = Field(10.0, ge=0, description="taker fee (market orders pay this), basis points")
    slippage_bps: float = Field(2.0, ge=0, description="every market order fills this much worse than the quote")
    starting_capital: float = Field(100_000.0, gt=0, description="starting balance in the quote currency")
    venue_leverage: float = Field(10.0, ge=1, description="the margin account's leverage (must allow max_leverage)")


class TradingConfig(_Frozen):
    """The whole trading run: policy, execution, holding period and the coverage forecasts must reach."""

    policy: PolicyConfig = PolicyConfig()
    execution: ExecutionConfig = ExecutionConfig()
    hold: int | None = Field(
        None, ge=1, description="holding period in candles: trade the hold-step forecast every hold candles"
    )
    min_coverage: float = Field(
        0.9, gt=0, le=1, description="share of the traded bars each symbol's forecasts must cover"
    )

    @classmethod
    def parse(cls, raw: dict[str, Any], origin: str = "trading config") -> TradingConfig:
        """Validate a mapping; errors become one line per bad key, naming the key and the rule."""
        try:
            cfg = cls.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(f"{origin} is invalid: {one_line(exc)}") from None
        if cfg.policy.max_leverage > cfg.execution.venue_leverage:
            raise ValueError(
                f"{origin}: policy.max_leverage {cfg.policy.max_leverage} exceeds execution.venue_leverage "
                f"{cfg.execution.venue_leverage}: the venue would refuse the orders; lower one or raise the other"
            )
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> TradingConfig:
        """Load a YAML file (policy:, execution:, hold:, min_coverage:); errors name the file and the key."""
        raw = read_mapping(path, "trading config")
        return cls.parse(raw, f"trading config {path}")

    def with_updates(self, **sections: dict[str, Any]) -> TradingConfig:
        """A copy with some fields replaced (CLI flags), validated like a file; None values are ignored."""
        raw = self.model_dump()
        for key, values in sections.items():
            if isinstance(values, dict):
                raw[key].update({k: v for k, v in values.items() if v is not None})
            elif values is not None:
                raw[key] = values
        return self.parse(raw, "trading options")
