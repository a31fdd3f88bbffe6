"""Forecasting targets: TARGETS is the explicit registry; a config's ``target`` names a key.

Adding a target is one module beside these (a ``Target`` subclass and its instance), one line here,
its name in ``candlecast.config.TargetName`` and one test file (docs/architecture.md, "Targets").
"""

from candlecast.config import RunConfig
from candlecast.forecasting.targets.base import BacktestResult, FoldForecasts, Target, Walk
from candlecast.forecasting.targets.returns import RETURNS
from candlecast.forecasting.targets.volatility import VOLATILITY

TARGETS: dict[str, Target] = {"returns": RETURNS, "volatility": VOLATILITY}


def target_of(cfg: RunConfig) -> Target:
    """The target a run config forecasts."""
    return get(cfg.target)


def get(key: str) -> Target:
    """A target by its config name; the error lists the known ones."""
    if key not in TARGETS:
        raise ValueError(f"unknown target {key!r}: choose from {sorted(TARGETS)}")
    return TARGETS[key]


def for_bundle(key: str) -> Target:
    """The target a bundle's spec names (``BundleSpec.target``, e.g. 'variance' for volatility)."""
    for target in TARGETS.values():
        if target.bundle_key == key:
            return target
    raise ValueError(f"the bundle's target {key!r} is none of {sorted(t.bundle_key for t in TARGETS.values())}")


__all__ = ["TARGETS", "BacktestResult", "FoldForecasts", "Target", "Walk", "for_bundle", "get", "target_of"]
