"""Where a series' candles come from, recorded per series so a series never mixes two sources.

Every writer that brings candles in (ingest from an exchange or the emulator, an import) names its
``Source``; the store records it in the series folder (``_sources.json``, beside the manifest, skipped
by parquet readers) before the first candle of that source is written. A later write from another
source is refused before anything is written, unless the caller allows the change on purpose; the
record then keeps the history. A series stored before records existed has none: its first write
records one.

Sources are compared by ``identity`` only: the exchange id and endpoint, or the emulator's market and
seed. Imports are one source: a file carries no proof of its market, only the user's word (the series
key they name), so several files may build one series (yearly exports, a newer download, an export
imported back); each file is recorded (name, format, path, sha256), but a file into a series fetched
from an exchange, or a fetch into an imported series, is a change of source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from candlecast.io import read_json, write_json
from candlecast.schema import SeriesKey
from candlecast.settings import redact

SOURCES = "_sources.json"
ALLOW_FLAG = "--allow-source-change"


class SourceConflict(ValueError):
    """Candles from one source offered to a series recorded from another; nothing was written."""

    def __init__(self, series: SeriesKey, recorded: dict[str, Any], offered: Source) -> None:
        self.series, self.recorded, self.offered = series, recorded, offered
        super().__init__(
            f"{series} holds candles from {recorded.get('label', '?')}, not from {offered.label}: nothing written; "
            f"to add them on purpose run `candlecast ingest` or `import` with {ALLOW_FLAG}; "
            "or use another state folder (CANDLECAST_HOME)"
        )


@dataclass(frozen=True)
class Source:
    """One origin of candles: ``identity`` decides sameness, ``label`` says it in words, ``detail`` is kept too."""

    kind: str  # "exchange", "emulator" or "import"
    identity: dict[str, Any]
    label: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record's entry (without the time it was recorded)."""
        return {"kind": self.kind, "identity": self.identity, "label": self.label, **self.detail}

    def same_as(self, recorded: dict[str, Any]) -> bool:
        """Whether a recorded entry is this source (same kind and identity; details such as a file hash aside)."""
        return recorded.get("kind") == self.kind and recorded.get("identity") == self.identity


def exchange_source(exchange_id: str, api_url: str | None) -> Source:
    """A ccxt exchange at its default endpoint or at ``api_url`` (credentials and query never recorded)."""
    endpoint = _public_url(api_url) if api_url else "default"
    where = "its default endpoint" if api_url is None else endpoint
    return Source("exchange", {"exchange": exchange_id, "endpoint": endpoint}, f"exchange {exchange_id} at {where}")


def emulator_source(exchange_id: str, market: str, seed: int) -> Source:
    """The local emulator's seeded synthetic market (``market`` names its parameters)."""
    identity = {"exchange": exchange_id, "market": market, "seed": int(seed)}
    return Source("emulator", identity, f"the emulator's {market}, seed {seed}")


def import_source(path: str | Path, fmt: str) -> Source:
    """An imported file: any file is the same source as other imports; its name, format, path and hash are recorded."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    detail = {"file": path.name, "format": fmt, "path": str(path.resolve()), "sha256": digest.hexdigest()}
    return Source("import", {}, f"imported files (last {path.name}, {fmt})", detail)


def sources(folder: Path) -> list[dict[str, Any]]:
    """The series' recorded sources, oldest first (the last one is current); [] when none was recorded."""
    record = read_json(Path(folder) / SOURCES)
    return list((record or {}).get("sources", []))


def check_source(folder: Path, series: SeriesKey, source: Source, allow_change: bool = False) -> None:
    """Raise ``SourceConflict`` if the series holds candles recorded from another source (and that is not allowed).

    A series with no candles yet, or with candles but no record (stored before records existed), takes any source.
    """
    recorded = sources(folder)
    if recorded and not allow_change and not source.same_as(recorded[-1]):
        raise SourceConflict(series, recorded[-1], source)


def record_source(folder: Path, series: SeriesKey, source: Source) -> None:
    """Append ``source`` to the record unless the current entry says the same (atomic; hold the series lock).

    A same-identity source with other details (another imported file) is appended too: the history
    lists every file a series was built from.
    """
    recorded = sources(folder)
    if recorded and {k: v for k, v in recorded[-1].items() if k != "recorded_at"} == source.to_dict():
        return
    entry = source.to_dict() | {"recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_json({"series": str(series), "sources": [*recorded, entry]}, Path(folder) / SOURCES)


def _public_url(url: str) -> str:
    """``url`` without user, password, query or fragment: what identifies an endpoint, and safe to show."""
    parts = urlsplit(redact(url))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host, query="", fragment="")).rstrip("/")
