"""What `candlecast run` shows while it works: one line per finished step, and the sweep's progress.

The flows' own logs go to the Prefect UI and the command's log file (deployments/session.py); the
terminal gets a short story instead:

    12:03:40  ingest       fetch ✓  validate-binance_BTC-USDT_1h ✓  store-binance_BTC-USDT_1h ✓
    12:04:06  sweep        trial 2/5 · fold 1/1 · epoch 3/6 · best rmse_ratio 0.9965 · ETA 3m10s
    12:06:30  evaluate  fold 1/2 · model 3/6 drift · RMSE/naive 1.0012  coverage 0.801 · 0 s · ETA 1m05s

On a terminal the sweep is one live bar (rich, on stderr); piped or in a log, each trial start and
end is a plain line, so a CI log shows the sweep moving without a bar's control codes. The
evaluation that follows prints one line per fitted fold model and one for the refit, with an ETA.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: A default Prefect task-run name ends in "-" and three hex digits ("fetch-dda"): the task's name is the rest.
_RUN_SUFFIX = re.compile(r"-[0-9a-f]{3}$")
_FINISHED = "Finished in state "


def step_name(record: logging.LogRecord) -> str:
    """The readable name of a task run: its own name when it has one ("validate-<series>"), else the task's."""
    name = str(getattr(record, "task_run_name", "") or "")
    return _RUN_SUFFIX.sub("", name) or str(getattr(record, "task_name", "task"))


def flow_label(record: logging.LogRecord) -> str:
    """``candlecast-train`` -> ``train``: the flows share the prefix, the rest says what each does."""
    return str(getattr(record, "flow_name", "") or "flow").removeprefix("candlecast-")


class RunDisplay(logging.Handler):
    """Stage lines from Prefect's run logs, and the sweep's progress from candlecast's listeners."""

    def __init__(self, console: Console, muted: list | None = None) -> None:
        super().__init__(level=logging.INFO)
        self.console = console
        self.muted = muted if muted is not None else []  # non-empty once interrupted: the last line is the session's
        self.live = console.is_terminal
        self._bar: tuple[Progress, TaskID] | None = None  # the live sweep bar and its one task

    def emit(self, record: logging.LogRecord) -> None:
        """A flow or task run finished: one line, green when completed, red otherwise."""
        try:
            message = record.getMessage()
            if not message.startswith(_FINISHED):
                return
            state = message.removeprefix(_FINISHED).split("(", 1)[0]
            if state == "Crashed":  # a signal or an interrupt: the session's own last line says so, once
                return
            if hasattr(record, "task_run_name"):
                what = f"{flow_label(record):<9} {step_name(record)}"
            else:
                what = f"{flow_label(record):<9} (flow)"
            color = "green" if state == "Completed" else "red"
            self._line(f"{what}  [{color}]{escape(state.lower())}[/{color}]")
        except Exception:  # a display must never break a run
            self.handleError(record)

    def sweep(self, step) -> None:
        """One step of the sweep (candlecast.registry.sweep_progress.SweepProgress)."""
        from candlecast.registry.sweep_progress import format_eta

        best = f"best {step.metric} {step.best:.4f}" if step.best is not None else f"best {step.metric} -"
        where = f"trial {step.trial}/{step.n_trials} · fold {step.fold + 1}/{step.n_folds}"
        epoch = f"epoch {step.epoch}/{step.max_epochs}"
        text = f"{where} · {epoch} · {best} · {format_eta(step.eta_s)}"
        if step.event == "resumed":
            self._line(f"{'sweep':<9} resumed: {step.trial} of {step.n_trials} trials already finished · {best}")
        elif self.live:
            self._show_bar(step, text)
        elif step.event == "trial_start":
            self._line(f"{'sweep':<9} trial {step.trial}/{step.n_trials} started · {best} · {format_eta(step.eta_s)}")
        elif step.event == "trial_end":
            value = f"{step.metric} {step.value:.4f}" if step.value is not None else "no score"
            self._line(f"{'sweep':<9} trial {step.trial}/{step.n_trials} {step.state} ({value}) · {best}")
        if step.event == "trial_end" and step.trial >= step.n_trials:
            self.close_bar()

    def evaluation(self, step) -> None:
        """One step of the evaluation (candlecast.registry.eval_progress.EvaluationStep): always a plain line."""
        self.close_bar()
        self._line(f"{'evaluate':<9} {escape(step.line())}")

    def _show_bar(self, step, text: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        if self._bar is None:
            bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                console=self.console, transient=False,
            )  # fmt: skip
            bar.start()
            self._bar = (bar, bar.add_task("sweep", total=step.n_trials, detail=""))
        bar, task = self._bar
        done = step.trial - (0 if step.event == "trial_end" else 1)
        bar.update(task, completed=done, detail=escape(text))

    def close_bar(self) -> None:
        """Stop the live bar, leaving its last state on screen."""
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None

    def _line(self, text: str) -> None:
        if self.muted:
            return
        self.console.print(f"[dim]{datetime.now():%H:%M:%S}[/dim]  {text}", soft_wrap=True)


@contextlib.contextmanager
def showing_progress(console: Console, muted: list | None = None) -> Iterator[RunDisplay]:
    """Show stage lines and the sweep's progress on ``console`` while the block runs, until ``muted`` fills."""
    from candlecast.registry import eval_progress, sweep_progress

    display = RunDisplay(console, muted)
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(display)
    try:
        with sweep_progress.listening(display.sweep), eval_progress.listening(display.evaluation):
            yield display
    finally:
        display.close_bar()
        for logger in loggers:
            logger.removeHandler(display)
