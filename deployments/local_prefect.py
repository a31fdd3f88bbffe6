"""The Prefect API a CLI command's flows report to: the user's server, the stack's, or a private one.

Prefect's own temporary server (what a flow starts when no API is configured) runs in the caller's
process group and keeps its database in ``~/.prefect``: Ctrl-C kills it before the flow has said
it was interrupted (minutes of connection-error tracebacks), SIGTERM leaves it listening, and every
checkout on the machine shares its runs. Here, in that order:

1. ``PREFECT_API_URL`` (or a Prefect profile) names a server: use it;
2. `candlecast up` runs a server for this state folder: use it, so the runs show in its UI;
3. otherwise start a private server like Prefect's temporary one, but in its own session (a signal
   to the command's group never reaches it), on ``PREFECT_HOME`` (``<state>/prefect`` by default,
   the database `candlecast up` serves), logging to ``<state>/logs``; it is stopped once the flow's
   logs and events are flushed, and on Linux the kernel stops it if the command dies unannounced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from candlecast.io import read_json, write_json
from candlecast.settings import Settings

#: Written while a private server runs: its pid and URL, for `candlecast status`, tests and a curious user.
SERVER_FILE = "server.json"
DEFAULT_STARTUP_TIMEOUT_S = 120.0  # a fresh database migrates first; a loaded laptop needs the margin
_PORT_IN_USE_EXIT = 3  # uvicorn's exit code when the port was taken between choosing and binding it


class PrefectStartError(RuntimeError):
    """The private Prefect server did not come up; the message names its log."""


def prefect_home(settings: Settings) -> Path:
    """Prefect's home for this state folder: the user's PREFECT_HOME, else ``<state>/prefect``."""
    return Path(os.environ.get("PREFECT_HOME") or settings.root / "prefect").expanduser()


def stack_api_url(settings: Settings) -> str | None:
    """The API of the Prefect server `candlecast up` runs for this state folder, if it runs."""
    from candlecast.deployments import stack

    state = settings.root / "stack"
    if stack.running(state, "prefect-server") is None:
        return None
    info = read_json(state / "prefect-server.json") or {}
    return info.get("api_url") or (f"{info['url']}/api" if info.get("url") else None)


@dataclass
class PrivateServer:
    """A Prefect API server for one command, in its own session, on this state folder's database."""

    home: Path
    log: Path
    process: subprocess.Popen | None = None
    port: int | None = None

    @property
    def api_url(self) -> str:
        """Where the flows of this process report to, once started."""
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout_s: float | None = None) -> PrivateServer:
        """Start it and wait until ``/api/health`` answers; raises PrefectStartError naming the log."""
        from candlecast.deployments import stack

        self.home.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        limit = timeout_s or float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 0)
        deadline = time.monotonic() + max(limit, DEFAULT_STARTUP_TIMEOUT_S)
        process = self._spawn(stack.free_port())
        while not stack.healthy(f"{self.api_url}/health", timeout=1.0):
            code = process.poll()
            if code == _PORT_IN_USE_EXIT:
                process = self._spawn(stack.free_port())
            elif code is not None or time.monotonic() > deadline:
                why = f"exited with {code}" if code is not None else f"did not answer within {limit:.0f} s"
                self.stop()
                raise PrefectStartError(f"the local Prefect server {why}; its log: {self.log}")
            time.sleep(0.2)
        write_json({"pid": process.pid, "api_url": self.api_url}, self.home / SERVER_FILE)
        return self

    def _spawn(self, port: int) -> subprocess.Popen:
        """Start the server on ``port``; it is also ``self.process`` (``stop`` ends it)."""
        self.port = port
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",  # API only, no scheduler or other services: what a flow run needs
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_stop_with_parent,
            )
        self.process = process
        return process

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM its session, SIGKILL after ``grace_s``; always reaped, its server file removed."""
        process, self.process = self.process, None
        (self.home / SERVER_FILE).unlink(missing_ok=True)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _stop_with_parent() -> None:
    """In the child before exec (Linux): the kernel sends SIGTERM when the command that started it dies."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def configured_api_url() -> str | None:
    """The server the user configured (PREFECT_API_URL or the active profile), if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


@contextlib.contextmanager
def prefect_api(settings: Settings) -> Iterator[str]:
    """Point this process's flows at a Prefect API for the duration (see the module docstring); yields its URL."""
    url = configured_api_url()
    if url:
        yield url
        return
    url = stack_api_url(settings)
    server = None
    if url is None:
        server = PrivateServer(prefect_home(settings), settings.root / "logs" / "prefect-server.log").start()
        url = server.api_url
    try:
        with _pointed_at(url):
            try:
                yield url
            finally:
                _flush_to_server()
    finally:
        if server is not None:
            server.stop()


@contextlib.contextmanager
def server_api(settings: Settings) -> Iterator[str | None]:
    """For commands that need a real server (deploy, serve): the configured one, else the stack's; None if neither."""
    url = configured_api_url()
    if url:
        yield url
        return
    url = stack_api_url(settings)
    if url is None:
        yield None
        return
    with _pointed_at(url):
        yield url


@contextlib.contextmanager
def _pointed_at(url: str) -> Iterator[None]:
    """Flows, tasks and their background workers in this process talk to ``url`` (as prefect_test_harness does)."""
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}):
        with _temporary_global_settings_context(get_settings_context()):
            yield


def _flush_to_server(timeout_s: float = 5.0) -> None:
    """Send the run logs and events still queued, while the server still listens (never raises)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout_s)
