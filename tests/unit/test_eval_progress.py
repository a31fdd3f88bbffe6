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


def test_each_epoch_fold_fit_and_the_refit_print_a_line_with_an_eta():
    """The candidate early-stops after 2 of at most 4 epochs of 5 s, naive takes 1 s, the champion 2 epochs of 4 s."""
    clock, out = Clock(), io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)

    def tick(seconds: float) -> None:
        clock.now += seconds

    with showing_progress(console):
        reporter = EvaluationReporter(
            ["model", "naive", "champion"], "lstm", 2, lambda m: f"RMSE/naive {m['r']:.2f}", clock
        )
        for fold in (0, 1):
            for epoch in (1, 2):
                tick(5), reporter.epoch_done("model", epoch, 4)
            reporter.fold_done("model", fold, {"r": 0.9})
            tick(1), reporter.fold_done("naive", fold, {"r": 1.0})
            for epoch in (1, 2):
                tick(4), reporter.epoch_done("champion", epoch, 4)
            reporter.fold_done("champion", fold, {"r": 0.95})
        reporter.refit_started(epochs=2)
        tick(6), reporter.epoch_done("model", 1, 2)
        tick(6), reporter.refit_done()
    lines = [line.split("  ", 1)[1].removeprefix("evaluate  ") for line in out.getvalue().splitlines()]
    assert lines[0] == "3 models on 2 test fold(s), then the refit of lstm"
    # 3 epochs left at 5 s; 4 fits and the refit each guessed at this fit's projected 20 s (naive: nothing seen yet)
    assert lines[1] == "fold 1/2 · model 1/3 lstm · epoch 1/4 · 5 s an epoch · ETA 1m35s"
    # the neural fits now at the candidate's 10 s, naive at 0: champion, lstm, champion and the refit
    assert lines[3] == "fold 1/2 · model 1/3 lstm · RMSE/naive 0.90 · 10 s · ETA 0m40s"
    assert lines[4] == "fold 1/2 · model 2/3 naive · RMSE/naive 1.00 · 1 s · ETA 0m41s"
    assert lines[5] == "fold 1/2 · model 3/3 champion · epoch 1/4 · 4 s an epoch · ETA 0m45s"
    assert lines[7] == "fold 1/2 · model 3/3 champion · RMSE/naive 0.95 · 8 s · ETA 0m29s"
    assert (
        lines[14] == "fold 2/2 · model 3/3 champion · RMSE/naive 0.95 · 8 s · ETA 0m10s"
    )  # the refit: a candidate fit
    assert lines[15] == "refit lstm on every candle to the cutoff for 2 epoch(s) · ETA 0m09s"  # 2 epochs x 4.5 s
    assert lines[16] == "refit lstm · epoch 1/2 · 6 s an epoch · ETA 0m05s"
    assert lines[17] == "refitted lstm in 12 s"
    assert len(lines) == 18


def test_a_display_that_is_gone_hears_nothing():
    clock, out = Clock(), io.StringIO()
    with showing_progress(Console(file=out, width=200)):
        pass
    EvaluationReporter(["model"], "lstm", 1, str, clock).fold_done("model", 0, {})
    assert out.getvalue() == ""


def test_listeners_get_steps_only_inside_the_block_and_a_broken_one_stops_nothing():
    from candlecast.registry.sweep_progress import Listeners

    channel: Listeners[int] = Listeners()
    seen: list[int] = []

    def broken(step: int) -> None:
        raise RuntimeError("display died")

    with channel.listening(broken), channel.listening(seen.append):
        channel.notify(1)
    channel.notify(2)
    assert seen == [1]
