"""Progress of the evaluation and the refit: one step per fitted fold model, then the refit, with an ETA.

The evaluation refits the chosen model, every baseline and the champion's configuration on each test
fold, then the model once more on every candle (the refit): minutes with no sweep bar to watch. Like
the sweep's (candlecast.registry.sweep_progress), each step is logged on this module's logger (the
Prefect UI's run logs) and passed to the listeners this process registered with ``listening(fn)``.

The neural fits (the candidate, the champion's configuration, the refit) take minutes each, so they
report every epoch too. The ETA sums the fits still to come: each at the mean time this run took for
that model, a neural one not seen yet at the candidate's time (or the running fit's epochs at most),
a baseline not seen yet at the baselines' mean; the refit at the candidate's time per epoch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lightning.pytorch import Callback, LightningModule, Trainer

from candlecast.registry.sweep_progress import Listeners, format_eta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationStep:
    """One step of the evaluation, as a display shows it.

    Attributes:
        event: ``start``; ``epoch`` (a neural fit finished an epoch); ``fold`` (one model finished one
            test fold); ``refit`` (the refit starts) or ``refitted``.
        fold, n_folds: The test fold (0-based) and how many there are; n_folds 0 during the refit.
        model: The model (the candidate's architecture, a baseline's name, or ``champion``).
        index, n_models: Its place among the models of a fold (0-based) and how many there are.
        epoch, max_epochs: At ``epoch``: epochs done and the most the fit runs (early stopping may end sooner).
        score: At ``fold``: what it scored (the target's progress text).
        seconds: How long that fit, epoch or refit took.
        eta_s: Seconds until the refit is done, None when there is no estimate yet.
    """

    event: Literal["start", "epoch", "fold", "refit", "refitted"]
    fold: int = 0
    n_folds: int = 0
    model: str = ""
    index: int = 0
    n_models: int = 0
    epoch: int = 0
    max_epochs: int = 0
    score: str = ""
    seconds: float = 0.0
    eta_s: float | None = None

    def line(self) -> str:
        """The step as one plain line (the CLI prints it after the time and ``evaluate``)."""
        eta = format_eta(self.eta_s)
        where = f"fold {self.fold + 1}/{self.n_folds} · model {self.index + 1}/{self.n_models} {self.model}"
        if self.event == "start":
            return f"{self.n_models} models on {self.n_folds} test fold(s), then the refit of {self.model}"
        if self.event == "epoch":
            fit = f"refit {self.model}" if not self.n_folds else where
            return f"{fit} · epoch {self.epoch}/{self.max_epochs} · {self.seconds:.0f} s an epoch · {eta}"
        if self.event == "fold":
            return f"{where} · {self.score} · {self.seconds:.0f} s · {eta}"
        if self.event == "refit":
            return f"refit {self.model} on every candle to the cutoff for {self.max_epochs} epoch(s) · {eta}"
        return f"refitted {self.model} in {self.seconds:.0f} s"


_EVALUATION_STEPS: Listeners[EvaluationStep] = Listeners()
listening = _EVALUATION_STEPS.listening


def _notify(step: EvaluationStep) -> None:
    log.info("evaluate: %s", step.line())
    _EVALUATION_STEPS.notify(step)


#: The factory names of neural fits besides the candidate ("model"): timed like it.
_NEURAL = ("model", "champion")


@dataclass
class EvaluationReporter:
    """Times each fold fit (walkforward.backtest's ``on_fold``), each neural epoch and the refit; reports each."""

    models: list[str]  # the backtest's factory names, the candidate ("model") first
    candidate: str  # the candidate's architecture, shown in place of "model"
    n_folds: int
    describe: Callable[[dict[str, float]], str]  # the target's progress text of one fold's metrics
    clock: Callable[[], float] = time.monotonic
    _seconds: dict[str, list[float]] = field(default_factory=dict)  # whole fold fits, per factory name
    _epoch_seconds: list[float] = field(default_factory=list)  # the neural fits' epochs
    _running: float = 0.0  # the running neural fit's projected length, before any neural fit ended
    _done: int = 0  # fold fits finished
    _refit_epochs: int = 0  # set when the refit starts
    _last: float = field(init=False)
    _epoch_mark: float = field(init=False)

    def __post_init__(self) -> None:
        self._last = self._epoch_mark = self.clock()  # made just before the first fit: its time counts from here
        _notify(EvaluationStep("start", n_folds=self.n_folds, model=self.candidate, n_models=len(self.models)))

    def epochs(self, name: str) -> Callback:
        """A Lightning callback reporting each epoch of factory ``name``'s fits (and of the refit)."""
        return _EpochWatch(self, name)

    def epoch_done(self, name: str, epoch: int, max_epochs: int) -> None:
        """A neural fit finished ``epoch`` of at most ``max_epochs``."""
        now = self.clock()
        seconds, self._epoch_mark = now - self._epoch_mark, now
        self._epoch_seconds.append(seconds)
        per_epoch = sum(self._epoch_seconds) / len(self._epoch_seconds)
        if self._refit_epochs:
            eta = per_epoch * (max_epochs - epoch)
            _notify(
                EvaluationStep(
                    "epoch", model=self.candidate, epoch=epoch, max_epochs=max_epochs, seconds=seconds, eta_s=eta
                )
            )
            return
        self._running = (now - self._last) + per_epoch * (max_epochs - epoch)
        fold, index = divmod(self._done, len(self.models))
        eta = per_epoch * (max_epochs - epoch) + self._left(fold, index)
        shown = self.candidate if name == "model" else name
        _notify(EvaluationStep(
            "epoch", fold, self.n_folds, shown, index, len(self.models), epoch, max_epochs, seconds=seconds, eta_s=eta
        ))  # fmt: skip

    def fold_done(self, name: str, fold: int, metrics: dict[str, float]) -> None:
        """walkforward.backtest's ``on_fold``: ``name`` finished test fold ``fold``."""
        now = self.clock()
        seconds, self._last, self._epoch_mark = now - self._last, now, now
        self._seconds.setdefault(name, []).append(seconds)
        self._done += 1
        index = self.models.index(name)
        shown = self.candidate if index == 0 else name
        score = self.describe(metrics)
        eta = self._left(fold, index)
        _notify(
            EvaluationStep(
                "fold", fold, self.n_folds, shown, index, len(self.models), score=score, seconds=seconds, eta_s=eta
            )
        )

    def refit_started(self, epochs: int) -> None:
        """The refit of the candidate for ``epochs`` epochs begins."""
        self._refit_epochs = epochs
        self._last = self._epoch_mark = self.clock()
        eta = self._refit_estimate()
        _notify(EvaluationStep("refit", model=self.candidate, max_epochs=epochs, eta_s=eta))

    def refit_done(self) -> None:
        """The refit finished."""
        _notify(EvaluationStep("refitted", model=self.candidate, seconds=self.clock() - self._last))

    def _left(self, fold: int, index: int) -> float:
        """The fits after model ``index`` of fold ``fold``, and the refit."""
        left = self.models[index + 1 :] + self.models * (self.n_folds - fold - 1)
        return sum(self._mean(n) for n in left) + self._refit_estimate()

    def _refit_estimate(self) -> float:
        if self._refit_epochs and self._epoch_seconds:
            return sum(self._epoch_seconds) / len(self._epoch_seconds) * self._refit_epochs
        return self._mean("model")

    def _mean(self, name: str) -> float:
        """A fit's expected seconds: its own mean, else the mean of its kind (neural or baseline)."""
        neural = name in _NEURAL
        times = self._seconds.get(name) or [
            t for n, ts in self._seconds.items() if (n in _NEURAL) == neural for t in ts
        ]
        if times:
            return sum(times) / len(times)
        return self._running if neural else 0.0


class _EpochWatch(Callback):
    """Reports each finished training epoch of one factory's neural fits to the reporter."""

    def __init__(self, reporter: EvaluationReporter, name: str) -> None:
        self.reporter, self.name = reporter, name

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Lightning's hook: ``current_epoch`` is 0-based, so the epochs done are one more."""
        self.reporter.epoch_done(self.name, trainer.current_epoch + 1, int(trainer.max_epochs or 0))
