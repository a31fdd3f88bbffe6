"""Deployments and the stack runner, without a Prefect server: specs, parameters, CLI errors, process lifecycle."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.deployments import stack
from candlecast.deployments.cli import app
from candlecast.deployments.definitions import EXCHANGE_TAG, SPECS, build, deployment_title, schedule

TINY = {"name": "unit", "data": {"symbols": ["ETH/USDT"], "history_days": 5}}


@pytest.fixture(scope="module")
def deployments():
    return {d.flow_name.removeprefix("candlecast-"): d for d in build(RunConfig.model_validate(TINY), work_pool="p")}


def test_one_deployment_per_spec_with_a_utc_schedule_and_module_entrypoint(deployments):
    assert set(deployments) == {s.key for s in SPECS}
    for s in SPECS:
        d = deployments[s.key]
        assert d.name == f"{s.key}-unit" and d.work_pool_name == "p"
        assert d.entrypoint == s.flow.replace(":", "."), "module entrypoints run wherever candlecast is installed"
        made = [(x.schedule.interval, x.schedule.anchor_date, x.schedule.timezone, x.slug) for x in d.schedules]
        want = schedule(s.cron) if s.cron else None
        assert made == ([(want.interval, want.anchor_date, "UTC", want.slug)] if want else [])
    assert {k for k, d in deployments.items() if d.schedules} >= {"ingest", "predict", "train", "score"}


def _cron_matches(cron: str, when: datetime) -> bool:
    fields = (when.minute, when.hour, when.day, when.month, (when.weekday() + 1) % 7)  # cron: 0 = Sunday
    return all(f == "*" or int(f) == v for f, v in zip(cron.split(), fields, strict=True))


def test_each_schedule_runs_exactly_when_its_cron_does_and_says_when():
    """The UI shows an interval ("Hourly") where a cron's text overflows its column; the runs must not move."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for s in (s for s in SPECS if s.cron):
        sch = schedule(s.cron)
        step = timedelta(minutes=1)
        minutes = (start + i * step for i in range(int(timedelta(days=15) / step)))
        by_cron = [t for t in minutes if _cron_matches(s.cron, t)]
        by_interval = [t for t in by_cron if (t - sch.anchor_date) % sch.interval == timedelta(0)]
        gaps = {b - a for a, b in zip(by_cron, by_cron[1:], strict=False)}
        assert len(by_cron) >= 2 and by_interval == by_cron and gaps == {sch.interval}, s.key
        assert sch.slug.startswith(("hourly at :", "daily at ", "weekly, ")) and sch.slug.endswith(" UTC")
    assert schedule("2 * * * *").slug == "hourly at :02 UTC"
    with pytest.raises(ValueError, match="only hourly, daily or weekly"):
        schedule("0 3 1 * *")


def test_deployment_titles_are_short_and_distinct():
    demo = RunConfig.model_validate(TINY | {"name": "candlecast-demo"})
    titles = [deployment_title(s, demo) for s in SPECS]
    assert titles[0] == "ingest-demo" and len(set(titles)) == len(titles)
    assert max(map(len, titles)) <= 20, "the Prefect UI's list cuts longer titles"


def test_the_config_parameter_validates_back_to_the_same_run_config(deployments):
    cfg = RunConfig.model_validate(TINY)
    for s in SPECS:
        params = s.load().validate_parameters(deployments[s.key].parameters)
        assert params["config"] == cfg
    schema = deployments["ingest"]._parameter_openapi_schema.model_dump()
    assert schema["definitions"]["RunConfig"]["additionalProperties"] is False, "the UI form refuses unknown keys"


def test_retries_for_workers_and_served_flows_and_one_training_at_a_time(deployments):
    ingest, train = deployments["ingest"], deployments["train"]
    assert ingest.job_variables["env"]["PREFECT_FLOWS_DEFAULT_RETRIES"] == "2"
    assert train.job_variables["env"]["PREFECT_FLOWS_DEFAULT_RETRIES"] == "0"
    served = {d.flow_name: d for d in build(RunConfig.model_validate(TINY))}
    assert served["candlecast-ingest"].job_variables == {}
    assert train.concurrency_limit == 1 and train.concurrency_options.collision_strategy == "ENQUEUE"


def test_exchange_requests_carry_the_limited_tag():
    from candlecast.tasks.ingest import fetch_candles

    assert EXCHANGE_TAG in fetch_candles.tags


def test_serve_without_a_server_says_why_schedules_need_one():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no URL, even beside the flow tests' server
        result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "ephemeral server cannot run schedules" in " ".join(result.output.split())


