"""The GX file context under ``<state>/gx``: suites, validation definitions, checkpoints, Data Docs.

Every validation that a flow or the CLI runs against the state folder goes through a checkpoint whose
action rebuilds the local Data Docs site, so each result has a page a user can open, and the suites
that produced it are stored beside it. In-memory validation (no state folder) stays in runner.py.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig

from candlecast.io import file_lock

_SOURCE, _ASSET, _BATCH = "candlecast", "frames", "whole_frame"
_PROJECTS: dict[Path, GXProject] = {}
_PROJECTS_LOCK = threading.Lock()


def gx_dir(state_root: Path) -> Path:
    """Where the file context of a state folder lives."""
    return Path(state_root) / "gx"


class GXProject:
    """One state folder's GX file context, with a checkpoint per suite made on first use.

    Use ``gx_project(root)``: one instance per folder per process, so the context is loaded once.
    """

    def __init__(self, state_root: Path) -> None:
        self.root = Path(state_root)
        self.root.mkdir(parents=True, exist_ok=True)
        with self.file_lock():
            self.context = gx.get_context(mode="file", project_root_dir=str(self.root))
            variables = self.context.variables
            variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            variables.analytics_enabled = False
            variables.save()
            source = self.context.data_sources.add_or_update_pandas(name=_SOURCE)
            assets = [a for a in source.assets if a.name == _ASSET]
            asset = assets[0] if assets else source.add_dataframe_asset(_ASSET)
            batches = [b for b in asset.batch_definitions if b.name == _BATCH]
            self.batch_definition = batches[0] if batches else asset.add_batch_definition_whole_dataframe(_BATCH)
        self._checkpoints: dict[str, tuple[Any, gx.Checkpoint]] = {}

    def file_lock(self) -> AbstractContextManager[None]:
        """Serialise writers of this gx folder across processes (a flow and the CLI may both run)."""
        return file_lock(gx_dir(self.root) / ".candlecast.lock")

    def _checkpoint(self, suite: gx.ExpectationSuite) -> gx.Checkpoint:
        """The stored suite, validation definition and Data Docs checkpoint for it, refreshed once per process."""
        # Any: the JSON form is the constructor's keywords, each with its own type, not one JSON value type
        spec: dict[str, Any] = suite.to_json_dict()
        known = self._checkpoints.get(suite.name)
        if known is not None and known[0] == spec:
            return known[1]
        stored = self.context.suites.add_or_update(gx.ExpectationSuite(**spec))
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite.name, data=self.batch_definition, suite=stored)
        )
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs")],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
            )
        )
        self._checkpoints[suite.name] = (suite.to_json_dict(), checkpoint)
        return checkpoint

    def validate(
        self, df: pd.DataFrame, suite: gx.ExpectationSuite, parameters: dict[str, Any] | None = None
    ) -> tuple[ExpectationSuiteValidationResult, str | None]:
        """Run the suite's checkpoint on a frame; returns GX's result and its Data Docs page URL."""
        with self.file_lock():
            checkpoint = self._checkpoint(suite)
            result = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {})
        identifier, validation = next(iter(result.run_results.items()))
        urls = self.context.get_docs_sites_urls(resource_identifier=identifier)
        return validation, next((u["site_url"] for u in urls if u.get("site_url")), None)

    def index_url(self) -> str | None:
        """The Data Docs home page."""
        urls = self.context.get_docs_sites_urls()
        return next((u["site_url"] for u in urls if u.get("site_url")), None)


def gx_project(state_root: Path) -> GXProject:
    """The process-wide GXProject of a state folder, created (on disk too) on first use."""
    key = Path(state_root).expanduser().resolve()
    with _PROJECTS_LOCK:
        if key not in _PROJECTS:
            _PROJECTS[key] = GXProject(key)
        return _PROJECTS[key]
