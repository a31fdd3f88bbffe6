"""The promotion gate: a pure decision from policy and scores, then an alias move in the registry.

Scores compare on the same windows: the challenger's test metrics, the champion's configuration
refitted and scored on the same folds by the evaluation (else its recorded metrics, said in the
reasons), and the naive random walk's. A model of many coins whose run scores each coin
(``series.<name>.*``: the pooled variance model) passes only if it passes on every coin, against that
coin's best baseline and that coin's champion forecasts.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.tracking import MlflowClient

from candlecast.config import PromotionConfig
from candlecast.forecasting.targets import Target
from candlecast.registry import aliases
from candlecast.settings import Settings


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with one reason per check, passed or failed, so a refusal says what to improve."""

    promote: bool
    reasons: tuple[str, ...]


def decide(
    challenger: dict[str, float], champion: dict[str, float] | None, policy: PromotionConfig, target: Target
) -> Decision:
    """Promote only a challenger that beats its reference and the champion by the policy's margins, significantly.

    The target names the score (``target.gate_metric``) and what it is a ratio to: for returns
    ``rmse_ratio``, RMSE over the naive random walk's on the same windows; for volatility
    ``qlike_ratio``, QLIKE over the best classical volatility model's. ``dm_pvalue`` is the one-sided
    Diebold-Mariano p-value against that reference. ``champion`` holds the champion's score and the
    challenger's ``dm_pvalue`` against it, both measured on the challenger's own windows, or None
    when there is no champion. With ``series.<name>.`` scores (one model of many coins) these checks
    run on each coin's windows instead, against that coin's best reference and its champion forecasts.
    """
    checks: list[tuple[bool, str]] = []
    coins = series_judged(challenger, target)
    for prefix in [f"series.{coin}." for coin in coins] or [""]:
        label = f"{prefix[len('series.') : -1]}: " if prefix else ""
        checks += _checks(challenger, champion, prefix, label, policy, target)
    if champion is None:
        checks.append((True, "no champion yet"))
    return Decision(promote=all(ok for ok, _ in checks), reasons=tuple(reason for _, reason in checks))


def series_judged(metrics: dict[str, float], target: Target) -> list[str]:
    """The coins a many-series model is judged on one by one (``series.<name>.<gate metric>``); [] for one series."""
    suffix = f".{target.gate_metric}"
    return sorted(
        k[len("series.") : -len(suffix)]
        for k in metrics
        if k.startswith("series.") and k.endswith(suffix) and ".champion." not in k
    )


def _checks(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    prefix: str,
    label: str,
    policy: PromotionConfig,
    target: Target,
) -> list[tuple[bool, str]]:
    """The checks on one set of windows (``prefix``: every window, or one coin's): reference, then champion."""
    metric, reference = target.gate_metric, target.gate_reference
    ratio = challenger[prefix + metric]
    bar = 1.0 - policy.min_gain_vs_naive
    ok = ratio < bar
    checks = [(ok, f"{label}{metric} {ratio:.4f} {'<' if ok else '>='} {bar:.4f} ({reference})")]
    if policy.max_dm_pvalue is not None:
        checks.append(_significant(challenger.get(prefix + "dm_pvalue"), policy.max_dm_pvalue, reference, label))
    if champion is None:
        return checks
    theirs = champion[prefix + metric]
    champ_bar = theirs * (1.0 - policy.min_gain_vs_champion)
    ok = ratio < champ_bar
    checks.append((ok, f"{label}{metric} {ratio:.4f} {'<' if ok else '>='} {champ_bar:.4f} (champion {theirs:.4f})"))
    if policy.max_dm_pvalue_vs_champion is not None:
        p = champion.get(prefix + "dm_pvalue")
        checks.append(_significant(p, policy.max_dm_pvalue_vs_champion, "the champion", label))
    return checks


def _significant(p: float | None, limit: float, against: str, label: str = "") -> tuple[bool, str]:
    ok = p is not None and p < limit
    shown = "missing" if p is None else f"{p:.4f}"
    return ok, f"{label}Diebold-Mariano p-value vs {against} {shown} {'<' if ok else 'not <'} {limit}"


