"""Data Docs that work offline, name their series and stay small.

GX's pages load Bootstrap, jQuery and Font Awesome from CDNs: offline they render unstyled and the
index page, drawn by a jQuery table plugin, stays blank. After each validation this module

- rewrites GX's pages to be self-contained: no remote script, stylesheet or image; a local stylesheet
  (``static/styles/candlecast-offline.css``, a small subset of Bootstrap's layout and colors) instead;
- names the data asset in each result page (GX prints "Data asset: None" for in-memory frames);
- says on a result page what the index row linking to it says: a result whose only failures are
  warnings is "Passed with warnings" with a warning sign on those rows (GX heads it "Failed"), and
  an observed epoch-millisecond time reads as a UTC date (GX prints 1.704279600e+12);
- keeps the newest ``keep`` results of each suite and series, in the store and the site;
- writes its own static ``index.html``: every kept result grouped by series, newest first.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OFFLINE_CSS = "static/styles/candlecast-offline.css"
DEFAULT_KEEP = 20
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>.*?</script>", re.I | re.S)  # jQuery calls: dead offline
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", re.I)
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>", re.I)
_REMOTE_CSS_URL = re.compile(r"url\(['\"]?https?://[^)]*\)", re.I)
_FAVICON = re.compile(r"<link\b[^>]*\brel=\"shortcut icon\"[^>]*>", re.I)  # GX's is one folder short on results
_NO_ASSET = "Data asset: None<br>"
_FAILED_ICON = '<i class="fas fa-times text-danger" '
_WARN_ICON = '<i class="fas fa-exclamation-triangle cc-warn" '
_FAILED_STATUS = _FAILED_ICON + 'aria-hidden="true"></i> Failed'
_ROW = re.compile(r"<tr>.*?</tr>", re.S)
# an observed value cell (the third of a result row) holding one number
_OBSERVED = re.compile(
    r'(<td id="section-\d+-content-block-\d+-cell-\d+-3" ><div class="show-scrollbars">)([-+.\deE]+)(</div>)'
)
_EPOCH_MS = (946_684_800_000, 4_102_444_800_000)  # 2000-01-01 .. 2100-01-01: a number there is a candle time
FAVICON = "static/images/favicon.ico"

CSS = """/* candlecast: the part of Bootstrap 4 that GX's Data Docs use, so they render with no network. */
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 14px; color: #212529;
  margin: 0; line-height: 1.45; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
