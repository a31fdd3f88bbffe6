"""`make ui-check`: open the four UIs in a headless browser and check each shows the result first.

Runs on the state `make demo` left (CANDLECAST_HOME, else .candlecast): starts `candlecast up` on free
ports unless the stack already runs there, registers the demo config's deployments, then, in
chromium driven by Playwright,

- MLflow: the experiment's result view lists the parent run with its gate verdict and gate ratio;
- optuna-dashboard: the study's page names its objective (rmse_ratio or qlike_ratio, not "Objective 0");
- Data Docs: each verdict in the index agrees with the page its row links to;
- Prefect: every deployment's name is shown whole, with a schedule.

Screenshots go to <state>/ui-check/ (printed). Exit 0 when every check passes, 1 when one fails, 2
when it cannot run (no demo state, no browser). Playwright lives in its own venv (.venv-ui, made by
the Makefile): the project's lock does not carry it, and its own browser download is not needed
(CHROMIUM, default /usr/bin/chromium, e.g. Debian's `apt-get install chromium`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / ".venv" / "bin" / "candlecast"
CONFIG = REPO / "configs" / "demo.yaml"
SERVICES = ("prefect-server", "mlflow", "optuna-dashboard", "data-docs")
VIEW = "candlecast-result"  # candlecast.registry.tracking.RESULT_VIEW (this venv has no candlecast)
TIMEOUT_MS = 60_000


def main() -> int:
    """Start what is missing, run every check, print the screenshots; the exit code says how it went."""
    home = Path(os.environ.get("CANDLECAST_HOME", REPO / ".candlecast")).resolve()
    if not (home / "mlflow.db").is_file() or not (home / "optuna.db").is_file():
        print(f"no demo state in {home}: run `make demo` first (or set CANDLECAST_HOME)", file=sys.stderr)
        return 2
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        print(f"no chromium at {chromium}: apt-get install chromium, or set CHROMIUM", file=sys.stderr)
        return 2
    env = {**os.environ, "CANDLECAST_HOME": str(home)}
    urls, started = _stack(home, env)
    shots = home / "ui-check"
    shots.mkdir(exist_ok=True)
    failures: list[str] = []
    try:
        deployed = _deploy(env)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            checks = (
                ("mlflow", lambda: _mlflow(page, urls["mlflow"], shots)),
                ("optuna-dashboard", lambda: _optuna(page, urls["optuna-dashboard"], shots)),
                ("data-docs", lambda: _data_docs(page, urls["data-docs"], shots)),
                ("prefect", lambda: _prefect(page, urls["prefect-server"], deployed, shots)),
            )
            for name, check in checks:
                try:
                    print(f"{name}: {check()}")
                except Exception as exc:  # one UI failing must not hide the others' results
                    failures.append(name)
                    page.screenshot(path=str(shots / f"{name}-failed.png"), full_page=True)
                    print(f"{name}: FAILED: {str(exc).splitlines()[0]}")
            browser.close()
    finally:
        if started:
            subprocess.run([str(CLI), "down"], env=env, check=False, capture_output=True)
    print(f"screenshots in {shots}:")
    for path in sorted(shots.glob("*.png")):
        print(f"  {path.name}")
    return 1 if failures else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running_urls(home: Path) -> dict[str, str]:
    urls = {}
    for name in SERVICES:
        record = home / "stack" / f"{name}.json"
        if record.is_file():
            urls[name] = json.loads(record.read_text()).get("url") or ""
    return urls


def _stack(home: Path, env: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The UIs' URLs: the stack that runs on this state, else one started here (True: stop it afterwards)."""
    urls = _running_urls(home)
    if set(urls) == set(SERVICES) and _answers(urls["mlflow"]):
        return urls, False
    flags = ("prefect", "mlflow", "worker-health", "dashboard", "docs")
    ports = {f"--{flag}-port": str(_free_port()) for flag in flags}
    argv = [str(CLI), "up", *(x for pair in ports.items() for x in pair)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"`candlecast up` failed:\n{done.stdout}{done.stderr}")
    return _running_urls(home), True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.split("#")[0], timeout=5):
            return True
    except OSError:
        return False


def _deploy(env: dict[str, str]) -> list[str]:
    """Register the demo config's deployments on the stack's server; their titles as `deploy` prints them."""
    done = subprocess.run(
        [str(CLI), "deploy", "--config", str(CONFIG)], env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"`candlecast deploy` failed:\n{done.stdout}{done.stderr}")
    names = re.findall(r"^\s+candlecast-[\w-]+/([\w.-]+)\s", done.stdout, re.M)
    if not names:
        raise SystemExit(f"`candlecast deploy` listed no deployment:\n{done.stdout}")
    return names