@dataclass(frozen=True)
class PromotionOutcome:
    """What a promotion did: the version registered as challenger, whether it became champion, and why."""

    model_name: str
    version: str
    promoted: bool
    reasons: tuple[str, ...]
    champion: str | None
    run_id: str
    metrics: dict[str, float]


def promote(
    client: MlflowClient,
    settings: Settings,
    policy: PromotionConfig,
    target: Target,
    model_uri: str,
    run_id: str,
    metrics: dict[str, float],
) -> PromotionOutcome:
    """Register the evaluated model as @challenger, then move @champion to it if the gate says so."""
    name = policy.model_name
    metric = target.gate_metric
    version = aliases.register(client, name, model_uri, run_id, {metric: f"{metrics[metric]:.6f}"})
    client.set_registered_model_alias(name, aliases.CHALLENGER, version)
    return gate_version(client, settings, policy, target, version, metrics)


def gate_version(
    client: MlflowClient,
    settings: Settings,
    policy: PromotionConfig,
    target: Target,
    version: str,
    metrics: dict[str, float],
    force: bool = False,
) -> PromotionOutcome:
    """Decide and move @champion under the promotion lock; record the decision, with its numbers, on the version.

    The champion is judged only on the challenger's own windows: the evaluation refits the
    champion's configuration on the challenger's folds (``champion.<gate metric>``,
    ``champion.dm_pvalue``). When it could not (another timeframe or other features), or it refitted
    another version than the champion of now, the gate refuses with that reason rather than compare
    numbers from different periods; ``candlecast promote --force`` overrides it.
    """
    name = policy.model_name
    with aliases.promotion_lock(settings, name):
        champion = aliases.alias_version(client, name, aliases.CHAMPION)
        champion_metrics, how = None, ""
        unavailable = None
        if champion is not None and champion != version:
            if metrics.get("champion.version") == float(champion):
                champion_metrics = _champion_numbers(metrics, target)
                how = "refitted and scored on the same folds"
            else:
                unavailable = (
                    f"champion v{champion} was not refitted on this challenger's folds (other features or "
                    "timeframe, or it changed during the evaluation): no comparison on the same windows, refused"
                )
        decision = decide(metrics, champion_metrics, policy, target)
        if unavailable:
            decision = Decision(False, (*decision.reasons[:-1], unavailable))
        if force:
            user = getpass.getuser()
            decision = Decision(True, (f"forced by {user}, gate said: " + "; ".join(decision.reasons),))
        if decision.promote:
            aliases.move_champion(client, name, version, expected=champion)
        # recorded after the move, so a version never claims a promotion that a race refused
        tags = {
            "promotion.decision": "promoted" if decision.promote else "refused",
            "promotion.reasons": "; ".join(decision.reasons),
            "promotion.compared_with": f"{champion} ({how})" if champion_metrics else "none",
            "promotion.numbers": ", ".join(
                f"{k}={v:.6g}" for k, v in sorted(metrics.items()) if _is_gate_number(k, target)
            ),
            "promotion.decided_at": datetime.now(UTC).isoformat(),
        }
        if force:
            tags["promotion.forced"] = "true"
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    run_id = client.get_model_version(name, version).run_id or ""
    new_champion = version if decision.promote else champion
    return PromotionOutcome(name, version, decision.promote, decision.reasons, new_champion, run_id, metrics)


def _champion_numbers(metrics: dict[str, float], target: Target) -> dict[str, float]:
    """The champion's scores on the challenger's windows, keyed as the challenger's (each coin's too)."""
    prefixes = ["", *(f"series.{coin}." for coin in series_judged(metrics, target))]
    return {p + k: metrics[f"{p}champion.{k}"] for p in prefixes for k in (target.gate_metric, "dm_pvalue")}


def _is_gate_number(key: str, target: Target) -> bool:
    if key.startswith("series."):  # series.<name>.<number>: a coin's own
        key = key.split(".", 2)[2]
    return key.removeprefix("champion.") in (target.gate_metric, "dm_pvalue", "version")
