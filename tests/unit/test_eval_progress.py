"""The evaluation's progress lines: one per fitted fold model and the refit, with an ETA from this run's own fits."""

from __future__ import annotations

import io

from rich.console import Console

from candlecast.deployments.progress import showing_progress
from candlecast.registry.eval_progress import EvaluationReporter


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_fold_fit_and_the_refit_print_a_line_with_an_eta():
    clock, out = Clock(), io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    with showing_progress(console):
        reporter = EvaluationReporter(
            ["model", "naive", "drift"], "lstm", 2, lambda m: f"RMSE/naive {m['r']:.2f}", clock
        )
        for fold, seconds in ((0, (10, 1, 1)), (1, (14, 1, 1))):
            for name, took in zip(["model", "naive", "drift"], seconds, strict=True):
                clock.now += took
                reporter.fold_done(name, fold, {"r": 0.99})
        reporter.refit_started(epochs=7)
        clock.now += 9
        reporter.refit_done()
    lines = [line.split("  ", 1)[1] for line in out.getvalue().splitlines()]
    assert (
        lines[0] == "evaluate  fold 1/2 · model 1/3 lstm · RMSE/naive 0.99 · 10 s · ETA 1m00s"
    )  # 5 fits and the refit at 10 s
    assert (
        lines[2] == "evaluate  fold 1/2 · model 3/3 drift · RMSE/naive 0.99 · 1 s · ETA 0m22s"
    )  # 10 + 1 + 1, refit 10
    assert (
        lines[5] == "evaluate  fold 2/2 · model 3/3 drift · RMSE/naive 0.99 · 1 s · ETA 0m12s"
    )  # the refit: mean lstm fit
    assert lines[6] == "evaluate  refit lstm on every candle to the cutoff, 7 epochs · ETA 0m12s"
    assert lines[7] == "evaluate  refitted lstm in 9 s"
    assert len(lines) == 8


def test_a_display_that_is_gone_hears_nothing():
    clock, out = Clock(), io.StringIO()
    with showing_progress(Console(file=out, width=200)):
        pass
    EvaluationReporter(["model"], "lstm", 1, str, clock).fold_done("model", 0, {})
    assert out.getvalue() == ""
