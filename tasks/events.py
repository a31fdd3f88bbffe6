"""How the live loop's events leave the process: the journal always, Prefect's ``emit_event`` with a server.

No Prefect import until an event is sent, so `candlecast live` with no server starts without it.
"""

from __future__ import annotations

import uuid
from typing import Any

from candlecast.live.state import journal
from candlecast.settings import Settings

_EVENT_IDS = uuid.UUID("5b1f6a52-7d0e-4c1e-9f34-2f7c2d1c0a22")  # namespace: the same key gives the same event id


def emit(event: str, resource: str, payload: dict[str, Any], key: str, to_prefect: bool = True) -> None:
    """Journal one event and send it to Prefect, its id derived from ``key`` (a replay is the same event)."""
    event_id = uuid.uuid5(_EVENT_IDS, key)
    journal(Settings(), event, resource, payload, str(event_id))
    if to_prefect:
        from prefect.events import emit_event

        emit_event(event=event, resource={"prefect.resource.id": resource}, payload=payload, id=event_id)


def journal_only(event: str, resource: str, payload: dict[str, Any], key: str) -> None:
    """``emit`` with no Prefect server: the journal alone (`candlecast live` with no PREFECT_API_URL)."""
    emit(event, resource, payload, key, to_prefect=False)
