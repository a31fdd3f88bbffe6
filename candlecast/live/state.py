"""The loop's own state, one small JSON file per key, each write atomic: what a restart resumes from.

Per series: the newest candle announced (``candles.stored`` emitted) and the newest forecast scored.
Per champion version: whether its retrain was asked for. One file per key, so the series' threads
never read-modify-write a shared file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from candlecast.io import append_jsonl, read_json, read_jsonl, write_json
from candlecast.schema import SeriesKey
from candlecast.settings import Settings


def live_dir(settings: Settings) -> Path:
    """``<home>/live``: the loop's state and its event journal."""
    return settings.root / "live"


def series_state(settings: Settings, series: SeriesKey) -> dict[str, Any]:
    """What the loop recorded for a series ({} before it first followed it)."""
    return read_json(live_dir(settings) / "series" / f"{series.slug}.json") or {}


def update_series_state(settings: Settings, series: SeriesKey, **values: Any) -> None:
    """Merge ``values`` into the series' record, atomically."""
    path = live_dir(settings) / "series" / f"{series.slug}.json"
    write_json((read_json(path) or {}) | values, path)


def retrain_path(settings: Settings, model_name: str, version: str) -> Path:
    """The debounce record of one champion version: written before its ``model.degraded`` is emitted."""
    return live_dir(settings) / "retrains" / f"{model_name}_v{version}.json"


def retrain_record(settings: Settings, model_name: str, version: str) -> dict[str, Any]:
    """The champion version's retrain record, {} if none was asked for."""
    return read_json(retrain_path(settings, model_name, version)) or {}


def write_retrain_record(settings: Settings, model_name: str, version: str, record: dict[str, Any]) -> None:
    """Replace the champion version's retrain record, atomically."""
    write_json(record, retrain_path(settings, model_name, version))


def journal(settings: Settings, event: str, resource: str, payload: dict[str, Any], event_id: str) -> None:
    """Append one emitted event to ``<home>/live/events.jsonl``: what the loop said, also with no Prefect server.

    One whole line per write (``append_jsonl``): a kill leaves a torn last line at worst, which readers skip.
    """
    import time

    record = {"event": event, "resource": resource, "payload": payload, "id": event_id, "t": time.time()}
    append_jsonl(record, live_dir(settings) / "events.jsonl")


def read_journal(settings: Settings) -> list[dict[str, Any]]:
    """The journal's whole lines, oldest first."""
    return read_jsonl(live_dir(settings) / "events.jsonl")


def claim_retrain(settings: Settings, model_name: str, version: str, run: str) -> bool:
    """Claim the one retrain of a champion version: True for the first caller ever, False after.

    The claim file is linked into place (``os.link`` fails if it exists), so two triggered runs, or a
    replayed event after a restart, cannot both train for the same champion.
    """
    import os
    import tempfile

    path = retrain_path(settings, model_name, version).with_suffix(".claimed")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".claim.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps({"run": run}))
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def retrain_refusal(settings: Settings, model_name: str, version: str, champion: str | None, run: str) -> str | None:
    """None when ``run`` is the one retrain of degraded champion ``version``; else why it is skipped.

    ``champion`` is the version @champion points at now: a champion that moved on needs no retrain.
    """
    if champion != version:
        return f"{model_name}@champion is v{champion} now, not the degraded v{version}: nothing to retrain"
    if not claim_retrain(settings, model_name, version, run):
        return f"{model_name} v{version} was already retrained once (debounce): its gate decision stands"
    return None