def test_deploy_to_a_dead_server_names_it(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{stack.free_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        result = CliRunner().invoke(app, ["deploy"])
    assert result.exit_code == 2 and url in " ".join(result.output.split())


def _web(port: int) -> stack.Service:
    argv = ["python", "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    return stack.Service("web", argv, {}, f"http://127.0.0.1:{port}/")


def test_stack_starts_records_and_stops_only_its_processes(tmp_path: Path):
    port = stack.free_port()
    state = tmp_path / "stack"
    stack.up([_web(port)], state)
    pid = stack.running(state, "web")
    assert pid and stack.healthy(f"http://127.0.0.1:{port}/")
    with pytest.raises(stack.StackError, match="already running"):
        stack.start(_web(port), state)
    assert stack.down(state) == ["web"]
    assert not stack.healthy(f"http://127.0.0.1:{port}/") and not (state / "web.json").exists()
    assert stack.down(state) == []


def test_a_service_that_dies_fails_with_its_log_and_stops_the_rest(tmp_path: Path):
    state, port = tmp_path / "stack", stack.free_port()
    crash = stack.Service(
        "crash", [Path(sys.executable).name, "-c", "print('no db'); raise SystemExit(3)"], {}, "http://127.0.0.1:9/"
    )
    with pytest.raises(stack.StackError, match=r"crash exited with 3[\s\S]*no db"):
        stack.up([_web(port), crash], state)
    assert stack.running(state, "web") is None and not list(state.glob("*.json"))


def test_up_refuses_busy_ports(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("CANDLECAST_HOME", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        result = CliRunner().invoke(app, ["up", "--mlflow-port", str(busy)])
    assert result.exit_code == 2 and str(busy) in result.output
    assert not (tmp_path / "stack").exists()


def test_prefect_yaml_matches_the_definitions():
    import yaml
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    from candlecast.deployments.triggers import event_triggers

    triggers: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    entries = {d["entrypoint"]: d for d in doc["deployments"]}
    for s in SPECS:
        module, attr = s.flow.split(":")
        d = entries.pop(f"{module.removeprefix('candlecast.').replace('.', '/')}.py:{attr}")
        want = schedule(s.cron) if s.cron else None
        made = [(x["interval"], x["anchor_date"], x["timezone"], x["slug"]) for x in d.get("schedules", [])]
        at = want.anchor_date.strftime("%Y-%m-%dT%H:%M:%SZ") if want else ""
        assert made == ([(want.interval.total_seconds(), at, "UTC", want.slug)] if want else []), s.key
        assert d["work_pool"]["job_variables"]["env"] == s.retry_env()
        assert d.get("concurrency_limit", {}).get("limit") == s.max_running
        assert d["description"] == s.description
        # read as `prefect deploy` reads them, for the config it deploys (null: the defaults)
        made_triggers = [triggers.validate_python(t).model_dump() for t in d.get("triggers", [])]
        assert made_triggers == [t.model_dump() for t in event_triggers(s.key, RunConfig())], s.key
    assert not entries, f"prefect.yaml deploys flows the definitions do not: {list(entries)}"


def test_the_stack_serves_the_data_docs_site_it_links_to(tmp_path: Path):
    port = stack.free_port()
    backends = stack.Backends(home=tmp_path)
    backends.docs_dir.mkdir(parents=True)
    (backends.docs_dir / "index.html").write_text("<h1>candlecast Data Docs</h1>", encoding="utf-8")
    docs = next(s for s in stack.services(stack.StackConfig(docs_port=port), backends) if s.name == "data-docs")
    assert docs.ui_url == f"http://127.0.0.1:{port}/index.html"
    state = tmp_path / "stack"
    stack.up([docs], state)
    try:
        import urllib.request

        with urllib.request.urlopen(docs.ui_url, timeout=5) as resp:
            assert b"candlecast Data Docs" in resp.read()
    finally:
        assert stack.down(state) == ["data-docs"]
    assert "data-docs" not in stack.commands(stack.StackConfig.compose())


def test_the_mlflow_url_opens_the_model_training_view():
    mlflow = next(s for s in stack.services(stack.StackConfig(), stack.Backends(home=Path("/x"))) if s.name == "mlflow")
    assert mlflow.ui_url == "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    assert mlflow.health_url == "http://127.0.0.1:5000/health"


def test_predict_and_train_run_on_the_live_loops_events(deployments):
    predict, train = deployments["predict"].triggers, deployments["train"].triggers
    assert [t.expect for t in predict] == [{"candlecast.candles.stored"}]
    assert predict[0].match.model_dump()["prefect.resource.id"] == ["candlecast.series.binance.ETH/USDT.1h"]
    assert set(predict[0].parameters) == {"symbol", "first", "cutoff"}  # the config stays the deployment's own
    assert [t.expect for t in train] == [{"candlecast.model.degraded"}]
    assert train[0].parameters == {"retrain_for": "{{ event.payload.version }}"}
    assert not deployments["ingest"].triggers  # scheduled only
