"""The sweep's figures on its MLflow parent run: each trial's objective, and which hyperparameters mattered."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

log = logging.getLogger(__name__)


def log_history_plot(client: Any, run_id: str, study: optuna.Study, metric: str) -> None:
    """Each trial's objective, the best so far and naive's 1.0, with the pruned trials counted in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.value is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    what = "QLIKE ratio to naive volatility" if metric == "qlike_ratio" else "RMSE ratio to naive"
    numbers = [t.number for t in done]
    values = np.array([float(t.value) for t in done if t.value is not None])
    ax.plot(numbers, values, "o", label=f"trial {what}")
    ax.plot(numbers, np.minimum.accumulate(values), "-", label="best so far")
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    ax.axhline(1.0, color="grey", lw=0.5, ls="--", label="naive")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
    ax.set(
        xlabel="trial",
        ylabel=f"mean {what} over folds",
        title=f"Optuna sweep {study.study_name} ({pruned} pruned)",
    )
    ax.legend()
    client.log_figure(run_id, fig, "plots/sweep_history.png")
    plt.close(fig)


def log_importance_plot(client: Any, run_id: str, study: optuna.Study) -> None:
    """Which hyperparameters mattered (Optuna's default evaluator); needs a few completed trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 3:
        return  # importances from one or two trials are noise
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:  # too few completed trials, or a single distinct value
        log.info("no parameter importances for %s: %s", study.study_name, exc)
        return
    if not importances:
        return
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.4 * len(importances)))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel="importance", title=f"hyperparameter importance, {study.study_name}")
    fig.tight_layout()
    client.log_figure(run_id, fig, "plots/param_importances.png")
    plt.close(fig)
