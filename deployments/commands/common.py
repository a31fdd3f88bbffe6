"""What every command shares: the console, offline defaults and config loading with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from candlecast.config import RunConfig

console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="run config YAML (default: built-in offline defaults)")
]


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A table that stays readable at any width: rich on a terminal, plain markdown when piped.

    Rich fits a table to the terminal by cutting cells ("nai…"); a pipe or a file gets every cell whole.
    """
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    lines = [title, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    typer.echo("\n".join(lines))


def offline_defaults() -> None:
    """Quiet telemetry and route candlecast's logs into Prefect's run logs; the user's settings win."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "candlecast")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def load_config(path: Path | None) -> RunConfig:
    """The run config, or exit 2 with a message naming the bad file or key."""
    from candlecast.config import RunConfig

    try:
        return RunConfig.from_yaml(path) if path else RunConfig()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
