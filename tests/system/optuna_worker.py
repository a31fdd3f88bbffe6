"""One Optuna worker process: joins an existing study on a shared RDB storage and runs N trials.

Run by tests/system/test_stack.py as two concurrent processes; each trial records which worker ran it.
"""

from __future__ import annotations

import sys
import time

import optuna


def value(x: float, y: int) -> float:
    return (x - 1) ** 2 + (y - 3) ** 2


def main(storage: str, study_name: str, n_trials: int, worker: str) -> None:
    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)
        x, y = trial.suggest_float("x", -5, 5), trial.suggest_int("y", 0, 10)
        time.sleep(0.02)  # long enough for the two workers' trials to interleave
        return value(x, y)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.load_study(study_name=study_name, storage=storage).optimize(objective, n_trials=n_trials)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
