"""A serve-model request body to candle arrays per series: JSON (orjson) or an Arrow IPC stream.

JSON takes what MLflow's scoring server takes for raw candles (``dataframe_split`` or
``dataframe_records``, with an optional ``symbol`` column for many series) and a list of series,
``{"series": [{"symbol": ..., "candles": <split or records>}, ...]}``. orjson reads the bytes as they
come (a 1.7 MB body of 100 series in a third of ``json.loads``' time) and each column becomes one array
through C-level passes (one transpose of the rows, one ``np.fromiter`` per column): no per-value Python.

An Arrow IPC stream (``content-type: application/vnd.apache.arrow.stream``) is one table of the candle
columns, with a ``symbol`` column for many series: its columns are the arrays already, so nothing is
parsed. pyarrow is imported on the first such request only.

Anything else is a ``BadRequest``: HTTP 400 with one line naming what is wrong.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import pandas as pd

from candlecast.features.last_window import Candles
from candlecast.schema import CANDLE_COLUMNS

ARROW_STREAM = "application/vnd.apache.arrow.stream"

Series = list[tuple[str | None, Candles]]


class BadRequest(ValueError):
    """A request the model cannot answer: HTTP 400 with this one-line reason."""


def parse_request(body: bytes, content_type: str = "application/json") -> Series:
    """The series of a request, each (symbol or None, candles); one line naming what is wrong otherwise."""
    if content_type.split(";")[0].strip().lower() == ARROW_STREAM:
        return _arrow_series(body)
    collecting = gc.isenabled()
    gc.disable()  # 100 series are 160,000 objects with no cycles among them: the collector would walk them all
    try:
        return _json_series(body)
    finally:
        if collecting:
            gc.enable()


def _json_series(body: bytes) -> Series:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON ({exc}): send JSON, or an Arrow stream as {ARROW_STREAM}") from None
    if not isinstance(payload, dict):
        raise BadRequest("send a JSON object: dataframe_split, dataframe_records or series")
    if "series" in payload:
        items = payload["series"]
        if not isinstance(items, list) or not items:
            raise BadRequest("series must be a non-empty list of {symbol, candles}")
        groups: Series = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("symbol"), str) or "candles" not in item:
                raise BadRequest(f"series[{i}] must be {{'symbol': str, 'candles': ...}}")
            groups.append((item["symbol"], _arrays(_table(item["candles"], f"series[{i}]"), item["symbol"])))
        return groups
    for key in ("dataframe_split", "dataframe_records"):
        if key in payload:
            columns = _table(payload[key], key)
            return _by_symbol(_arrays(columns, key), columns.get("symbol"))
    raise BadRequest(f"send dataframe_split, dataframe_records or series; the body has {sorted(payload)[:5]}")


def _split(columns: list[Any], data: list[Any]) -> dict[str, Sequence[Any]]:
    """Each column of a split as a tuple: one C-level transpose of the rows once every row is checked."""
    try:
        lengths = set(map(len, data))  # a C-level pass: 20,000 rows in under a millisecond
    except TypeError:
        lengths = set()
    if data and lengths != {len(columns)}:
        raise BadRequest(f"every row of dataframe_split.data needs {len(columns)} values, one per column {columns}")
    return dict(zip(map(str, columns), zip(*data, strict=True) if data else [()] * len(columns), strict=True))


def _records(rows: list[Any]) -> dict[str, Sequence[Any]]:
    """Each column of a list of records; a key missing from a row reads as null (as pandas reads records)."""
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise BadRequest("dataframe_records needs a non-empty list of {column: value} objects")
    names = list(rows[0])
    if len(names) > 1:  # itemgetter of one name gives the value, not a 1-tuple
        try:  # every row has the first row's keys: one itemgetter per row, one transpose
            return dict(zip(names, zip(*map(itemgetter(*names), rows), strict=True), strict=True))
        except KeyError:  # a row lacks a key: read key by key
            pass
    return {c: [r.get(c) for r in rows] for c in names}


def _table(payload: Any, where: str) -> dict[str, Sequence[Any]]:
    """Columns of a ``{"columns", "data"}`` split or a list of records."""
    if isinstance(payload, dict) and isinstance(payload.get("columns"), list) and isinstance(payload.get("data"), list):
        return _split(payload["columns"], payload["data"])
    if isinstance(payload, list):
        return _records(payload)
    raise BadRequest(f"{where} must be {{'columns': [...], 'data': [[...], ...]}} or a list of records")


def _arrays(columns: dict[str, Sequence[Any]], where: str) -> dict[str, np.ndarray]:
    """Candle columns as float arrays (timestamp int64 ms): what the runtime reads, no frame built."""
    missing = [c for c in CANDLE_COLUMNS if c not in columns]
    if missing:
        raise BadRequest(f"{where} lacks candle columns {missing}: send {CANDLE_COLUMNS}")
    try:
        arrays = {c: np.fromiter(columns[c], dtype="float64", count=len(columns[c])) for c in CANDLE_COLUMNS}
    except (TypeError, ValueError):
        raise BadRequest(f"{where}: candle columns {CANDLE_COLUMNS} must hold numbers") from None
    arrays["timestamp"] = arrays["timestamp"].astype("int64")
    return arrays


def _by_symbol(arrays: dict[str, np.ndarray], symbols: Sequence[Any] | np.ndarray | None) -> Series:
    """One set of arrays per symbol, symbols sorted (as predict_many does): one sort, then slices."""
    if symbols is None:
        return [(None, arrays)]
    names_in = np.asarray(symbols, dtype=object)
    if set(map(type, names_in)) != {str}:
        names_in = np.asarray([str(s) for s in names_in], dtype=object)
    codes, names = pd.factorize(names_in, sort=True)
    order = np.argsort(codes, kind="stable")
    sorted_arrays = {c: v[order] for c, v in arrays.items()}
    bounds = [0, *np.searchsorted(codes[order], np.arange(1, len(names))).tolist(), len(order)]
    return [
        (str(name), {c: v[start:end] for c, v in sorted_arrays.items()})
        for name, start, end in zip(names, bounds[:-1], bounds[1:], strict=True)
    ]


def _arrow_series(body: bytes) -> Series:
    """An Arrow IPC stream's table: its candle columns as arrays (no copy for float64 without nulls)."""
    import pyarrow as pa  # only a server that is sent Arrow pays its import (0.15 s)
    import pyarrow.ipc

    try:
        table = pyarrow.ipc.open_stream(body).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadRequest(f"the body is not an Arrow IPC stream ({' '.join(str(exc).split())[:200]})") from None
    missing = [c for c in CANDLE_COLUMNS if c not in table.column_names]
    if missing:
        raise BadRequest(f"the Arrow table lacks candle columns {missing}: send {CANDLE_COLUMNS}")
    try:
        timestamps = table.column("timestamp")
        if pa.types.is_timestamp(timestamps.type):  # a timestamp[ms] column: its ms since the epoch
            timestamps = timestamps.cast(pa.timestamp("ms")).cast(pa.int64())
        arrays = {"timestamp": timestamps.cast(pa.float64()).to_numpy().astype("int64")}
        arrays |= {c: table.column(c).cast(pa.float64()).to_numpy() for c in CANDLE_COLUMNS[1:]}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise BadRequest(f"the Arrow table's candle columns {CANDLE_COLUMNS} must hold numbers") from None
    symbols = table.column("symbol").to_numpy(zero_copy_only=False) if "symbol" in table.column_names else None
    return _by_symbol(arrays, symbols)
