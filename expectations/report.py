"""The validation report: a contract check's verdict and failures, as plain data and as text.

Kept apart from running the suites (runner.py) so that the code that only reads a report (the tasks'
Prefect artifacts, the CLI's output, quarantine sidecars) does not have to understand GX's results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from candlecast.expectations.candles import CRITICAL


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of one contract check: the gate decision plus enough detail to act on a failure.

    Attributes:
        success: True when no critical expectation failed (warnings are reported but do not block).
        series: The series the frame belongs to, e.g. 'binance:BTC/USDT:1h'; free text, may be empty.
        suite: Name of the suite that was run.
        n_rows: Rows in the validated frame.
        n_expectations: Expectations evaluated.
        checked_at: When the check ran, ISO 8601 UTC.
        failures: One dict per failed expectation with keys expectation, description, columns,
            unexpected_count, sample, rows (a few offending rows, for row-wise checks), severity and
            error (GX's exception message when the expectation crashed, else None).
        data_docs: URL of this result's Data Docs page, when validated against a state folder.
    """

    success: bool
    series: str
    suite: str
    n_rows: int
    n_expectations: int
    checked_at: str
    failures: list[dict[str, Any]] = field(default_factory=list)
    data_docs: str | None = None

    @property
    def failed_expectations(self) -> list[str]:
        """Expectation types that failed, in report order (a type may repeat, e.g. one per column)."""
        return [f["expectation"] for f in self.failures]

    @property
    def status(self) -> str:
        """'passed', 'passed with warnings' or 'FAILED': one word for tags, tables and logs."""
        if not self.success:
            return "FAILED"
        return "passed with warnings" if self.failures else "passed"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that ``json.dumps`` accepts, for logs, MLflow and quarantine sidecars."""
        return {**asdict(self), "status": self.status}

    def summary(self, rows: int = 3) -> str:
        """Human-readable outcome: a header line, then each failed expectation with a few offending rows."""
        where = ", ".join(p for p in (self.suite, self.series) if p)
        if not self.failures:
            return f"passed {self.n_expectations} expectations on {self.n_rows} rows ({where})"
        n_critical = sum(f["severity"] == CRITICAL for f in self.failures)
        verdict = "FAILED" if not self.success else "passed with warnings"
        lines = [
            f"{verdict}: {len(self.failures)} of {self.n_expectations} expectations failed "
            f"({n_critical} critical) on {self.n_rows} rows ({where})"
        ]
        for f in self.failures:
            lines.append(f"  - [{f['severity']}] {_headline(f)}")
            if f.get("error"):
                lines.append(f"      error: {f['error']}")
            elif f.get("rows"):
                lines += [f"      {format_row(r)}" for r in f["rows"][:rows]]
            elif f.get("sample") is not None:
                lines.append(f"      {_observed(f['sample'])}")
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs}")
        return "\n".join(lines)

    def table(self) -> list[dict[str, Any]]:
        """One row per failed expectation, for a Prefect table artifact."""
        return [
            {
                "severity": f["severity"],
                "expectation": f["expectation"],
                "columns": f["columns"],
                "unexpected": f["unexpected_count"],
                "what it checks": f.get("description") or "",
            }
            for f in self.failures
        ]

    def markdown(self, title: str = "Validation") -> str:
        """The report as Markdown: verdict, Data Docs link, the failed expectations and offending rows."""
        lines = [f"# {title}: {self.status}", "", f"**{self.suite}** on {self.n_rows} rows of `{self.series or '-'}`"]
        lines.append(f"({self.n_expectations} expectations, checked {self.checked_at})")
        if self.data_docs:
            link = served_docs_url(self.data_docs)
            lines += ["", f"Data Docs: [{link}]({link})"]
        if not self.failures:
            return "\n".join(lines)
        lines += ["", "| severity | expectation | columns | unexpected | what it checks |", "|---|---|---|---|---|"]
        for row in self.table():
            lines.append("| " + " | ".join(str(v) if v is not None else "-" for v in row.values()) + " |")
        for f in self.failures:
            detail = f.get("rows") or ([] if f.get("error") else None)
            lines += ["", f"**{_headline(f)}**"]
            if f.get("error"):
                lines.append(f"error: `{f['error']}`")
            elif detail:
                lines += ["", "| " + " | ".join(detail[0]) + " |", "|" + "---|" * len(detail[0])]
                lines += ["| " + " | ".join(_cell(k, v) for k, v in r.items()) + " |" for r in detail]
            else:
                lines.append(f"`{_observed(f.get('sample'))}`")
        return "\n".join(lines)


def served_docs_url(url: str) -> str:
    """A Data Docs page's http address when the site is served (``CANDLECAST_DATA_DOCS_URL``), else ``url``.

    A browser refuses file:// links from an http page such as the Prefect UI; `candlecast up` serves the
    site and sets the variable for its worker, and the CLI sets it for its own flow runs.
    """
    base = os.environ.get("CANDLECAST_DATA_DOCS_URL")
    marker = "/data_docs/local_site/"
    if not base or marker not in url:
        return url
    return base.rstrip("/") + "/" + url.split(marker, 1)[1]


def _headline(f: Mapping[str, Any]) -> str:
    cols = f" on {f['columns']}" if f["columns"] else ""
    count = f": {f['unexpected_count']} unexpected" if f["unexpected_count"] is not None else ""
    what = f" ({f['description']})" if f.get("description") else ""
    return f"{f['expectation']}{cols}{count}{what}"


def _cell(key: str, value: Any) -> str:
    if key == "timestamp" and isinstance(value, int):
        return f"{value} ({pd.Timestamp(value, unit='ms', tz='UTC'):%Y-%m-%d %H:%M})"
    return "-" if value is None else str(value)


def format_row(row: Mapping[str, Any]) -> str:
    """One offending row on one line, its open time also in UTC."""
    return "  ".join(f"{k}={_cell(k, v)}" for k, v in row.items())


def _observed(sample: Any) -> str:
    """An aggregate's observed value and, for gaps, the largest holes; anything else shortened."""
    if isinstance(sample, Mapping) and {"missing", "extra"} <= set(sample):
        return f"missing columns: {sample['missing']}; extra columns: {sample['extra']}; expected {sample['expected']}"
    if not isinstance(sample, Mapping) or "observed" not in sample:
        return _short(sample)
    text = f"observed: {sample['observed']}"
    details = sample.get("details") or {}
    if details.get("largest"):
        holes = ", ".join(f"{g['from']}..{g['to']} ({g['missing']})" for g in details["largest"])
        text += f"; {details['gaps']} gaps, {details['missing']} missing candles; largest: {holes}"
    return text


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
