"""Read existing candle history (freqtrade, CryptoDataDownload, plain CSV/parquet) into candle frames.

Readers only translate: timestamps to candle-open ms UTC, columns to CANDLE_COLUMNS, rows sorted.
They repair nothing: exact duplicate rows go (they carry no information), but conflicting duplicates,
gaps, NaNs and impossible prices are kept, so the candle contract refuses the file and says why
rather than an importer guessing which row was right.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from candlecast.io import write_parquet
from candlecast.schema import CANDLE_COLUMNS, timeframe_ms

FORMATS = ("freqtrade-json", "freqtrade-feather", "cryptodatadownload", "csv", "parquet")
TIME_UNITS = ("auto", "s", "ms", "us", "ns")
_TIME_ALIASES = ("timestamp", "date", "time", "datetime", "open_time", "unix")
_UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}


def detect_format(path: Path) -> str:
    """The format of ``path`` from its suffix and, for CSV, its header."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".feather"):
        return "freqtrade-feather"
    if name.endswith(".json"):
        return "freqtrade-json"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        head = pd.read_csv(path, nrows=0, skiprows=_cdd_preamble(path)).columns
        return "cryptodatadownload" if {"unix", "symbol"} <= {c.lower() for c in head} else "csv"
    raise ValueError(
        f"cannot tell the format of {path.name!r} from its name: pass --format, one of {', '.join(FORMATS)}"
    )


