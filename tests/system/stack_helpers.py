"""Helpers of tests/system/test_stack.py: the exogenous file it writes, cron matching, processes below a pid."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path


def descendants(pid: int) -> list[str]:
    """The command lines of every process below ``pid`` (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        todo += parents.get(child, [])
        with contextlib.suppress(OSError):
            found.append((Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def write_daily_index(path: Path, days: int) -> None:
    """A daily index (timestamp ms, value) from ``days`` ago to tomorrow: the exogenous file of the config."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stamps = [int((today - timedelta(days=d)).timestamp() * 1000) for d in range(days, -2, -1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(f"{t},{(i * 37) % 100}\n" for i, t in enumerate(stamps)))


def cron_matches(cron: str, when: datetime) -> bool:
    """Enough of cron for our schedules: each field is '*' or a number (minute hour day month weekday, 0=Sunday)."""
    fields = (when.minute, when.hour, when.day, when.month, (when.weekday() + 1) % 7)
    return all(f == "*" or int(f) == v for f, v in zip(cron.split(), fields, strict=True))
