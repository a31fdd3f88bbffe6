"""Read back what a flow published to the Prefect UI (tests/flows/ is on sys.path: rootdir import mode)."""

from __future__ import annotations

import httpx
from prefect.settings import PREFECT_API_URL


def latest_artifact(key: str) -> str:
    """The latest artifact under ``key``, of a task or of a flow run itself.

    Straight to the API: the Python client sends ``null`` for the flow-run and task-run filters it is not
    given (the server refuses that), and empty ones exclude the artifacts a flow made outside any task.
    """
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}
    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", json=body, timeout=30)
    response.raise_for_status()
    found = response.json()
    assert found, f"no artifact {key}"
    return str(found[0]["data"])