def read_candles(
    path: str | Path,
    fmt: str = "auto",
    columns: Mapping[str, str] | None = None,
    time_unit: str = "auto",
) -> pd.DataFrame:
    """Read a candle file into CANDLE_COLUMNS (int64 open time in ms UTC, float64 OHLCV), sorted by time.

    Args:
        path: The file; '.gz' CSVs are fine.
        fmt: One of FORMATS, or 'auto' to detect it from the name and header.
        columns: For csv/parquet: our column name -> the file's, e.g. ``{"timestamp": "open_time"}``;
            unnamed ones are matched case-insensitively (the time column also as date, time, unix...).
        time_unit: Unit of numeric timestamps; 'auto' decides per value (s, ms, us or ns by magnitude),
            which also reads files that mix seconds and milliseconds.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
    if time_unit not in TIME_UNITS:
        raise ValueError(f"unknown time unit {time_unit!r}: use one of {', '.join(TIME_UNITS)}")
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        raw = _read_raw(path, fmt, columns or {})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        # pandas' own words ("No columns to parse from file") name no file: the user may have passed several
        kind = fmt if fmt != "auto" else path.name.lower().removesuffix(".gz").rpartition(".")[2]
        raise ValueError(
            f"{path} cannot be read as a candle file ({exc}): check it is a non-empty {kind} file"
        ) from None
    frame = pd.DataFrame({"timestamp": to_ms(raw["timestamp"], time_unit)})
    for col in CANDLE_COLUMNS[1:]:
        frame[col] = pd.to_numeric(raw[col], errors="coerce").astype("float64").to_numpy()
    frame = frame.drop_duplicates().sort_values("timestamp", kind="stable")
    return frame.reset_index(drop=True)


def _read_raw(path: Path, fmt: str, columns: Mapping[str, str]) -> pd.DataFrame:
    if fmt == "freqtrade-json":
        return _freqtrade_json(path)
    if fmt == "freqtrade-feather":
        return _mapped(pd.read_feather(path), {}, path)
    if fmt == "cryptodatadownload":
        return _cryptodatadownload(path)
    if fmt == "csv":
        return _mapped(pd.read_csv(path), columns, path)
    if fmt == "parquet":
        return _mapped(pd.read_parquet(path), columns, path)
    raise ValueError(f"unknown format {fmt!r}: use one of auto, {', '.join(FORMATS)}")


def drop_unclosed(frame: pd.DataFrame, timeframe: str, now_ms: int) -> pd.DataFrame:
    """Candles closed at ``now_ms``: a file written mid-candle ends with one that is not final."""
    return frame[frame["timestamp"] + timeframe_ms(timeframe) <= now_ms].reset_index(drop=True)


def write_candles(frame: pd.DataFrame, path: Path) -> None:
    """Write candles as CSV or parquet (by suffix), atomically: an interrupted export leaves no half file."""
    path = Path(path)
    if path.suffix == ".parquet":
        write_parquet(frame, path)
        return
    if path.suffix != ".csv":
        raise ValueError(f"{path.name}: candles are written as .csv or .parquet")
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def to_ms(values: pd.Series, unit: str = "auto") -> np.ndarray:
    """Epoch milliseconds (int64) from numbers in ``unit`` or from date strings/datetimes (naive = UTC)."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        x = numeric.to_numpy(dtype=np.float64)
        scale: np.ndarray | float  # per value when guessed, one factor when given
        if unit == "auto":  # per value: magnitudes of 2001..2286 in s, ms, us and ns do not overlap
            scale = np.select([x < 1e11, x < 1e14, x < 1e17], [1000.0, 1.0, 1e-3], 1e-6)
        else:
            scale = _UNIT_MS[unit]
        return np.round(x * scale).astype(np.int64)
    try:
        stamps = pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError) as err:
        raise ValueError(f"cannot read timestamps such as {values.iloc[0]!r}: {err}") from None
    return (stamps.astype("datetime64[ns, UTC]").astype("int64") // 1_000_000).to_numpy()


def _mapped(raw: pd.DataFrame, columns: Mapping[str, str], path: Path) -> pd.DataFrame:
    """Pick the candle columns out of ``raw`` by explicit mapping, then by (case-insensitive) name."""
    unknown = sorted(set(columns) - set(CANDLE_COLUMNS))
    if unknown:
        raise ValueError(f"column mapping names {unknown}, which are not candle columns {CANDLE_COLUMNS}")
    lower = {str(c).lower(): c for c in raw.columns}
    picked: dict[str, str] = {}
    for col in CANDLE_COLUMNS:
        if col in columns:
            source = columns[col]
            if source not in raw.columns:
                raise ValueError(
                    f"{path.name}: mapped column {source!r} for {col} not found; it has {list(raw.columns)}"
                )
            picked[col] = source
            continue
        names = _TIME_ALIASES if col == "timestamp" else (col,)
        found = next((lower[n] for n in names if n in lower), None)
        if found is None:
            raise ValueError(
                f"{path.name}: no {col!r} column among {list(raw.columns)}; "
                f"map it, e.g. --columns {col}=<column in the file>"
            )
        picked[col] = found
    return pd.DataFrame({col: raw[src].reset_index(drop=True) for col, src in picked.items()})


def _freqtrade_json(path: Path) -> pd.DataFrame:
    """The JSON of freqtrade's ``download-data``: a list of [open ms, open, high, low, close, volume]."""
    rows = json.loads(path.read_text())
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows[:5]):
        raise ValueError(f"{path.name} is not freqtrade JSON: expected [[ms, open, high, low, close, volume], ...]")
    return pd.DataFrame([r[:6] for r in rows], columns=CANDLE_COLUMNS)


def _cdd_preamble(path: Path) -> int:
    """1 when the file starts with CryptoDataDownload's URL line (before the header), else 0."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as handle:
        first = handle.readline().strip().lower()
    return 1 if first.startswith("http") or "cryptodatadownload" in first else 0


def _cryptodatadownload(path: Path) -> pd.DataFrame:
    """CryptoDataDownload CSV: newest first, ``unix`` in s (old rows) or ms, volume as 'Volume <BASE>'."""
    raw = pd.read_csv(path, skiprows=_cdd_preamble(path))
    lower = {c.lower(): c for c in raw.columns}
    volumes = [c for c in raw.columns if c.lower().startswith("volume ")]
    base = str(raw[lower["symbol"]].iloc[0]).split("/")[0] if "symbol" in lower and len(raw) else ""
    volume = next((c for c in volumes if c.split(" ", 1)[1].upper() == base.upper()), volumes[0] if volumes else None)
    if volume is None or "unix" not in lower:
        raise ValueError(f"{path.name}: not a CryptoDataDownload export (needs 'unix' and 'Volume <BASE>' columns)")
    frame = pd.DataFrame({"timestamp": raw[lower["unix"]]})
    for col in ("open", "high", "low", "close"):
        frame[col] = raw[lower[col]]
    frame["volume"] = raw[volume]
    return frame
