"""`candlecast live --rehearsal` (`make live-demo`): the living loop offline, a regime change, the retrain, the verdict.

The composition root of live/rehearsal.py: the champion comes from the pipeline flow (ingest, train,
gate, predict) on the rehearsal's market, the loop's events go to the journal and to Prefect, and each
``model.degraded`` is answered in process by the train flow with ``retrain_for`` (the same flow, claim
and gate the train deployment's trigger runs). The rehearsal works in ``<home>/rehearsal``, which it
empties first; its flow runs and events report to the Prefect server of ``<home>`` (PREFECT_API_URL, or
`candlecast up`, else a private one), so `candlecast up` first shows them in the Prefect UI.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from candlecast.config import RunConfig
from candlecast.live.loop import CANDLES_STORED, FORECAST_STORED
from candlecast.live.rehearsal import Plan, Rehearsal, drive, percentiles, rehearsal_config, rehearsal_market
from candlecast.settings import Settings

Say = Callable[[str], None]


def build_champion(cfg: RunConfig) -> tuple[Any, bool]:
    """The pipeline flow once on ``cfg`` (ingest, train, gate, predict); (its promotion outcome, forced).

    A rehearsal needs a champion to watch: when the gate refuses the tiny model, @champion is set to it
    anyway and ``forced`` says so (the seeds are pinned, so this is the same on every run).
    """
    from candlecast.flows.pipeline import pipeline
    from candlecast.registry import tracking

    outcome = pipeline(cfg)["promotion"]
    if outcome.promoted:
        return outcome, False
    tracking.client(Settings()).set_registered_model_alias(outcome.model_name, "champion", outcome.version)
    return outcome, True


def paper_line(settings: Settings) -> str:
    """The paper accounts' PnL next to buy-and-hold since the loop started (live/paper.py), in one line."""
    from candlecast.live.paper import paper_summary, summary_line

    return summary_line(paper_summary(settings))


def rehearse(plan: Plan, say: Say) -> Rehearsal:
    """Run the rehearsal in the current state folder (CANDLECAST_HOME) with flows reporting to the current API."""
    from candlecast.expectations.gate import candle_gate
    from candlecast.flows.train import train_flow
    from candlecast.registry.retrain_search import search_summary
    from candlecast.tasks.events import emit

    settings = Settings()
    started = time.monotonic()
    day = datetime.fromtimestamp(plan.change_at / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    say(
        f"rehearsal: {len(plan.symbols)} series of {plan.timeframe} candles on a pinned synthetic market (seed "
        f"{plan.seed}); a champion trained on {plan.train_days} days, then {plan.days:g} days live; the learnable "
        f"component switches sign at day {plan.change_day:g} ({day} UTC)"
    )
    with rehearsal_market(plan) as emulator:
        cfg = rehearsal_config(plan, emulator.url)
        t = time.monotonic()
        first, forced = build_champion(rehearsal_config(plan))
        ratio = first.metrics.get("rmse_ratio", float("nan"))
        how = "forced to @champion (the gate refused it)" if forced else "promoted to @champion"
        say(f"champion: {first.model_name} v{first.version} {how}, test rmse_ratio {ratio:.3f} "
            f"vs naive ({time.monotonic() - t:.0f} s)")  # fmt: skip
        say(f"loop: {plan.days:g} simulated days, at least {plan.pace_s:g} s per candle ...")

        def retrain(version: str) -> Any:
            say(f"retrain: train flow for the degraded v{version} (the clock stands still while it trains) ...")
            return train_flow(cfg, retrain_for=version)

        # the candle contract on every candle, its result kept in memory: a Data Docs page per candle and
        # series would cost more than the rest of the step (1.7 s of 4 s here)
        report = drive(settings, cfg, plan, emulator, lambda now: candle_gate(None, now), emit, retrain)
    for r in report.retrains:
        if not isinstance(r.outcome, str):
            r.search = search_summary(settings, r.outcome.run_id)
    for line in report_lines(report):
        say(line)
    say(paper_line(settings))
    say(f"wall {time.monotonic() - started:.0f} s")
    return report


def report_lines(report: Rehearsal) -> list[str]:
    """What happened, in words: forecasts per candle, latency, the alarm and when, the retrain and the verdict."""
    per_version: Counter[str] = Counter()
    for counts in report.forecasts.values():
        per_version.update(counts)
    by = ", ".join(f"v{v} {n}" for v, n in sorted(per_version.items()))
    looped = report.seconds - sum(r.seconds for r in report.retrains)
    served = "; ".join(
        f"v{v} from the forecast cut {report.candles_after_change(at)} candles after the change"
        for v, at in sorted(report.served_from.items())
        if at > report.plan.loop_start
    )
    lines = [
        f"forecasts: {report.candles} candles closed per series, {sum(per_version.values())} forecasts ({by}): "
        f"{report.missing} candles missing one, {report.doubled} forecast twice{f'; {served}' if served else ''}",
        f"latency (real seconds from the clock passing the close; {looped / max(report.candles, 1):.2f} s per candle "
        f"outside the retrain): stored candle {percentiles(report.latency.get(CANDLES_STORED, []))}; "
        f"stored forecast {percentiles(report.latency.get(FORECAST_STORED, []))}",
    ]
    if not report.degraded:
        lines.append("drift: no candlecast.model.degraded")
    for d in report.degraded:
        after = report.candles_after_change(int(d["at"]))
        when = f"{after} candles after the change" if after >= 0 else f"{-after} candles BEFORE it (a false alarm)"
        lines.append(
            f"drift: candlecast.model.degraded for v{d['version']} ({d['series']}; {', '.join(d['reasons'])}) at the "
            f"forecast cut {when} (raised once its {report.horizon} steps had closed): {'; '.join(d['details'])}"
        )
    for r in report.retrains:
        outcome = r.outcome
        if isinstance(outcome, str):
            lines.append(f"retrain for v{r.degraded['version']} skipped ({r.seconds:.0f} s): {outcome}")
            continue
        verdict = "promoted to @champion" if outcome.promoted else "refused (the champion stays)"
        lines.append(f"retrain for v{r.degraded['version']} ({r.seconds:.0f} s): v{outcome.version} {verdict}")
        if r.search is not None:
            lines.append(f"  {r.search.line()}")
        lines += [f"  - {reason}" for reason in outcome.reasons]
        if r.search is not None and r.search.best_is_incumbent and not outcome.promoted:
            lines.append(
                "  (no trial beat the champion's own configuration on the sweep's folds, so the challenger is "
                "that configuration refitted on the newest candles: the gate saw the same model twice)"
            )
    return lines


def rehearsal_home(settings: Settings) -> Path:
    """``<home>/rehearsal``: the rehearsal's own state folder, emptied at each start."""
    return settings.root / "rehearsal"


def fresh_rehearsal_home(settings: Settings) -> Path:
    """Empty the rehearsal's state folder (it holds nothing but a previous rehearsal) and return it."""
    path = rehearsal_home(settings)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
