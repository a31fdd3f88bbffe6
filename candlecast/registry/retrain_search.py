"""A retrain's search: a fresh Optuna study per degraded champion, which knows the incumbent and searches recency.

A retrain (``train_flow(retrain_for=<version>)``, triggered by ``candlecast.model.degraded``) would
otherwise repeat the champion's own sweep: the same seed over the same space finds the same
configuration, and the gate, refitting the champion on the same folds, sees a tie. So a retrain gets
its own study, named and seeded from the degraded version; the champion's configuration is its first
trial (enqueued: the sweep knows the incumbent, and a challenger must beat it on the sweep's folds to be
chosen instead); ``live.retrain_trials`` more trials follow; and each trial also chooses how much of
the past the network learns from (``window_days``, candlecast.forecasting.recency), the dimension
that matters once the market has changed. The gate is unchanged.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import optuna

from candlecast.config import RunConfig
from candlecast.forecasting.recency import WINDOW_DAYS, network_params
from candlecast.models import search_space_of
from candlecast.registry import tracking
from candlecast.registry.bundle import BundleSpec
from candlecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainSearch:
    """What a retrain's sweep adds to the plain one: its degraded version, the incumbent, the windows it tries."""

    degraded: str  # the degraded champion version this retrain replaces
    windows: tuple[float | None, ...]  # window_days choices; None: all of the training range
    incumbent: dict[str, Any] | None = None  # the champion's Optuna parameters (its first trial); None: not here

    def suggest_window(self, trial: optuna.Trial) -> float | None:
        """The trial's training window, in days (None: all of the history)."""
        days = trial.suggest_categorical(WINDOW_DAYS, list(self.windows))
        return None if days is None else float(days)

    def params(self, cfg: RunConfig) -> dict[str, str]:
        """What the retrain's run records: the degraded version, its sweep's seed and trials, the first trial."""
        return {
            "retrain.for": f"v{self.degraded}",
            "retrain.seed": str(cfg.sweep.seed),
            "retrain.trials": str(cfg.sweep.n_trials),
            "retrain.first_trial": f"v{self.degraded}" if self.incumbent is not None else "none",
            "retrain.window_days": ",".join("all" if w is None else f"{w:g}" for w in self.windows),
        }

    def enqueue_incumbent(self, study: optuna.Study) -> bool:
        """The champion's configuration as the study's first trial (once: a resumed study has it already)."""
        if self.incumbent is None or study.trials:
            return False
        study.enqueue_trial(self.incumbent, user_attrs={"incumbent": f"v{self.degraded}"})
        return True


def retrain_seed(model_name: str, version: str) -> int:
    """The retrain's sweep seed, a pure function of the degraded version: the same retrain draws the same trials."""
    return int(hashlib.sha256(f"{model_name}@v{version}".encode()).hexdigest()[:7], 16)


def retrain_config(cfg: RunConfig, version: str) -> RunConfig:
    """The run config of a retrain of ``version``: its own sweep seed, the incumbent plus ``live.retrain_trials``."""
    sweep = cfg.sweep.model_copy(
        update={"seed": retrain_seed(cfg.promotion.model_name, version), "n_trials": 1 + cfg.live.retrain_trials}
    )
    return cfg.model_copy(update={"sweep": sweep})


def retrain_search(cfg: RunConfig, version: str, champion: tuple[str, BundleSpec] | None) -> RetrainSearch:
    """The search of a retrain of ``version``; ``champion`` (``aliases.champion_spec``) becomes its first trial.

    The champion is enqueued only when it is ``version`` and its configuration is a point of this run's
    search space (the same model, each value among the choices); the log says when it is not.
    """
    own = champion[1].hparams.get(WINDOW_DAYS) if champion is not None else None
    windows = tuple(dict.fromkeys([None, *cfg.live.retrain_window_days, *([own] if own is not None else [])]))
    search = RetrainSearch(version, windows)
    if champion is None or champion[0] != version:
        log.warning("retrain of v%s: no longer the champion, so its configuration is not the first trial", version)
        return search
    spec = champion[1]
    params = incumbent_params(cfg.sweep.model, spec.model_name, spec.hparams)
    if params is None:
        log.warning("retrain of v%s: its %s configuration is not in the %s search space", version, spec.model_name,
                    cfg.sweep.model)  # fmt: skip
        return search
    return RetrainSearch(version, windows, params)


def incumbent_params(searched: str, model_name: str, hparams: dict[str, Any]) -> dict[str, Any] | None:
    """A champion's hyperparameters as the Optuna parameters of ``searched``'s space (None: not a point of it)."""
    if model_name != searched:
        return None
    network = network_params(hparams)
    if searched == "lstm_family":
        arch = network.pop("architecture")
        params = {"architecture": arch, **{f"{arch}.{k}": v for k, v in network.items()}}
    else:
        params = dict(network)
    try:  # the space itself checks the point: each categorical value among its choices, nothing missing
        chosen = search_space_of(searched)(optuna.trial.FixedTrial(params))
    except ValueError:
        return None
    if chosen != network_params(hparams):  # a key the space does not know
        return None
    return {**params, WINDOW_DAYS: hparams.get(WINDOW_DAYS)}


@dataclass(frozen=True)
class SearchSummary:
    """What a retrain's sweep tried, from its MLflow run and its Optuna study: for reports and tests."""

    study: str
    finished: int  # trials complete or pruned
    incumbent: str | None  # "v<version>" when the champion's configuration was the first trial
    incumbent_trial: int | None
    incumbent_value: float | None  # its objective on the sweep's folds (None: pruned, or not a trial)
    best_trial: int
    best_value: float
    best: dict[str, Any]  # the best trial's hyperparameters: what the gate then judges

    @property
    def best_is_incumbent(self) -> bool:
        """The search found nothing better than the champion's own configuration."""
        return self.best_trial == self.incumbent_trial

    def line(self) -> str:
        """One line: the trials, the champion's among them, the best and its training window."""
        own = f"trial {self.incumbent_trial} the champion's configuration ({self.incumbent}"
        first = f"{own}, {_value(self.incumbent_value)})" if self.incumbent else "the champion's not among them"
        days = self.best.get(WINDOW_DAYS)
        window = "all of the history" if days is None else f"the newest {days:g} days"
        best = "the champion's own" if self.best_is_incumbent else f"trial {self.best_trial}"
        return f"searched {self.finished} trials, {first}; best {best} ({self.best_value:.4f}), learning from {window}"


def _value(value: float | None) -> str:
    return "pruned" if value is None else f"{value:.4f}"


def search_summary(settings: Settings, run_id: str) -> SearchSummary:
    """The sweep of the train run ``run_id`` (the run tags its study), read back from the Optuna storage."""
    name = tracking.client(settings).get_run(run_id).data.tags["optuna.study"]
    study = optuna.load_study(study_name=name, storage=settings.optuna_url)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = [t for t in study.trials if t.state in done]
    first = next((t for t in trials if "incumbent" in t.user_attrs), None)
    best = study.best_trial
    return SearchSummary(
        study=name,
        finished=len(trials),
        incumbent=first.user_attrs["incumbent"] if first else None,
        incumbent_trial=first.number if first else None,
        incumbent_value=first.value if first and first.state == optuna.trial.TrialState.COMPLETE else None,
        best_trial=best.number,
        best_value=float(best.value or float("nan")),
        best=dict(best.user_attrs["hparams"]),
    )
