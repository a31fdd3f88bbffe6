"""One command that runs flows, as a user sees it: short lines on the terminal, everything else in a log file.

A pipeline run passes through Prefect, Lightning, MLflow, Optuna and GX, each with its own console
output; a failure deep inside prints hundreds of lines of tracebacks, once per flow level. Here a
command's flows run with the process's stdout and stderr (file descriptors 1 and 2, so subprocesses
and C libraries too) sent to ``<state>/logs/<command>-<time>.log``, while the user's terminal gets:

- progress lines (``terminal``: stage and sweep lines, see deployments/progress.py);
- on a failure, at most three lines: the error, its detail, where the full log and traceback are;
- on SIGINT or SIGTERM, one line; the flows are told they crashed, the Prefect server is stopped
  (deployments/local_prefect.py), and the command exits 130 or 143.

``--debug`` keeps every library's output on the terminal and lets the traceback through.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from candlecast.settings import Settings

T = TypeVar("T")
EXIT_FAILED = 1
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Session:
    """What a command's body gets: where to print progress and where the log is."""

    log_path: Path
    terminal: Console
    debug: bool = False
    caught: list[int] = field(default_factory=list)  # the signals received, first first


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: unwinds like Ctrl-C, so every ``finally`` (MLflow, Optuna, Prefect) runs."""


def log_file(settings: Settings, command: str) -> Path:
    """A fresh log file for one command: ``<state>/logs/<command>-<YYYYmmdd-HHMMSS>.log``."""
    folder = settings.root / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{command}-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"


@contextlib.contextmanager
def _signals_interrupt(caught: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread; the previous handlers come back after."""

    def handler(signum: int, frame: object) -> None:
        caught.append(signum)
        if len(caught) == 1:
            raise Interrupted(signal.Signals(signum).name)

    if sys.platform == "win32" or _not_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in _SIGNAL_EXIT}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _not_main_thread() -> bool:
    import threading

    return threading.current_thread() is not threading.main_thread()


@contextlib.contextmanager
def _output_to(log_path: Path, debug: bool) -> Iterator[TextIO]:
    """Send fds 1 and 2 to the log (children inherit it); yields a stream to the real stderr."""
    if debug or not _real_fds():
        yield sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield terminal
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        terminal.close()


def _real_fds() -> bool:
    """sys.stdout and sys.stderr write to fds 1 and 2 (not so under pytest's CliRunner: nothing to redirect)."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, OSError):
        return False


def run_session(command: str, body: Callable[[Session], T], debug: bool = False) -> T:
    """Run ``body`` with flows reporting to a Prefect API, output in a log file, signals as one clean line.

    Returns what ``body`` returns. Raises typer.Exit: 1 for a failure (the error in at most three lines,
    the traceback in the log), 3 for an unreadable store file, 130/143 for SIGINT/SIGTERM.
    """
    from candlecast.deployments.local_prefect import prefect_api

    settings = Settings()
    path = log_file(settings, command)
    os.environ.setdefault("CANDLECAST_DATA_DOCS_URL", data_docs_url(settings))
    caught: list[int] = []
    try:
        with _signals_interrupt(caught), _output_to(path, debug) as stream:
            session = Session(path, Console(file=stream, stderr=True, highlight=False), debug, caught)
            try:
                with prefect_api(settings):
                    return body(session)
            except typer.Exit:
                raise
            except BaseException:
                _append_traceback(path)
                raise
    except typer.Exit:
        raise
    except BaseException as exc:
        if caught:
            raise _interrupted(command, caught[0], path) from None
        if debug or not isinstance(exc, Exception):
            raise
        raise _failed(exc, path) from None


def data_docs_url(settings: Settings) -> str:
    """Where the Data Docs links in Prefect artifacts point: the stack's site if it runs, else its default port.

    A run made before `candlecast up` gets links that open once the stack serves the site.
    """
    from candlecast.deployments import stack
    from candlecast.io import read_json

    state = settings.root / "stack"
    if stack.running(state, "data-docs") is not None:
        url = (read_json(state / "data-docs.json") or {}).get("url") or ""
        return url.removesuffix("/index.html")
    return stack.StackConfig().docs_url or ""


def _append_traceback(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as out:
        out.write("\n--- candlecast: the command ended with ---\n" + traceback.format_exc())


def _interrupted(command: str, signum: int, path: Path) -> typer.Exit:
    sig = signal.Signals(signum)
    name = sig.name
    resume = "; run it again to resume (finished sweep trials are kept)" if command == "run" else ""
    _say(f"[yellow]interrupted[/yellow] ({name}): candlecast {command} stopped{resume}. Log: {escape(str(path))}")
    return typer.Exit(_SIGNAL_EXIT.get(sig, 130))


def _failed(exc: Exception, path: Path) -> typer.Exit:
    """The error in at most three lines: what failed, one more line of detail, where the rest is."""
    from candlecast.data.candle_store import CorruptPartition

    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    label = "corrupt store" if isinstance(exc, CorruptPartition) else "error"
    _say(f"[red]{label}:[/red] {escape(lines[0])}")
    if len(lines) > 1:
        more = f" (+{len(lines) - 2} more lines in the log)" if len(lines) > 2 else ""
        _say(f"  {escape(lines[1])}{more}")
    _say(f"full log and traceback: {escape(str(path))} (or run again with --debug)")
    from candlecast.deployments.commands.common import EXIT_CORRUPT_STORE

    return typer.Exit(EXIT_CORRUPT_STORE if isinstance(exc, CorruptPartition) else EXIT_FAILED)


def _say(line: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(line)
