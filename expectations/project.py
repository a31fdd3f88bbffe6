"""The GX file context under ``<state>/gx``: suites, validation definitions, checkpoints, Data Docs.

Every validation that a flow or the CLI runs against the state folder goes through a checkpoint whose
action rebuilds the local Data Docs site, so each result has a page a user can open, and the suites
that produced it are stored beside it. In-memory validation (no state folder) stays in runner.py.

Each series is its own data asset and run name, so a result page and its file say which series it
checked; the site is made to work offline and trimmed to the newest results (expectations/data_docs.py).
"""

from __future__ import annotations

import re
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig

from candlecast.expectations import data_docs
from candlecast.io import file_lock

_SOURCE, _ASSET, _BATCH = "candlecast", "frames", "whole_frame"  # _ASSET: frames of no named series
_PROJECTS: dict[Path, GXProject] = {}
_PROJECTS_LOCK = threading.Lock()


def gx_dir(state_root: Path) -> Path:
    """Where the file context of a state folder lives."""
    return Path(state_root) / "gx"


def site_dir(state_root: Path) -> Path:
    """The local Data Docs site of a state folder (what `candlecast up` serves over http)."""
    return gx_dir(state_root) / "uncommitted" / "data_docs" / "local_site"


def asset_name(series: str) -> str:
    """'binance:BTC/USDT:1h' -> 'binance_BTC-USDT_1h': a series as a data asset, run name and file name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", series.replace("/", "-")).strip("_")
    return name or _ASSET


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
            self.source = self.context.data_sources.add_or_update_pandas(name=_SOURCE)
        self._batches: dict[str, Any] = {}
        self._suites: dict[str, tuple[dict[str, Any], gx.ExpectationSuite]] = {}  # name -> (spec, stored suite)
        self._checkpoints: dict[tuple[str, str], gx.Checkpoint] = {}  # (suite, asset) -> checkpoint

    def _batch_definition(self, asset: str) -> Any:
        """The whole-frame batch definition of one data asset (a series), made on first use."""
        if asset not in self._batches:
            assets = [a for a in self.source.assets if a.name == asset]
            found = assets[0] if assets else self.source.add_dataframe_asset(asset)
            batches = [b for b in found.batch_definitions if b.name == _BATCH]
            self._batches[asset] = batches[0] if batches else found.add_batch_definition_whole_dataframe(_BATCH)
        return self._batches[asset]

    def file_lock(self) -> AbstractContextManager[None]:
        """Serialise writers of this gx folder across processes (a flow and the CLI may both run)."""
        return file_lock(gx_dir(self.root) / ".candlecast.lock")

    def _checkpoint(self, suite: gx.ExpectationSuite, asset: str) -> gx.Checkpoint:
        """The stored suite, validation definition and Data Docs checkpoint of one suite and asset (series).

        Refreshed once per process; the suite's own name is kept for frames of no named series.
        """
        # Any: the JSON form is the constructor's keywords, each with its own type, not one JSON value type
        spec: dict[str, Any] = suite.to_json_dict()
        saved = self._suites.get(suite.name)
        if saved is None or saved[0] != spec:
            stored = self.context.suites.add_or_update(gx.ExpectationSuite(**spec))
            self._suites[suite.name] = (spec, stored)
            # one stored suite serves every series: the checkpoints made from its old version are stale now
            # (GX refuses to run them: "ExpectationSuite ... has changed since it has last been saved")
            self._checkpoints = {k: v for k, v in self._checkpoints.items() if k[0] != suite.name}
        else:
            stored = saved[1]
        known = self._checkpoints.get((suite.name, asset))
        if known is not None:
            return known
        name = suite.name if asset == _ASSET else f"{suite.name}-{asset}"
        definition = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=self._batch_definition(asset), suite=stored)
        )
        checkpoint = self.context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs")],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5},
            )
        )
        self._checkpoints[(suite.name, asset)] = checkpoint
        return checkpoint

    def validate(
        self,
        df: pd.DataFrame,
        suite: gx.ExpectationSuite,
        parameters: dict[str, Any] | None = None,
        series: str = "",
        keep: int = data_docs.DEFAULT_KEEP,
    ) -> tuple[ExpectationSuiteValidationResult, str | None]:
        """Run the suite's checkpoint on a frame; returns GX's result and its Data Docs page URL.

        ``series`` names the data asset and the run (its page says which series it checked); the site
        keeps the newest ``keep`` results of each suite and series and works offline.
        """
        asset = asset_name(series)
        run_id = RunIdentifier(run_name=asset, run_time=datetime.now(UTC))
        with self.file_lock():
            checkpoint = self._checkpoint(suite, asset)
            result = checkpoint.run(
                batch_parameters={"dataframe": df}, expectation_parameters=parameters or {}, run_id=run_id
            )
            identifier, validation = next(iter(result.run_results.items()))
            urls = self.context.get_docs_sites_urls(resource_identifier=identifier)
            url = next((u["site_url"] for u in urls if u.get("site_url")), None)
            self._tidy_site(suite.name, asset, url, series, keep, validation.to_json_dict())
        return validation, url

    def _tidy_site(self, suite: str, asset: str, url: str | None, series: str, keep: int, result: dict) -> None:
        """The new page offline and named, old results trimmed, the index rewritten (under the file lock)."""
        site = site_dir(self.root)
        data_docs.write_stylesheet(site)
        if url and url.startswith("file://"):
            page = Path(unquote(urlparse(url).path))
            if page.exists():
                data_docs.make_offline(page, site, series or None, result)
        suite_page = site / "expectations" / f"{suite}.html"
        if suite_page.exists():
            data_docs.make_offline(suite_page, site)
        data_docs.prune(gx_dir(self.root) / "uncommitted" / "validations", site, suite, asset, keep)
        data_docs.write_index(gx_dir(self.root) / "uncommitted" / "validations", site)

    def index_url(self) -> str | None:
        """The Data Docs home page."""
        index = site_dir(self.root) / "index.html"
        return index.as_uri() if index.exists() else None


def gx_project(state_root: Path) -> GXProject:
    """The process-wide GXProject of a state folder, created (on disk too) on first use."""
    key = Path(state_root).expanduser().resolve()
    with _PROJECTS_LOCK:
        if key not in _PROJECTS:
            _PROJECTS[key] = GXProject(key)
        return _PROJECTS[key]
