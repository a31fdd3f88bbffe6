"""Where forecasts go: parquet files under the state folder, or a SQL table.

Both replace the rows of one (series, cutoff, model version) atomically, so re-running a
prediction never duplicates rows, and both answer "the latest forecast of a series".
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from candlecast.io import write_parquet
from candlecast.schema import SeriesKey
from candlecast.settings import Settings

#: What a store holds: return forecasts (one row per step) or risk forecasts (one row per cutoff).
RETURNS, RISK = "returns", "risk"  # the shipped targets' store kinds (Target.store_kind); others get <kind>_predictions


class ParquetPredictionStore:
    """``<home>/predictions/<series>/cutoff=<ms>_v<version>.parquet``: one file per forecast."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, series: SeriesKey, cutoff: int, version: str) -> Path:
        """Where one forecast's file goes: the cutoff and version in the name make a rerun replace it."""
        return self.root / series.slug / f"cutoff={cutoff}_v{version}.parquet"

    def write(self, series: SeriesKey, forecast: pd.DataFrame) -> str:
        """Replace the forecast of its (series, cutoff, model version), atomically; returns where it went."""
        path = self.path(series, int(forecast["cutoff"].iloc[0]), str(forecast["model_version"].iloc[0]))
        write_parquet(forecast, path)
        return str(path)

    def read_all(self, series: SeriesKey) -> pd.DataFrame:
        """Every stored forecast of the series, in file order; an empty frame when there is none."""
        files = sorted((self.root / series.slug).glob("cutoff=*.parquet"))
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()

    def read_cutoffs(self, series: SeriesKey, cutoffs: list[int]) -> pd.DataFrame:
        """The stored forecasts (every version) at these cutoffs: their files only; an empty frame for none."""
        files = [f for c in cutoffs for f in sorted((self.root / series.slug).glob(f"cutoff={c}_v*.parquet"))]
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()

    def read_new(self, series: SeriesKey, seen: set[str]) -> tuple[pd.DataFrame, set[str]]:
        """The forecasts in files not named in ``seen``, and the names of every file now there.

        A follower (the live monitor, each candle) reads each forecast once instead of the whole history.
        """
        files = sorted((self.root / series.slug).glob("cutoff=*.parquet"))
        new = [f for f in files if f.name not in seen]
        frame = pd.concat([pd.read_parquet(f) for f in new], ignore_index=True) if new else pd.DataFrame()
        return frame, seen | {f.name for f in new}

    def latest(self, series: SeriesKey) -> pd.DataFrame | None:
        """The forecast with the newest cutoff (the last written on a tie), or None."""
        files = sorted(
            (self.root / series.slug).glob("cutoff=*.parquet"),
            key=lambda p: (int(p.stem.split("=")[1].split("_v")[0]), p.stat().st_mtime),
        )
        return pd.read_parquet(files[-1]) if files else None


class SqlPredictionStore:
    """A ``predictions`` (or ``risk_predictions``) table in any SQLAlchemy database.

    A write is a delete and an insert in one transaction.
    """

    def __init__(self, url: str, table: str = "predictions"):
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url)
        self.table = table

    def write(self, series: SeriesKey, forecast: pd.DataFrame) -> str:
        """Replace the forecast's rows of its (series, cutoff, model version) in one transaction; returns the table.

        The returned location hides the password, since it is logged.
        """
        import sqlalchemy

        key = {
            "series": str(series),
            "cutoff": int(forecast["cutoff"].iloc[0]),
            "version": str(forecast["model_version"].iloc[0]),
        }
        rows = forecast.assign(series=str(series), model_version=forecast["model_version"].astype(str))
        with self.engine.begin() as conn:
            if sqlalchemy.inspect(conn).has_table(self.table):
                conn.execute(
                    sqlalchemy.text(
                        f"DELETE FROM {self.table} "
                        "WHERE series = :series AND cutoff = :cutoff AND model_version = :version"
                    ),
                    key,
                )
            rows.to_sql(self.table, conn, if_exists="append", index=False)
        return f"{self.engine.url.render_as_string(hide_password=True)}#{self.table}"

    def read_all(self, series: SeriesKey) -> pd.DataFrame:
        """Every stored row of the series; an empty frame before the table exists."""
        import sqlalchemy

        with self.engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table(self.table):
                return pd.DataFrame()
            return pd.read_sql(
                sqlalchemy.text(f"SELECT * FROM {self.table} WHERE series = :s"), conn, params={"s": str(series)}
            )

    def read_cutoffs(self, series: SeriesKey, cutoffs: list[int]) -> pd.DataFrame:
        """The stored rows (every version) at these cutoffs; an empty frame for none."""
        rows = self.read_all(series)
        return rows[rows["cutoff"].astype("int64").isin(cutoffs)] if not rows.empty else rows

    def latest(self, series: SeriesKey) -> pd.DataFrame | None:
        """The rows of the forecast with the newest cutoff (the last created on a tie), or None."""
        rows = self.read_all(series)
        if rows.empty:
            return None
        last = rows.sort_values(["cutoff", "created_at"]).iloc[-1]
        return rows[(rows["cutoff"] == last["cutoff"]) & (rows["model_version"] == last["model_version"])]


def prediction_store(
    settings: Settings, url: str | None = None, kind: str = RETURNS
) -> ParquetPredictionStore | SqlPredictionStore:
    """Return forecasts under ``<home>/predictions``, risk forecasts under ``<home>/risk_predictions``.

    A SQL store when the run config (``url``) or the environment (``CANDLECAST_PREDICTION_STORE_URL``, the
    place for a URL with a password) names one.
    """
    url = url or settings.prediction_store_url
    if url:
        return SqlPredictionStore(url, "predictions" if kind == RETURNS else f"{kind}_predictions")
    return ParquetPredictionStore(
        settings.predictions_dir if kind == RETURNS else settings.root / f"{kind}_predictions"
    )
