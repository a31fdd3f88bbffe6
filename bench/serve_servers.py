"""serve_load.py's servers: `mlflow models serve` or `candlecast serve-model` in a process group of its own.

Each starts on 127.0.0.1, answers /ping before it is driven, and is stopped with its workers on exit;
``cpu_seconds`` counts the CPU of a server's supervisor and workers together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psutil


@contextmanager
def server(kind: str, model_uri: str, workers: int, port: int, baseline: Path | None = None):
    """``mlflow models serve`` or ``candlecast serve-model`` on 127.0.0.1, its process group stopped on exit.

    ``baseline`` is serve-model from another checkout's venv (``--baseline-venv``): before and after, one run.
    """
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if kind == "mlflow":
        cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
        cmd += ["-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]
    else:
        name, alias = model_uri.removeprefix("models:/").split("@")
        candlecast = baseline / "bin" / "candlecast" if kind == "baseline" and baseline else bin_dir / "candlecast"
        cmd = [str(candlecast), "serve-model", "--model", name, "--alias", alias]
        cmd += ["--port", str(port), "--workers", str(workers), "--reload-seconds", "3600"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(port, proc, log)
        yield proc
    finally:
        _stop_group(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (the server's supervisor and workers)."""
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL it: uvicorn's supervisor may respawn workers."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _wait_ready(port: int, proc: subprocess.Popen, log, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no /ping answer on port {port} in {timeout_s} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
