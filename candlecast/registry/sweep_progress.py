"""Progress of a running sweep: trial i of n, fold and epoch, best so far, an ETA.

A sweep on a laptop runs for many minutes; without this a user sees nothing and cannot tell a slow
sweep from a hung one. The sweep reports each step to a ``SweepReporter``, which

- logs one line per finished trial on this module's logger (so the Prefect UI's run logs show them);
- passes every step (trial start, epoch, trial end) to the listeners registered in this process
  with ``listening(fn)``: the CLI draws a bar on a terminal, or prints plain lines to a pipe.

Only the process that runs the flow has listeners; a parallel sweep's helper processes report
nothing, but the trial count comes from the shared study, so it counts their trials too.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, TypeVar

import optuna
from lightning.pytorch import Callback, LightningModule, Trainer

from candlecast.config import RunConfig
from candlecast.forecasting.backtest import objective_name

log = logging.getLogger(__name__)

Event = Literal["resumed", "trial_start", "epoch", "trial_end"]


@dataclass(frozen=True)
class SweepProgress:
    """One step of a sweep, as a display shows it.

    Attributes:
        study: The Optuna study's name.
        event: ``resumed`` (the study already holds finished trials), ``trial_start``, ``epoch``
            (an epoch of the running trial ended) or ``trial_end``.
        trial: The running trial's place in the budget, 1-based (finished trials, resumed ones
            included, plus one); at ``resumed``, the finished trials.
        n_trials: The budget: finished trials the sweep stops at.
        fold, n_folds: The sweep fold being fitted (0-based) and how many there are.
        epoch, max_epochs: Epochs done in that fold, and the most it runs (early stopping may end sooner).
        state: At ``trial_end``: COMPLETE, PRUNED or FAIL.
        value: At ``trial_end`` of a complete trial: its objective (mean ratio to naive).
        best: The best objective so far in the study, or None.
        metric: The objective's name, e.g. ``rmse_ratio``.
        eta_s: Seconds until the budget is spent, estimated from this run's trials; None before one ends.
    """

    study: str
    event: Event
    trial: int
    n_trials: int
    fold: int = 0
    n_folds: int = 1
    epoch: int = 0
    max_epochs: int = 0
    state: str | None = None
    value: float | None = None
    best: float | None = None
    metric: str = "objective"
    eta_s: float | None = None


Step = TypeVar("Step")


class Listeners(Generic[Step]):
    """This process's callbacks for one kind of progress step (the sweep's, the evaluation's)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Step], None]] = []

    @contextlib.contextmanager
    def listening(self, listener: Callable[[Step], None]) -> Iterator[None]:
        """Send each step to ``listener`` while the block runs."""
        self._callbacks.append(listener)
        try:
            yield
        finally:
            self._callbacks.remove(listener)

    def notify(self, step: Step) -> None:
        """Pass ``step`` to every listener; a broken display must never stop the work it shows."""
        for listener in list(self._callbacks):
            try:
                listener(step)
            except Exception:
                log.debug("progress listener failed", exc_info=True)


_SWEEP_STEPS: Listeners[SweepProgress] = Listeners()
listening = _SWEEP_STEPS.listening
_notify = _SWEEP_STEPS.notify


_DONE = ("COMPLETE", "PRUNED")


def finished_trials(study: optuna.Study) -> int:
    """Trials that count toward the budget: complete and pruned ones (a failed trial is tried again)."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def best_value(study: optuna.Study) -> float | None:
    """The study's best objective so far, None before a trial completes."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return min((t.value for t in done if t.value is not None), default=None)


@dataclass
class SweepReporter:
    """Turns the sweep's calls into SweepProgress steps and per-trial log lines; keeps the timing for the ETA.

    ``trial_finished`` is an Optuna callback: it runs once the study has stored the trial, so a
    trial reported COMPLETE is complete in the storage (and survives an interrupt right after).
    """

    name: str
    cfg: RunConfig
    _current: SweepProgress | None = None
    _started: float = 0.0
    _durations: list[float] = field(default_factory=list)

    @property
    def n_trials(self) -> int:
        """The sweep's budget of finished trials."""
        return self.cfg.sweep.n_trials

    def resumed(self, study: optuna.Study) -> None:
        """Say the sweep goes on from a study that already holds finished trials (a run stopped midway)."""
        done = finished_trials(study)
        log.info("sweep %s: resuming with %d of %d trials finished", self.name, done, self.n_trials)
        _notify(self._step("resumed", done, best_value(study)))

    def trial_started(self, study: optuna.Study) -> None:
        """A trial begins in this process."""
        self._started = time.monotonic()
        done = finished_trials(study)
        self._current = self._step("trial_start", done, best_value(study))
        _notify(self._current)

    def epoch_ended(self, fold: int, epoch: int) -> None:
        """The running trial finished ``epoch`` epochs of sweep fold ``fold``."""
        if self._current is None:
            return
        self._current = replace(self._current, event="epoch", fold=fold, epoch=epoch)
        _notify(self._current)

    def trial_finished(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna's callback after a trial is stored: one log line and a ``trial_end`` step."""
        if self._current is None:
            return
        seconds = time.monotonic() - self._started
        if trial.state.name in _DONE:
            self._durations.append(seconds)
        done, best = finished_trials(study), best_value(study)
        step = replace(
            self._current, event="trial_end", state=trial.state.name, value=trial.value, best=best,
            eta_s=self._eta(done),
        )  # fmt: skip
        self._current = None
        shown = f"{step.metric} {trial.value:.4f}" if trial.value is not None else "no score"
        log.info(
            "sweep %s: trial %d/%d %s (%s) in %.0f s; best %s; %s",
            self.name, step.trial, self.n_trials, step.state, shown, seconds,
            "-" if best is None else f"{best:.4f}", format_eta(step.eta_s),
        )  # fmt: skip
        _notify(step)

    def _step(self, event: Event, done: int, best: float | None) -> SweepProgress:
        sweep = self.cfg.sweep
        return SweepProgress(
            self.name, event, min(done + 1, self.n_trials) if event != "resumed" else done, self.n_trials,
            n_folds=self.cfg.split.n_folds, max_epochs=sweep.max_epochs, best=best,
            metric=objective_name(self.cfg), eta_s=self._eta(done),
        )  # fmt: skip

    def _eta(self, finished: int) -> float | None:
        if not self._durations:
            return None
        left = max(self.n_trials - finished, 0)
        return sum(self._durations) / len(self._durations) * left / max(self.cfg.sweep.workers, 1)


def format_eta(seconds: float | None) -> str:
    """'ETA 3m05s', 'ETA 1h02m', or 'ETA -' when there is no estimate yet."""
    if seconds is None:
        return "ETA -"
    s = int(round(seconds))
    if s >= 3600:
        return f"ETA {s // 3600}h{s % 3600 // 60:02d}m"
    return f"ETA {s // 60}m{s % 60:02d}s"


class EpochProgress(Callback):
    """Reports each finished training epoch of one fold to the reporter."""

    def __init__(self, reporter: SweepReporter | None, fold: int) -> None:
        self.reporter, self.fold = reporter, fold

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's hook: ``current_epoch`` is 0-based, so the epochs done are one more."""
        if self.reporter is not None:
            self.reporter.epoch_ended(self.fold, trainer.current_epoch + 1)
