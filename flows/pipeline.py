"""The whole mission once: the ingest, train and predict flows as subflows of one run."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from candlecast.config import RunConfig
from candlecast.flows.ingest import ingest_flow
from candlecast.flows.predict import predict_flow
from candlecast.flows.train import train_flow


@flow(name="candlecast-pipeline", log_prints=True)
def pipeline(config: RunConfig | None = None) -> dict[str, Any]:
    """Ingest, train and predict once, as subflows of one run."""
    cfg = config or RunConfig()
    stored = ingest_flow(cfg)
    promotion = train_flow(cfg)
    predictions = predict_flow(cfg)
    _summary_artifact(promotion, predictions)
    return {"stored": stored, "promotion": promotion, "predictions": predictions}


def _summary_artifact(promotion: Any, predictions: Any) -> None:
    """The run's outcome on the pipeline run itself; each step's own artifacts are on its subflow run."""
    verdict = "promoted to @champion" if promotion.promoted else "kept as @challenger (the gate refused it)"
    metrics = promotion.metrics
    key = "qlike_ratio" if "qlike_ratio" in metrics else "rmse_ratio"
    served = (
        f"{len(predictions.files)} forecast file(s) from version {predictions.model_version}"
        if predictions.skipped is None
        else f"no forecasts: {predictions.skipped}"
    )
    create_markdown_artifact(
        key="pipeline-summary",
        markdown=(
            f"# {promotion.model_name} v{promotion.version}: {verdict}\n\n"
            f"{key} vs naive **{metrics.get(key, float('nan')):.4f}**, Diebold-Mariano p "
            f"{metrics.get('dm_pvalue', float('nan')):.4f}\n\n{served}\n\n"
            "Each step's artifacts (every validation, the sweep's best trial, the evaluation table, the gate's "
            "reasons) are on the ingest and train subflow runs."
        ),
        description=f"{promotion.model_name} v{promotion.version}: {verdict}",
    )
