"""The MLflow boundary for runs: tracking URI, experiments, parent and child runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from candlecast.settings import Settings


def client(settings: Settings) -> MlflowClient:
    """A client bound to the configured tracking store; also points the fluent API at it."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if settings.tracking_uri.startswith("sqlite:"):
        settings.root.mkdir(parents=True, exist_ok=True)
    # set_tracking_uri also exports MLFLOW_TRACKING_URI, which Settings reads: put the user's value back
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


#: MLflow 3's UI opens an experiment without this tag in GenAI mode (an empty traces page, the registry
#: hidden); candlecast's experiments are model development: runs, metrics, models.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(settings: Settings, name: str) -> str:
    """Get or create the experiment, with artifacts under the state folder (not ./mlruns), tagged as model work."""
    c = client(settings)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if not EXPERIMENT_KIND.items() <= exp.tags.items():
            for key, value in EXPERIMENT_KIND.items():
                c.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    location = None
    if not settings.tracking_uri.startswith(("http://", "https://", "databricks")):
        location = (settings.mlflow_artifacts_dir / name).as_uri()
    return c.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)


def lineage_tags() -> dict[str, str]:
    """Code and library versions every run records, so a model can be traced back and rebuilt."""
    tags = {f"lib.{p}": package_version(p) for p in ("torch", "lightning", "mlflow", "optuna", "prefect", "pandas")}
    tags["candlecast.version"] = package_version("candlecast")
    tags["python"] = sys.version.split()[0]
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def package_version(package: str) -> str:
    """The installed version of ``package``, or "not installed": logged as lineage, so it never raises."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def start_parent_run(settings: Settings, experiment: str, run_name: str, data_lineage: dict[str, str]) -> str:
    """Open the pipeline's parent run (trials become its children); returns its id."""
    c = client(settings)
    run = c.create_run(experiment_id(settings, experiment), run_name=run_name, tags=lineage_tags() | data_lineage)
    return run.info.run_id


def finish_run(settings: Settings, run_id: str, failed: bool = False) -> None:
    """Close a run opened by ``start_parent_run``, as FAILED or FINISHED."""
    client(settings).set_terminated(run_id, "FAILED" if failed else "FINISHED")


#: The figures a reader looks for first, in this order, with what each says.
_KEY_METRICS = (
    ("rmse_ratio", "test RMSE / naive random walk's, same windows (below 1 beats naive)"),
    ("qlike_ratio", "test QLIKE / best classical volatility model's (below 1 beats it)"),
    ("dm_pvalue", "Diebold-Mariano p-value vs that reference (small: the difference is not luck)"),
    ("champion.rmse_ratio", "the current @champion refitted on the same folds"),
    ("champion.qlike_ratio", "the current @champion refitted on the same folds"),
    ("champion.dm_pvalue", "Diebold-Mariano p-value vs the @champion"),
    ("test_directional_accuracy", "share of steps with the right sign"),
    ("test_coverage", "share of actuals inside the forecast interval"),
    ("test_mase", "mean absolute scaled error"),
)


def summary_rows(metrics: dict[str, float]) -> list[dict[str, str]]:
    """The key metrics as rows (metric, value, meaning), then each baseline's ratio to naive, best first."""
    rows = [
        {"metric": name, "value": f"{metrics[name]:.4f}", "meaning": meaning}
        for name, meaning in _KEY_METRICS
        if name in metrics
    ]
    baselines = sorted(
        (value, key.split(".")[1])
        for key, value in metrics.items()
        if key.startswith("baseline.") and key.endswith(".rmse_ratio")
    )
    rows += [
        {"metric": f"baseline {name}", "value": f"{value:.4f}", "meaning": "its RMSE / naive's"}
        for value, name in baselines
    ]
    return rows


def summary_markdown(metrics: dict[str, float], decision: str | None = None, reasons: tuple[str, ...] = ()) -> str:
    """The run's headline as markdown: the gate's decision and reasons, then the key metrics table."""
    lines = [f"**{decision}**", ""] if decision else []
    lines += [f"- {reason}" for reason in reasons] + ([""] if reasons else [])
    lines += ["| metric | value | what it says |", "|---|---|---|"]
    lines += [f"| {r['metric']} | {r['value']} | {r['meaning']} |" for r in summary_rows(metrics)]
    return "\n".join(lines)