def _api(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def _mlflow(page: Page, ui_url: str, shots: Path) -> str:
    """The result view: a column for the gate's verdict and one for its ratio, with the parent run's values."""
    base = ui_url.split("#")[0].rstrip("/")
    experiments = _api(base, "/api/2.0/mlflow/experiments/search", {"max_results": 1000})["experiments"]
    ids = [e["experiment_id"] for e in experiments if any(t["key"].endswith(VIEW) for t in e.get("tags", []))]
    if not ids:
        raise AssertionError(f"no experiment has the {VIEW} view: was the demo trained with this code?")
    runs = _api(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": ids[:1], "filter": "tags.gate != ''"})
    run = runs["runs"][0]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    gate_metric = "rmse_ratio" if "rmse_ratio" in metrics else "qlike_ratio"
    page.goto(f"{base}/#/experiments/{ids[0]}/runs?workflowType=machine_learning")
    expect(page.get_by_role("columnheader", name=re.compile("Run Name")).first).to_be_visible()
    _close_assistant(page)
    page.screenshot(path=str(shots / "mlflow-default-view.png"))
    page.goto(f"{base}/#/experiments/{ids[0]}/runs?workflowType=machine_learning&viewStateShareKey={VIEW}")
    expect(page.get_by_role("columnheader", name=re.compile(rf"\b{gate_metric}\b")).first).to_be_visible()
    expect(page.get_by_role("columnheader", name=re.compile(r"\bgate\b")).first).to_be_visible()
    ratio = f"{metrics[gate_metric]:.4g}"[:5]  # the table rounds: match the leading digits
    expect(page.get_by_role("gridcell", name=re.compile(f"^{re.escape(ratio)}")).first).to_be_visible()
    expect(page.get_by_role("gridcell", name=tags["gate"], exact=True).first).to_be_visible()
    page.screenshot(path=str(shots / "mlflow-result-view.png"))
    page.goto(f"{base}/#/experiments/{ids[0]}/runs/{run['info']['run_id']}?workflowType=machine_learning")
    expect(page.get_by_text(tags["decision"]).first).to_be_visible()  # the description, above everything else
    expect(page.get_by_role("link", name=VIEW).first).to_be_visible()
    page.screenshot(path=str(shots / "mlflow-run-page.png"))
    return f"the {VIEW} view shows gate={tags['gate']} and {gate_metric}={metrics[gate_metric]:.4f} as columns"


def _close_assistant(page: Page) -> None:
    """MLflow 3.17 opens an assistant panel beside the runs table on a first visit: close it for the screenshot."""
    close = page.locator("button[aria-label*='lose']").filter(visible=True)
    if close.count():
        close.first.click()


def _optuna(page: Page, ui_url: str, shots: Path) -> str:
    """The newest study's page names the objective and shows naive's score as a user attribute."""
    page.goto(ui_url)
    link = page.locator("a[href*='/dashboard/studies/']").first
    expect(link).to_be_visible()
    link.click()
    objective = re.compile(r"^(rmse_ratio|qlike_ratio)$")
    expect(page.get_by_text(objective).first).to_be_visible()
    if page.get_by_text("Objective 0").count():
        raise AssertionError('the study page still says "Objective 0"')
    page.screenshot(path=str(shots / "optuna-study.png"), full_page=True)
    name = (page.get_by_text(objective).first.text_content() or "").strip()  # an SVG axis title: no inner_text
    expect(page.get_by_text(re.compile(r"^naive_(rmse|qlike)_ratio$")).first).to_be_visible()
    return f"the study names its objective {name} and lists naive_{name} = 1.0"


def _data_docs(page: Page, ui_url: str, shots: Path) -> str:
    """Each distinct verdict of the index: its page's status says the same."""
    page.goto(ui_url)
    page.screenshot(path=str(shots / "data-docs-index.png"), full_page=True)
    rows = page.locator("tr:has(a[href^='validations/'])")
    seen: dict[str, str] = {}
    for i in range(rows.count()):
        verdict = rows.nth(i).locator("td").nth(2).inner_text().strip()
        seen.setdefault(verdict, str(rows.nth(i).locator("a").get_attribute("href")))
    if not seen:
        raise AssertionError("the index lists no validation")
    status = {"passed": "Succeeded", "passed with warnings": "Passed with warnings", "FAILED": "Failed"}
    base = ui_url.rsplit("/", 1)[0]
    for verdict, href in seen.items():
        page.goto(f"{base}/{href}")
        overview = page.locator("#section-1-content-block-1-subheader")
        expect(overview).to_contain_text(f"Status: {status[verdict]}")
        name = verdict.replace(" ", "-").lower()
        page.screenshot(path=str(shots / f"data-docs-{name}.png"), full_page=False)
        if re.search(r"\d\.\d+e\+1[23]", page.content()):
            raise AssertionError(f"{href} shows a raw epoch number")
        timestamps = page.locator("table").filter(has_text="candle grid")  # the custom expectation, in words
        expect(timestamps).to_be_visible()
        timestamps.screenshot(path=str(shots / f"data-docs-{name}-timestamp-checks.png"))
    return f"index rows and pages agree: {', '.join(sorted(seen))}"


def _prefect(page: Page, ui_url: str, deployed: list[str], shots: Path) -> str:
    """The deployments list shows every title whole and a schedule rather than only "+1"."""
    page.goto(f"{ui_url.rstrip('/')}/deployments")
    for name in deployed:
        cell = page.get_by_text(name, exact=True).first
        expect(cell).to_be_visible()
        if cell.evaluate("e => e.scrollWidth > e.clientWidth"):
            raise AssertionError(f"the deployment name {name} is cut")
    page.screenshot(path=str(shots / "prefect-deployments.png"), full_page=True)
    tags = page.locator(".deployment-schedule-tags")
    shown = [tags.nth(i).inner_text().strip() for i in range(tags.count())]
    if not any(shown) or any(re.fullmatch(r"\+\d+", text) for text in shown):
        raise AssertionError(f"the schedules column shows {shown}")
    page.get_by_text(deployed[0], exact=True).first.click()
    slug = page.get_by_text(re.compile(r"^(hourly at :\d\d|daily at [\d:]+|weekly, \w+ [\d:]+) UTC$")).first
    expect(slug).to_be_visible()
    page.screenshot(path=str(shots / "prefect-deployment-page.png"))
    listed = ", ".join(x for x in shown if x)
    return f"{len(deployed)} deployments named whole ({', '.join(deployed)}); schedules {listed}; {slug.inner_text()}"


if __name__ == "__main__":
    sys.exit(main())
