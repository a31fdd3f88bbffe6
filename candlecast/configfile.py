"""Reading a config file: YAML to a mapping, paths to absolute ones, pydantic errors to one line.

A leaf with no candlecast imports, shared by the run config and the trading config, so both say
what is wrong with a file in the same words: one line naming the file and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

#: The one variable a config path may start with: the state folder (CANDLECAST_HOME, resolved).
HOME_VARIABLE = "${CANDLECAST_HOME}"
#: Errors shown of a failed validation; the rest are counted ("and 4 more").
SHOWN_ERRORS = 3


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping a YAML file holds; a ValueError of one line naming the file and the fix otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist: check the path") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a folder: name a YAML file") from None
    except OSError as exc:
        raise ValueError(f"{what} {path} cannot be read ({exc.strerror}): check its permissions") from None
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not a text file (binary data): name a YAML file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {path} is not valid YAML ({_yaml_problem(exc)}): fix that line") from None
    if raw is None:
        raise ValueError(f"{what} {path} is empty: write its settings (see configs/demo.yaml) or name another file")
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else f"a {type(raw).__name__}"
        raise ValueError(f"{what} {path} holds {kind}, not a mapping of sections (`name: ...`, `data: ...`)")
    return raw


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """'line 3: mapping values are not allowed here', from PyYAML's multi-line message."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def resolve_path(value: str | Path, base: Path, home: Path) -> Path:
    """An absolute path for a path written in a config file.

    Absolute stays; ``~`` is the user's home; ``${CANDLECAST_HOME}/x`` is ``x`` in the state folder;
    any other relative path is relative to ``base``, the folder of the config file (never the working
    directory, which differs between a shell, the CLI and a worker's temporary folder).
    """
    text = os.fspath(value)
    if text == HOME_VARIABLE or text.startswith(HOME_VARIABLE + "/"):
        return Path(os.path.normpath(home / text[len(HOME_VARIABLE) :].lstrip("/")))
    if "${" in text:
        raise ValueError(f"path {text!r}: the only variable a config path may use is {HOME_VARIABLE}")
    path = Path(text).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def with_paths(model: BaseModel, change: Callable[[Path, str], Path], where: str = "") -> Any:
    """``model`` with every Path field passed through ``change(value, where)`` (nested models and lists too)."""
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        value, at = getattr(model, name), f"{where}{name}"
        if isinstance(value, Path):
            updates[name] = change(value, at)
        elif isinstance(value, BaseModel):
            updates[name] = with_paths(value, change, f"{at}.")
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            updates[name] = [with_paths(v, change, f"{at}.{i}.") for i, v in enumerate(value)]
    return model.model_copy(update=updates) if updates else model


def relative_paths(model: BaseModel) -> list[str]:
    """Where ``model`` holds a relative path (``features.exogenous.0.path``): it would resolve per process."""
    found: list[str] = []

    def note(value: Path, where: str) -> Path:
        if not value.is_absolute():
            found.append(where)
        return value

    with_paths(model, note)
    return found


def home_relative(raw: Any, home: str) -> None:
    """Rewrite, in place, every string path under ``home`` as ``${CANDLECAST_HOME}/<rest>`` (a movable state)."""
    items = raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    for key, value in list(items):
        if isinstance(value, str) and value.startswith(home.rstrip("/") + "/"):
            raw[key] = HOME_VARIABLE + value[len(home.rstrip("/")) :]
        else:
            home_relative(value, home)


def one_line(exc: ValidationError) -> str:
    """Pydantic's errors as 'section.key: message (got value)', at most three, on one line, without URLs."""
    parts = []
    errors = exc.errors(include_url=False)
    for err in errors[:SHOWN_ERRORS]:
        where = ".".join(str(p) for p in err["loc"]) or "config"
        message = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        got = f" (got {_short(value)})" if err["type"] != "missing" and not isinstance(value, dict) else ""
        parts.append(f"{where}: {message}{got}")
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