def log_summary(
    settings: Settings,
    run_id: str,
    metrics: dict[str, float],
    decision: str | None = None,
    reasons: tuple[str, ...] = (),
    gate_metric: str = "rmse_ratio",
) -> None:
    """Put the headline first in the MLflow UI: the run's description, summary.md, decision tags, the result view.

    The run page shows its description above everything else; the metrics tab lists 50-odd metrics in
    alphabetical order, so the decision and the ratios to naive go where a reader looks first.
    ``gate_metric`` is the target's (``Target.gate_metric``): the ratio the run's name shows.
    """
    c = client(settings)
    experiment = c.get_run(run_id).info.experiment_id
    link = f"All runs with the decision and the ratios as columns: [{RESULT_VIEW}]({result_view_path(experiment)})"
    text = summary_markdown(metrics, decision, reasons)
    # under the decision: the run page shows a description's first lines, the rest behind "Show more"
    note = text.replace("\n\n", f"\n\n{link}\n\n", 1) if decision else f"{link}\n\n{text}"
    c.set_tag(run_id, "mlflow.note.content", note)
    c.log_text(run_id, text, "summary.md")
    if decision:
        c.set_tag(run_id, "decision", decision)
        c.set_tag(run_id, "gate", verdict(decision))
        name = headline_run_name(c.get_run(run_id).info.run_name, metrics, decision, gate_metric)
        c.set_tag(run_id, "mlflow.runName", name)
    save_result_view(c, experiment, gate_metric)


#: The runs table's saved view that puts the result first. MLflow (3.17) has no per-experiment default
#: columns: a fresh browser shows Source, Models and Dataset, and a user's own choice stays in their
#: browser. A saved view (MLflow 3.15+, the runs page's "Views" menu) is an experiment tag
#: ``mlflow.sharedViewState.<key>`` that every browser lists, and ``?viewStateShareKey=<key>`` opens it.
RESULT_VIEW = "candlecast-result"
_VIEW_TAG = "mlflow.sharedViewState."


def result_view_path(experiment_id: str) -> str:
    """The MLflow UI path (after the server's URL) of an experiment's runs in the result view."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={RESULT_VIEW}"


def result_view_columns(gate_metric: str) -> list[str]:
    """The view's columns in the UI's own keys: the gate's verdict, its ratio and p-value, the champion's ratio."""
    metrics = (gate_metric, "dm_pvalue", f"champion.{gate_metric}")
    return ["tags.`gate`", *(f"metrics.`{m}`" for m in metrics), "tags.`decision`"]


def save_result_view(c: MlflowClient, experiment_id: str, gate_metric: str) -> None:
    """Write (or refresh) the experiment's result view: newest runs first, the result's columns shown."""
    columns = result_view_columns(gate_metric)
    # widths apply only to ordered columns; the UI otherwise groups metrics before tags, by name
    # (a p-value such as 1.0186174299274543e-36 is printed whole: narrower, it would read 1.018...)
    widths = {c: 330 if "decision" in c else 110 if "gate" in c else 230 if "dm_pvalue" in c else 170 for c in columns}
    state = {
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": widths,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
    }
    now = int(time.time() * 1000)
    envelope = {"name": "result first: gate, ratios", "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    c.set_experiment_tag(experiment_id, _VIEW_TAG + RESULT_VIEW, json.dumps(envelope))


def verdict(decision: str) -> str:
    """``promoted`` or ``refused``, from the decision's text (``<model> vN: promoted to @champion``)."""
    return "promoted" if "promoted to @champion" in decision else "refused"


def headline_run_name(name: str | None, metrics: dict[str, float], decision: str, key: str) -> str:
    """``<name> · rmse_ratio 0.6624 · promoted``: what the runs table's default view (names, no metric) shows.

    The result view (``RESULT_VIEW``) has columns for it, but a browser opens the default view first.
    Idempotent: a second call replaces the earlier headline.
    ``key`` is the target's gate metric.
    """
    base = (name or "run").split(" · ")[0]
    ratio = metrics.get(key)
    return " · ".join([base, *([f"{key} {ratio:.4f}"] if ratio is not None else []), verdict(decision)])
