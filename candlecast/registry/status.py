"""What `candlecast status` reports: the stores, the last validations, the registry, the forecasts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlflow.exceptions import MlflowException

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.data.ingest import series_gaps
from candlecast.io import read_json
from candlecast.registry import tracking
from candlecast.registry.prediction_store import prediction_store
from candlecast.settings import Settings


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def collect_status(settings: Settings, cfg: RunConfig) -> dict[str, Any]:
    store = CandleStore(settings.candles_dir)
    series_keys = sorted(set(store.list_series()) | set(cfg.series))
    series = []
    for key in series_keys:
        manifest = store.manifest(key) or {}
        preds = prediction_store(settings, cfg.predict.store_url).latest(key)
        series.append(
            {
                "series": str(key),
                "candles": manifest.get("rows", 0),
                "first": _iso(manifest.get("first")),
                "last": _iso(manifest.get("last")),
                "missing": manifest.get("missing", 0),
                "gaps": [  # classified against the other stored series of the exchange; never filled
                    {**g.to_dict(), "start": _iso(g.start), "end": _iso(g.end)} for g in series_gaps(store, [key])[key]
                ],
                "last_validation": read_json(settings.validation_dir / f"{key.slug}.json"),
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
        "tracking_uri": settings.tracking_uri,
        "series": series,
        "models": _models(settings, cfg.promotion.model_name),
    }


def _models(settings: Settings, name: str) -> dict[str, Any]:
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