.container-fluid { width: 100%; box-sizing: border-box; padding: 0 16px; }
.row { display: flex; flex-wrap: wrap; margin: 0 -8px; }
[class*="col-"] { box-sizing: border-box; padding: 0 8px; flex: 0 0 100%; max-width: 100%; }
@media (min-width: 768px) {
  .col-md-2 { flex: 0 0 16.66%; max-width: 16.66%; } .col-md-10 { flex: 0 0 83.33%; max-width: 83.33%; }
  .col-6 { flex: 0 0 50%; max-width: 50%; } .d-md-block { display: block; } .d-md-inline-flex { display: inline-flex; }
}
.navbar { display: flex; align-items: center; padding: 8px 24px; border-bottom: 1px solid #dee2e6;
  background: #fff; min-height: 40px; height: auto !important; }
.sticky-top, .sticky { position: sticky; top: 0; z-index: 2; background: #fff; }
.breadcrumb { display: flex; flex-wrap: wrap; list-style: none; padding: 0; margin: 0; gap: 4px; }
.breadcrumb-item + .breadcrumb-item::before { content: "/"; padding: 0 6px; color: #6c757d; }
.nav { display: flex; flex-wrap: wrap; list-style: none; padding: 0; margin: 0; }
.nav-pills, .ge-navigation-sidebar-content { flex-direction: column; }
.nav-link { display: block; padding: 3px 8px; }
.table { width: 100%; border-collapse: collapse; margin-bottom: 12px; }
.table th, .table td { border-top: 1px solid #dee2e6; padding: 5px 8px; vertical-align: top; text-align: left; }
.table-bordered th, .table-bordered td { border: 1px solid #dee2e6; }
.table-responsive { overflow-x: auto; }
.card { border: 1px solid #dee2e6; border-radius: 6px; margin-bottom: 12px; background: #fff; }
.card-header { padding: 8px 12px; background: #f7f7f9; border-bottom: 1px solid #dee2e6; font-weight: 600; }
.card-body { padding: 10px 12px; }
.collapse { display: block; }
.d-none { display: none; } .d-flex { display: flex; } .float-left { float: left; }
.alert { padding: 8px 12px; border-radius: 6px; margin-bottom: 12px; border: 1px solid transparent; }
.alert-secondary { background: #e2e3e5; } .alert-warning { background: #fff3cd; }
.badge { display: inline-block; padding: 2px 6px; border-radius: 4px; font-size: 12px; font-weight: 600; }
.badge-secondary { background: #6c757d; color: #fff; } .badge-warning { background: #ffc107; }
.bg-light { background: #f8f9fa; } .rounded { border-radius: 6px; }
.text-danger { color: #c82333; } .text-success { color: #1e7e34; }
.h6 { font-weight: 600; } .lead { font-size: 16px; }
.btn, .btn-group { display: none; } /* filters and toggles need jQuery */
.fas { font-style: normal; font-weight: 700; }
.fa-check-circle::before, .fa-check::before { content: "\\2713"; }
.fa-times::before, .fa-times-circle::before { content: "\\2717"; }
.fa-exclamation-triangle::before { content: "!"; }
.p-2 { padding: 8px; } .p-3 { padding: 12px; } .m-2 { margin: 8px; } .mb-2 { margin-bottom: 8px; }
.mb-4 { margin-bottom: 24px; } .mt-3 { margin-top: 12px; } .pt-4 { padding-top: 24px; } .pb-4 { padding-bottom: 24px; }
.ge-section { clear: both; margin-bottom: 24px; }
.cc-pass { color: #1e7e34; font-weight: 600; } .cc-fail { color: #c82333; font-weight: 600; }
.cc-warn { color: #8a6d00; font-weight: 600; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
"""


def make_offline(page: Path, site_root: Path, series: str | None = None, result: dict | None = None) -> None:
    """Rewrite one GX page in place: no remote asset, the local stylesheet, the data asset named.

    ``result`` is the page's validation result (its JSON dict): the page then states its verdict as
    the index does and shows observed times as dates.
    """
    text = page.read_text(encoding="utf-8")
    css = os.path.relpath(site_root / OFFLINE_CSS, page.parent).replace(os.sep, "/")
    for pattern in (_REMOTE_SCRIPT, _INLINE_SCRIPT, _REMOTE_LINK, _REMOTE_IMG):
        text = pattern.sub("", text)
    text = _REMOTE_CSS_URL.sub("none", text)
    icon = os.path.relpath(site_root / FAVICON, page.parent).replace(os.sep, "/")
    text = _FAVICON.sub(f'<link rel="shortcut icon" href="{icon}" type="image/x-icon"/>', text)
    if f'href="{css}"' not in text:
        text = text.replace("</head>", f'<link rel="stylesheet" href="{css}"/>\n</head>', 1)
    if series:
        text = text.replace(_NO_ASSET, f"Data asset: {html.escape(series)}<br>")
    if result is not None:
        text = _OBSERVED.sub(_as_date, _mark_warnings(text, result))
    page.write_text(text, encoding="utf-8")


def _mark_warnings(text: str, result: dict) -> str:
    """Failed warning rows get a warning sign; a result with no critical failure is "Passed with warnings"."""
    warned = [r for r in result.get("results", []) if not r.get("success") and _severity(r) == "warning"]
    described = {str((r.get("expectation_config") or {}).get("description") or "") for r in warned} - {""}

    def mark(row: re.Match) -> str:
        block = row.group(0)
        return block.replace(_FAILED_ICON, _WARN_ICON) if any(d in block for d in described) else block

    text = _ROW.sub(mark, text)
    if verdict(result) == WARNINGS:
        text = text.replace(_FAILED_STATUS, _WARN_ICON + 'aria-hidden="true"></i> Passed with warnings')
    return text


def _as_date(cell: re.Match) -> str:
    try:
        value = float(cell.group(2))
    except ValueError:
        return cell.group(0)
    if not _EPOCH_MS[0] <= value < _EPOCH_MS[1]:
        return cell.group(0)
    when = datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{cell.group(1)}{when}{cell.group(3)}"


def write_stylesheet(site_root: Path) -> None:
    """The offline stylesheet, once per site."""
    path = site_root / OFFLINE_CSS
    if not path.exists() or path.read_text(encoding="utf-8") != CSS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CSS, encoding="utf-8")


def prune(store_root: Path, site_root: Path, suite: str, run_name: str, keep: int = DEFAULT_KEEP) -> list[str]:
    """Keep the newest ``keep`` results of one suite and series (run name), in the store and the site."""
    folder = store_root / suite / run_name
    runs = sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True) if folder.is_dir() else []
    dropped = runs[keep:]
    for run_time in dropped:
        for root in (store_root, site_root / "validations"):
            shutil.rmtree(root / suite / run_name / run_time, ignore_errors=True)
    return dropped


def results(store_root: Path) -> list[dict[str, Any]]:
    """Every stored validation result, as the index lists it: suite, series, time, verdict, counts, page path."""
    rows = []
    for path in store_root.glob("*/*/*/*.json"):
        suite, run_name, run_time = path.parts[-4:-1]
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        stats = result.get("statistics", {})
        rows.append(
            {
                "suite": suite, "series": run_name, "run_time": run_time, "verdict": verdict(result),
                "evaluated": stats.get("evaluated_expectations"), "failed": stats.get("unsuccessful_expectations"),
                "page": f"validations/{suite}/{run_name}/{run_time}/{path.stem}.html",
            }
        )  # fmt: skip
    return sorted(rows, key=lambda r: (r["series"], r["run_time"]), reverse=True)


def _severity(result: dict[str, Any]) -> str:
    """A failed expectation's severity as the contract sets it (expectations/failures.py): critical unless marked."""
    config = result.get("expectation_config") or {}
    return str(config.get("severity") or (config.get("meta") or {}).get("severity") or "critical")


PASSED, WARNINGS, FAILED = "passed", "passed with warnings", "FAILED"
_VERDICT_CLASS = {PASSED: "cc-pass", WARNINGS: "cc-warn", FAILED: "cc-fail"}


def verdict(result: dict[str, Any]) -> str:
    """What `candlecast validate` says of a result: only a critical failure refuses a batch; warnings alone pass."""
    if result.get("success"):
        return PASSED
    failed = [r for r in result.get("results", []) if not r.get("success")]
    return FAILED if any(_severity(r) != "warning" for r in failed) else WARNINGS


def write_index(store_root: Path, site_root: Path) -> Path:
    """A static index of every kept result, grouped by series, newest first (replaces GX's jQuery index)."""
    by_series: dict[str, list[dict[str, Any]]] = {}
    for row in results(store_root):
        by_series.setdefault(row["series"], []).append(row)
    parts = [
        "<h1>candlecast Data Docs</h1>",
        "<p>Each check of the candle and feature contracts, newest first. A warning (e.g. the freshness of a"
        " live series) does not refuse a batch; a critical failure does.</p>",
    ]
    for series in sorted(by_series):
        parts.append(f"<h2>{html.escape(series)}</h2>")
        parts.append(
            "<table class='table'><tr><th>checked (UTC)</th><th>suite</th><th>verdict</th><th>failed</th></tr>"
        )
        for r in by_series[series]:
            shown = f"<span class='{_VERDICT_CLASS[r['verdict']]}'>{r['verdict']}</span>"
            when = _readable_time(r["run_time"])
            link = f"<a href='{html.escape(r['page'])}'>{when}</a>"
            failed = f"{r['failed']} of {r['evaluated']}"
            parts.append(f"<tr><td>{link}</td><td>{html.escape(r['suite'])}</td><td>{shown}</td><td>{failed}</td></tr>")
        parts.append("</table>")
    page = site_root / "index.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>candlecast Data Docs</title>"
        f"<link rel='stylesheet' href='{OFFLINE_CSS}'/><link rel='shortcut icon' href='{FAVICON}'/></head>"
        "<body><div class='container-fluid pt-4'>" + "\n".join(parts) + "</div></body></html>",
        encoding="utf-8",
    )
    return page


def _readable_time(run_time: str) -> str:
    """GX's run folder name '20261130T165825.954126Z' as '2026-11-30 16:58:25'."""
    match = re.match(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", run_time)
    return "{}-{}-{} {}:{}:{}".format(*match.groups()) if match else run_time
