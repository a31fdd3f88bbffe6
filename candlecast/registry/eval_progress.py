"""Progress of the evaluation and the refit: one step per fitted fold model, then the refit, with an ETA.

The evaluation refits the chosen model, every baseline and the champion's configuration on each test
fold, then the model once more on every candle (the refit): minutes with no sweep bar to watch. Like
the sweep's (candlecast.registry.sweep_progress), each step is logged on this module's logger (the
Prefect UI's run logs) and passed to the listeners this process registered with ``listening(fn)``.

The ETA sums, over the fits still to come, the mean time this run took for that model (the overall
mean for one not seen yet), plus the refit, estimated from the model's own fold fits.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from candlecast.registry.sweep_progress import format_eta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationStep:
    """One step of the evaluation, as a display shows it.

    Attributes:
        event: ``fold`` (one model finished one test fold), ``refit`` (the refit starts) or ``refitted``.
        fold, n_folds: The test fold just scored (0-based) and how many there are.
        model: The model that finished (``model`` is the candidate; the rest are baselines, ``champion``).
        index, n_models: Its place among the models of a fold (0-based) and how many there are.
        score: What it scored on that fold (the target's progress text), or the refit's epochs.
        seconds: How long that fit (or the refit) took.
        eta_s: Seconds until the refit is done, None when there is no estimate.
    """

    event: Literal["fold", "refit", "refitted"]
    fold: int = 0
    n_folds: int = 0
    model: str = ""
    index: int = 0
    n_models: int = 0
    score: str = ""
    seconds: float = 0.0
    eta_s: float | None = None

    def line(self) -> str:
        """The step as one plain line (the CLI prints it after the time and ``evaluate``)."""
        if self.event == "fold":
            where = f"fold {self.fold + 1}/{self.n_folds} · model {self.index + 1}/{self.n_models} {self.model}"
            return f"{where} · {self.score} · {self.seconds:.0f} s · {format_eta(self.eta_s)}"
        if self.event == "refit":
            return f"refit {self.model} on every candle to the cutoff, {self.score} · {format_eta(self.eta_s)}"
        return f"refitted {self.model} in {self.seconds:.0f} s"


Listener = Callable[[EvaluationStep], None]
_LISTENERS: list[Listener] = []


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send this process's evaluation steps to ``listener`` while the block runs."""
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


def _notify(step: EvaluationStep) -> None:
    log.info("evaluate: %s", step.line())
    for listener in list(_LISTENERS):
        try:
            listener(step)
        except Exception:  # a broken display must never stop an evaluation
            log.debug("progress listener failed", exc_info=True)


@dataclass
class EvaluationReporter:
    """Times each fold fit (walkforward.backtest's ``on_fold``) and the refit; reports each as a step."""

    models: list[str]  # the backtest's factory names, the candidate ("model") first
    candidate: str  # the candidate's architecture, shown in place of "model"
    n_folds: int
    describe: Callable[[dict[str, float]], str]  # the target's progress text of one fold's metrics
    clock: Callable[[], float] = time.monotonic
    _seconds: dict[str, list[float]] = field(default_factory=dict)
    _last: float = field(init=False)
    _refit_started: float = 0.0

    def __post_init__(self) -> None:
        self._last = self.clock()  # made just before the first fit: its time counts from here

    def fold_done(self, name: str, fold: int, metrics: dict[str, float]) -> None:
        """walkforward.backtest's ``on_fold``: ``name`` finished test fold ``fold``."""
        now = self.clock()
        seconds, self._last = now - self._last, now
        self._seconds.setdefault(name, []).append(seconds)
        index = self.models.index(name)
        left = self.models[index + 1 :] + self.models * (self.n_folds - fold - 1)
        eta = sum(self._mean(n) for n in left) + self._mean(self.models[0])
        shown = self.candidate if index == 0 else name
        score = self.describe(metrics)
        _notify(EvaluationStep("fold", fold, self.n_folds, shown, index, len(self.models), score, seconds, eta))

    def refit_started(self, epochs: int) -> None:
        """The refit of the candidate begins; its ETA is the candidate's mean fold fit."""
        self._refit_started = self.clock()
        eta = self._mean(self.models[0])
        _notify(EvaluationStep("refit", model=self.candidate, score=f"{epochs} epochs", eta_s=eta))

    def refit_done(self) -> None:
        """The refit finished."""
        _notify(EvaluationStep("refitted", model=self.candidate, seconds=self.clock() - self._refit_started))

    def _mean(self, name: str) -> float:
        times = self._seconds.get(name) or [t for ts in self._seconds.values() for t in ts]
        return sum(times) / len(times) if times else 0.0
