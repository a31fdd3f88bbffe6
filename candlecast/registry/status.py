"""What `candlecast status` reports: the stores, the last validations, the registry, the forecasts.

A status must show what it can even when part of the state folder is broken: a series with an
unreadable data file is reported with that error (``corrupt``) beside the readable ones, so the
CLI can name the file, show the rest and exit with its own code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore, CorruptPartition
from candlecast.data.ingest import series_gaps
from candlecast.data.validations import read_validation
from candlecast.registry import tracking
from candlecast.registry.prediction_store import prediction_store
from candlecast.settings import Settings, redact


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def collect_status(settings: Settings, cfg: RunConfig) -> dict[str, Any]:
    """Every stored or configured series (coverage, gaps, last validation, latest forecast) and the registry.

    Returns a JSON-ready dict: ``home``, ``tracking_uri``, ``series`` (one dict each; ``corrupt`` holds
    the error of a series with an unreadable file, else None; ``source`` where its candles come from,
    ``sources`` that record's history) and ``models``.
    """
    store = CandleStore(settings.candles_dir)
    series_keys = sorted(set(store.list_series()) | set(cfg.series))
    series = []
    for key in series_keys:
        try:
            manifest, corrupt = store.manifest(key) or {}, None
        except CorruptPartition as exc:
            manifest, corrupt = {}, str(exc)
        sources = store.sources(key)  # endpoints are recorded without credentials or query
        preds = prediction_store(settings, cfg.predict.store_url).latest(key)
        series.append(
            {
                "series": str(key),
                "corrupt": corrupt,
                "source": sources[-1]["label"] if sources else None,  # None: stored before sources were recorded
                "sources": sources,
                "candles": manifest.get("rows", 0),
                "first": _iso(manifest.get("first")),
                "last": _iso(manifest.get("last")),
                "missing": manifest.get("missing", 0),
                "gaps": [  # classified against the other stored series of the exchange; never filled
                    {**g.to_dict(), "start": _iso(g.start), "end": _iso(g.end)} for g in series_gaps(store, [key])[key]
                ],
                "last_validation": read_validation(settings, key),
                "latest_predictions": None
                if preds is None
                else {
                    "cutoff": _iso(int(preds["cutoff"].iloc[0])),
                    "model_version": str(preds["model_version"].iloc[0]),
                    "created_at": str(preds["created_at"].iloc[0]),
                    "rows": preds[["timestamp", "forecast", "lower", "upper"]]
                    .assign(timestamp=lambda f: f["timestamp"].map(_iso))
                    .to_dict("records"),
                },
            }
        )
    return {
        "home": str(settings.root),
        "tracking_uri": redact(settings.tracking_uri),  # a printed status never shows a password
        "series": series,
        "models": _models(settings, cfg.promotion.model_name),
    }


def _models(settings: Settings, name: str) -> dict[str, Any]:
    """The registered versions of ``name``; a status never creates the tracking database to find none."""
    local = settings.tracking_uri.removeprefix("sqlite:///")
    if settings.tracking_uri.startswith("sqlite:///") and not Path(local).exists():
        return {"name": name, "versions": []}
    client = tracking.client(settings)
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        return {"name": name, "versions": []}
    aliases: dict[str, list[str]] = {}
    for alias, version in registered.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    versions = []
    for mv in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        run_metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        versions.append(
            {
                "version": str(mv.version),
                "aliases": sorted(aliases.get(str(mv.version), [])),
                "run_id": mv.run_id,
                "created": _iso(mv.creation_timestamp),
                "metrics": {k: run_metrics[k] for k in sorted(run_metrics) if k in _KEY_METRICS},
                "decision": mv.tags.get("promotion.decision"),
                "reasons": mv.tags.get("promotion.reasons"),
            }
        )
    return {"name": name, "versions": versions}


_KEY_METRICS = {
    "rmse_ratio",
    "mae_ratio",
    "test_rmse",
    "naive_rmse",
    "test_mase",
    "test_directional_accuracy",
    "test_coverage",
    "dm_pvalue",
    "live_rmse_ratio",
    "live_mae",
    "live_coverage",
    "live_directional_accuracy",
}
