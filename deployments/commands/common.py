"""What every command shares: the console, exit codes, one-line errors, tables, offline defaults, config loading.

Exit codes (the same for every command): 0 done; 1 the work failed or the data was refused (the
message says which); 2 bad input, a usage error; 3 a file of the store is unreadable
(``EXIT_CORRUPT_STORE``: `candlecast store repair SERIES`); 130 and 143 interrupted by SIGINT and SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from candlecast.config import RunConfig

# soft_wrap: a message is one line however narrow the terminal (rich would break it mid-path or mid-command,
# and a pasted hint or a grep of the output would then fail); tables lay themselves out (print_table)
console = Console(soft_wrap=True)

#: `--help` on a pipe: rich would fit it to 80 columns (or COLUMNS) and cut option names ("--da…");
#: a pipe has no width, so lay the help out this wide. A TERMINAL_WIDTH the user set wins.
PIPED_HELP_WIDTH = 160
if not console.is_terminal and not os.environ.get("TERMINAL_WIDTH"):
    import typer.rich_utils

    typer.rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH

#: A data file of the store cannot be read; distinct from 1 (refused data) and 2 (bad input).
EXIT_CORRUPT_STORE = 3

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="run config YAML (default: the one recorded in the state folder; a new state: built-in offline defaults)",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead of tables")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` (markup-safe, never wrapped mid-word by rich) and return the Exit to raise.

    Usage: ``raise fail("no such file")``. Brackets in the message (``[critical]``) are printed as they are.
    """
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: <message>`` on one line: the command goes on (rows of the input were left out)."""
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True, highlight=False)


def corrupt_store(exc: Exception) -> typer.Exit:
    """One line naming the unreadable file and the repair, and the exit code that means it."""
    console.print(f"[red]corrupt store:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
    return typer.Exit(EXIT_CORRUPT_STORE)


def print_table(title: str, header: list[str], rows: list[list[str]], left: int = 1) -> None:
    """A table that stays readable at any width: rich on a terminal, plain markdown when piped.

    Rich fits a table to the terminal by folding cells, never cutting them ("nai…"); a pipe or a file
    gets every cell whole, one row per line, so `| cat`, `grep` and a markdown viewer all work. The
    first ``left`` columns (names, times) are left-aligned on a terminal, the numbers after them right.
    """
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i < left else "right", overflow="fold")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table, soft_wrap=False)
        return
    lines = [title, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    typer.echo("\n".join(lines))


def print_json(value: Any) -> None:
    """JSON on stdout, for scripts: timestamps and paths as strings, never a rich-wrapped line."""
    typer.echo(json.dumps(value, indent=2, default=str))


def command_hint(command: str) -> str:
    """How to type a candlecast command from here: bare when `candlecast` is on PATH, else the venv's path.

    A printed hint must work when pasted: with the venv not activated, `candlecast status` is "command
    not found", so the hint names the program this process runs from.
    """
    import shutil

    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("candlecast")
    if program is None or program.name != "candlecast" or (on_path and Path(on_path).resolve() == program.resolve()):
        return f"candlecast {command}"
    try:
        shown = program.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = program.resolve()
    return f"{shown} {command}"


def venv_program(name: str) -> str:
    """Another program of this environment (mlflow, optuna-dashboard), by a path that works when pasted."""
    import shutil

    local = Path(sys.executable).parent / name
    if not local.exists() or shutil.which(name) == str(local):
        return name
    try:
        return str(local.relative_to(Path.cwd()))
    except ValueError:
        return str(local)


def offline_defaults() -> None:
    """Quiet telemetry and route candlecast's logs into Prefect's run logs; the user's settings win."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "candlecast")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


#: The run config a state folder was made with, recorded by its first `run` or `ingest` (resolved paths).
STATE_CONFIG = "config.yaml"


def load_config(path: Path | None, strict: bool = True) -> RunConfig:
    """The run config, or exit 2 with one line naming the bad file or key.

    Without --config: the config recorded in the state folder; else the built-in defaults while the
    state holds no candles. A state with candles and no record is refused (its series came from some
    config, and the defaults' market would be mixed into them), unless not ``strict``: a command that
    only reads or reports (status, models, the backtests), or whose flags name the source (--api-url).
    """
    from candlecast.config import RunConfig
    from candlecast.settings import Settings

    home = Settings().root
    recorded = home / STATE_CONFIG
    try:
        if path:
            return RunConfig.from_yaml(path, home)
        if recorded.is_file():
            return RunConfig.from_yaml(recorded, home)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if strict and holds_candles(home):
        raise fail(
            f"the state folder {home} holds candles but records no config ({STATE_CONFIG}): pass the config that "
            "made them with --config FILE (a `run` or `ingest` with it records it for the next commands)"
        )
    return RunConfig()


def holds_candles(home: Path) -> bool:
    """Whether the state folder's candle store has any file (a state made by some config, not a new one)."""
    candles = home / "candles"
    return candles.is_dir() and any(p.is_file() for p in candles.rglob("*"))


def record_config(cfg: RunConfig) -> None:
    """Record ``cfg`` as the state folder's config when it has none yet (atomically), for commands without --config."""
    from candlecast.io import write_text
    from candlecast.settings import Settings

    home = Settings().root
    target = home / STATE_CONFIG
    if target.exists():
        return
    header = (
        "# The run config this state folder was made with, recorded by candlecast; commands run here without\n"
        "# --config use it. ${CANDLECAST_HOME} is the state folder.\n"
    )
    write_text(header + cfg.to_yaml(home), target)
