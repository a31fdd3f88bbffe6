"""Ctrl-C and SIGTERM mid-sweep: one line, nothing left listening, and the next run resumes the sweep.

`candlecast run` must stop within its budget. The signals go to the command's whole process group,
as a terminal's Ctrl-C and a service manager's stop do. Before the fix SIGINT took 3.5 minutes and
~450 lines of tracebacks (Prefect's temporary server died first), and SIGTERM left that server
listening. The budget is the subprocess's timeout, not a measured speed claim: 30 s, three times the
10 s a user is promised, so a CI machine under load does not fail a correct shutdown, while the old
minutes-long one still fails.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
import yaml
from cli_helpers import start_cli  # tests/cli/ is on sys.path (pytest's rootdir import mode)

# two `candlecast run`s, each with its own Prefect server: minutes on a busy CI machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

INTERRUPT_BUDGET_S = 30
N_TRIALS = 3
TINY = {
    "name": "interrupts",
    "data": {"symbols": ["BTC/USDT"], "history_days": 60},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": N_TRIALS, "max_epochs": 2, "pruner": "none"},
    "train": {"max_epochs": 1, "batch_size": 128},  # the final fit, after the interrupts: plumbing only
}


class Lines:
    """A subprocess's stderr, line by line, read on a thread so waiting for a line has a deadline."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(process.stderr,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"never saw {text!r}; stderr so far:\n" + "\n".join(self.seen))

    def rest(self) -> list[str]:
        out = []
        while (line := self._queue.get(timeout=30)) is not None:
            out.append(line)
        return out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _group_gone(pgid: int, timeout_s: float = 10) -> bool:
    """The process group is empty (a helper such as multiprocessing's resource tracker leaves on its own EOF)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _interrupt(home: Path, config: Path, sig: signal.Signals, at: str) -> list[str]:
    """Start a run, send ``sig`` to its process group once ``at`` shows, check how it ends; returns its stderr."""
    process = start_cli(home, "run", "--config", str(config))
    lines = Lines(process)
    lines.wait_for(at, timeout_s=900)
    server = json.loads((home / "prefect" / "server.json").read_text())  # the private Prefect server of the run
    os.killpg(process.pid, sig)
    process.wait(timeout=INTERRUPT_BUDGET_S)
    after = [line for line in lines.rest() if line.strip()]
    stdout = process.stdout.read()
    assert process.returncode == 128 + sig, (process.returncode, after, stdout)
    assert len(after) == 1 and after[0].startswith(f"interrupted ({sig.name})"), after
    assert "Traceback" not in "\n".join(lines.seen + after) + stdout
    assert _group_gone(process.pid), "a process of the command's group outlived it"
    with pytest.raises(ProcessLookupError):
        os.kill(server["pid"], 0)
    assert not _listening(int(server["api_url"].split(":")[-1].split("/")[0]))
    return lines.seen + after


def test_sigint_then_sigterm_mid_sweep_stop_cleanly_and_the_sweep_resumes(tmp_path, still_market):
    market = still_market(TINY["data"]["symbols"], TINY["data"]["history_days"])
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY | {"exchange": {"emulator": False, "api_url": market.url}}))
    home = tmp_path / "state"

    _interrupt(home, config, signal.SIGINT, at=f"trial 2/{N_TRIALS} started")
    assert (home / "prefect" / "prefect.db").exists(), "Prefect's database lives in the state folder"
    second = _interrupt(home, config, signal.SIGTERM, at=f"trial 3/{N_TRIALS} started")
    assert any(f"resumed: 1 of {N_TRIALS}" in line for line in second), second

    # Each run resumed where the one before stopped: a trial each run finished is kept, the interrupted
    # ones are failed, so the next run tries them again. SIGTERM may leave its trial RUNNING: it stops
    # beating, and the next run's heartbeat check fails it (sweep._storage; a 1 s grace here for the test).
    # A third run to the end would add a final fit and a promotion, which tests/flows cover.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(f"sqlite:///{home / 'optuna.db'}", heartbeat_interval=1, grace_period=1)
        (summary,) = optuna.get_all_study_summaries(storage)
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        time.sleep(2)
        optuna.storages.fail_stale_trials(study)
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL"], states
