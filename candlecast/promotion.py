"""The promotion gate: a pure decision, then an alias move in the registry."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from candlecast import registry


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]


def decide(challenger: dict[str, float], champion: dict[str, float] | None, min_improvement: float) -> Decision:
    """Promote only a challenger that beats naive and the current champion by ``min_improvement``.

    Both comparisons read ``rmse_ratio`` (RMSE over the naive random walk's RMSE on the same windows).
    """
    reasons = []
    ratio = challenger["rmse_ratio"]
    bar = 1.0 - min_improvement
    beats_naive = ratio < bar
    reasons.append(f"rmse_ratio {ratio:.4f} {'<' if beats_naive else '>='} {bar:.4f} (naive random walk)")
    beats_champion = True
    if champion is not None:
        champ_bar = champion["rmse_ratio"] * bar
        beats_champion = ratio < champ_bar
        reasons.append(
            f"rmse_ratio {ratio:.4f} {'<' if beats_champion else '>='} {champ_bar:.4f} (champion's "
            f"{champion['rmse_ratio']:.4f} less {min_improvement:.1%})"
        )
    else:
        reasons.append("no champion yet")
    return Decision(promote=beats_naive and beats_champion, reasons=tuple(reasons))


@dataclass(frozen=True)
class PromotionOutcome:
    model_name: str
    version: str
    promoted: bool
    reasons: tuple[str, ...]
    champion: str | None
    run_id: str
    metrics: dict[str, float]


def promote(
    client: MlflowClient, name: str, model_uri: str, run_id: str, metrics: dict[str, float], min_improvement: float
) -> PromotionOutcome:
    """Register the evaluated model as @challenger and move @champion to it if the gate says so."""
    champion = registry.alias_version(client, name, registry.CHAMPION)
    champion_metrics = None
    if champion is not None:
        champion_run = client.get_model_version(name, champion).run_id
        champion_metrics = client.get_run(champion_run).data.metrics
    decision = decide(metrics, champion_metrics, min_improvement)
    version = registry.register(client, name, model_uri, run_id, {"rmse_ratio": f"{metrics['rmse_ratio']:.6f}"})
    client.set_registered_model_alias(name, registry.CHALLENGER, version)
    compared_with = champion or "none"
    if decision.promote:
        registry.move_champion(client, name, version, expected=champion)
        champion = version
    # recorded after the move, so a version never claims a promotion that a race refused
    for key, value in {
        "promotion.decision": "promoted" if decision.promote else "refused",
        "promotion.reasons": "; ".join(decision.reasons),
        "promotion.compared_with": compared_with,
    }.items():
        client.set_model_version_tag(name, version, key, value)
    return PromotionOutcome(name, version, decision.promote, decision.reasons, champion, run_id, metrics)
