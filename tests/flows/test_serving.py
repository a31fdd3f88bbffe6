"""The champion in use: batch prediction (parquet and SQL), live scoring, both servers.

`mlflow models serve` answers raw candles; `candlecast serve-model` answers batches, refuses bad requests
with a 400 and follows @champion without a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from candlecast.config import RunConfig
from candlecast.data.candle_store import CandleStore
from candlecast.deployments.stack import free_port
from candlecast.registry import aliases, tracking
from candlecast.registry.loading import load_version
from candlecast.registry.prediction import ChampionRefused, predict_champion
from candlecast.registry.prediction_store import prediction_store
from candlecast.registry.scoring import score_forecasts
from candlecast.settings import Settings

pytestmark = pytest.mark.slow
JSON, ARROW = "application/json", "application/vnd.apache.arrow.stream"

TINY = {
    "name": "serving",
    "data": {"history_days": 45},
    "features": {"lookback": 24, "horizon": 6, "vol_window": 12},
    "sweep": {"n_trials": 1, "max_epochs": 1},
    "train": {"max_epochs": 1, "batch_size": 128},
    "promotion": {"model_name": "serving-lstm"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prefect_server):
    """A state folder with ingested candles and a registered @champion (forced if the gate refused)."""
    home = tmp_path_factory.mktemp("serving") / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CANDLECAST_HOME", str(home))
        from candlecast.flows.pipeline import pipeline

        cfg = RunConfig.model_validate(TINY)
        result = pipeline(cfg)
        settings = Settings()
        client = tracking.client(settings)
        if not result["promotion"].promoted:
            client.set_registered_model_alias("serving-lstm", "champion", result["promotion"].version)
        yield cfg, settings, client


def test_predict_is_idempotent_in_parquet_and_sql(trained, tmp_path):
    cfg, settings, _ = trained
    first = predict_champion(settings, cfg)
    before = {p: pd.read_parquet(p) for p in first.files}
    again = predict_champion(settings, cfg)
    assert again.files == first.files  # same cutoff and version -> the same files, replaced
    for path, frame in before.items():
        assert len(pd.read_parquet(path)) == len(frame) == cfg.features.horizon

    sql_cfg = cfg.model_copy(
        update={"predict": cfg.predict.model_copy(update={"store_url": f"sqlite:///{tmp_path}/p.db"})}
    )
    predict_champion(settings, sql_cfg)
    predict_champion(settings, sql_cfg)
    store = prediction_store(settings, sql_cfg.predict.store_url)
    for series in cfg.series:
        rows = store.read_all(series)
        assert len(rows) == cfg.features.horizon  # not doubled by the re-run
        assert {"model_name", "model_version", "run_id", "cutoff", "created_at"} <= set(rows.columns)
        assert store.latest(series)["model_version"].iloc[0] == first.model_version


def test_the_champion_is_refitted_up_to_the_data_cutoff(trained):
    """What ships saw the newest candles: its training ends within horizon + 1 candles of the cutoff."""
    cfg, settings, _ = trained
    spec = mlflow.pyfunc.load_model("models:/serving-lstm@champion").unwrap_python_model().forecaster.spec
    newest = max(CandleStore(settings.candles_dir).last_timestamp(s) for s in cfg.series)
    assert spec.data_cutoff == newest
    assert 0 < spec.data_cutoff - spec.train_end <= (cfg.features.horizon + 1) * 3_600_000
    assert spec.calibration_end <= spec.train_end


def test_champion_for_another_timeframe_or_too_old_is_refused(trained):
    cfg, settings, _ = trained
    four_hour = cfg.model_copy(update={"data": cfg.data.model_copy(update={"timeframe": "4h"})})
    with pytest.raises(ChampionRefused, match="trained on 1h candles"):
        predict_champion(settings, four_hour)
    # the refitted champion was trained up to `horizon` (6) candles before the newest candle: 0.25 days
    strict = cfg.model_copy(update={"predict": cfg.predict.model_copy(update={"max_model_age_days": 0.1})})
    with pytest.raises(ChampionRefused, match="days before the newest stored candle"):
        predict_champion(settings, strict)


def test_scoring_joins_forecasts_with_later_candles(trained):
    cfg, settings, client = trained
    model = mlflow.pyfunc.load_model("models:/serving-lstm@champion")
    version = aliases.alias_version(client, "serving-lstm", "champion")
    run_id = client.get_model_version("serving-lstm", version).run_id
    store, out = CandleStore(settings.candles_dir), prediction_store(settings)
    for series in cfg.series:
        candles = store.read(series)
        past = candles.iloc[:-30]  # a forecast made 30 candles ago, now fully realized
        forecast = model.predict(past.tail(200).reset_index(drop=True)).assign(
            symbol=series.symbol,
            model_name="serving-lstm",
            model_version=version,
            run_id=run_id,
            created_at="2026-01-01T00:00:00+00:00",
        )
        out.write(series, forecast)
    outcome = score_forecasts(settings, cfg)
    assert outcome.scored_rows >= cfg.features.horizon * len(cfg.series)
    live = outcome.by_version[f"serving-lstm v{version}"]
    assert 0 <= live["live_coverage"] <= 1 and live["live_rmse"] > 0 and live["live_naive_rmse"] > 0
    logged = MlflowClient(settings.tracking_uri).get_run(run_id).data.metrics
    assert logged["live_rmse_ratio"] == pytest.approx(live["live_rmse_ratio"])
    assert "rmse_ratio" in logged  # the backtest figure it can be compared with


def test_mlflow_models_serve_answers_raw_candles(trained):
    cfg, settings, _ = trained
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    # the scoring server starts `uvicorn` from PATH: the venv's bin must come first, as after `activate`
    path = f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": path}
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "models",
            "serve",
            "-m",
            "models:/serving-lstm@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
                time.sleep(1)
        store = CandleStore(settings.candles_dir)
        raw = pd.concat([store.read(s).tail(100).assign(symbol=s.symbol) for s in cfg.series], ignore_index=True)
        body = json.dumps({"dataframe_split": json.loads(raw.to_json(orient="split", index=False))}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
        rows = pd.DataFrame(answer["predictions"])
        assert len(rows) == cfg.features.horizon * len(cfg.series)
        assert set(rows["symbol"]) == set(cfg.data.symbols)
        assert (rows["lower"] <= rows["forecast"]).all() and (rows["forecast"] <= rows["upper"]).all()
    finally:
        proc.terminate()
        proc.wait(30)


def _arrow(frame: pd.DataFrame) -> bytes:
    """The frame as an Arrow IPC stream (what serve-model reads under the ARROW content-type)."""
    import pyarrow as pa
    import pyarrow.ipc

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _split(frame: pd.DataFrame) -> dict:
    return json.loads(frame.to_json(orient="split", index=False))


def _call(port: int, path: str, payload: object = None, content_type: str = JSON) -> tuple[int, dict, dict]:
    """Status, headers and JSON body of GET (no payload) or POST (a payload: bytes as they are, else JSON)."""
    data = payload if isinstance(payload, bytes) or payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _wait_for(port: int, proc: subprocess.Popen, version: str | None = None, timeout_s: float = 120) -> dict:
    """/health once it answers (and names ``version``, when given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        try:
            health = _call(port, "/health")[2]
            if version is None or health["version"] == version:
                return health
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    log = proc.communicate(timeout=30)[0].decode()[-3000:]
    pytest.fail(f"serve-model did not answer /health{f' with v{version}' if version else ''} in {timeout_s} s: {log}")


def test_serve_model_answers_batches_refuses_bad_requests_and_follows_the_champion(trained, tmp_path):
    cfg, settings, client = trained
    name = cfg.promotion.model_name  # what serve-model reads from --config
    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY))  # JSON is YAML
    port = free_port()
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.tracking_uri}
    argv = [str(Path(sys.executable).with_name("candlecast")), "serve-model", "--config", str(tmp_path / "tiny.yaml")]
    argv += ["--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--workers", "1", "--reload-seconds", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    first = aliases.alias_version(client, name, "champion")
    try:
        health = _wait_for(port, proc)
        assert (health["model"], health["version"], health["alias"]) == (name, first, "champion")
        assert health["training_stack"] == []  # the serving process imported no torch, Lightning, Optuna, Prefect
        lean = load_version(client, name, first)  # the lean runtime, in this process
        store = CandleStore(settings.candles_dir)
        raw = pd.concat([store.read(s).tail(120).assign(symbol=s.symbol) for s in cfg.series], ignore_index=True)
        one = raw[raw["symbol"] == cfg.data.symbols[0]]

        status, headers, body = _call(port, "/invocations", {"dataframe_split": _split(one.drop(columns="symbol"))})
        assert status == 200 and headers["x-model-version"] == body["model_version"] == first
        pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), lean.predict(one.drop(columns="symbol")))
        expected = lean.predict_many(raw)  # every series in one forward pass, both request forms
        series = [{"symbol": s, "candles": _split(g.drop(columns="symbol"))} for s, g in raw.groupby("symbol")]
        for payload in ({"series": series}, {"dataframe_records": json.loads(raw.to_json(orient="records"))}):
            status, _, body = _call(port, "/invocations", payload)
            assert status == 200
            pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), expected)
        # the same candles, every digit kept, as JSON and as an Arrow IPC stream: the same forecasts to the bit
        exact = {"dataframe_split": raw.to_dict(orient="split", index=False)}
        for payload, content_type in ((json.dumps(exact).encode(), JSON), (_arrow(raw), ARROW)):
            status, _, body = _call(port, "/invocations", payload, content_type)
            assert status == 200
            pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), expected, check_exact=True)
        assert _call(port, "/health")[2]["training_stack"] == []  # reading Arrow brought none of it in

        bad = {
            b"{not json": "not JSON",
            json.dumps({"dataframe_split": _split(one.drop(columns="volume"))}).encode(): "lacks candle columns",
            json.dumps({"dataframe_split": _split(one.tail(10))}).encode(): "needs at least",
            json.dumps({"series": [{"candles": []}]}).encode(): "series[0] must be",
            json.dumps({"inputs": [1, 2]}).encode(): "send dataframe_split",
        }
        for payload, reason in bad.items():
            status, _, body = _call(port, "/invocations", payload)
            assert status == 400 and reason in body["message"] and "\n" not in body["message"], body
        status, _, body = _call(port, "/invocations", b"{not arrow", ARROW)
        assert status == 400 and "not an Arrow IPC stream" in body["message"] and "\n" not in body["message"], body

        # a second version of the same run's model, aliased @champion: served without a restart
        source = client.get_model_version(name, first)
        second = str(client.create_model_version(name, source.source, source.run_id).version)
        client.set_registered_model_alias(name, "champion", second)
        assert _wait_for(port, proc, second, timeout_s=60)["version"] == second
        status, headers, body = _call(port, "/invocations", {"series": series})
        assert status == 200 and headers["x-model-version"] == body["model_version"] == second
        pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), expected)
    finally:
        proc.terminate()
        proc.wait(30)
        client.set_registered_model_alias(name, "champion", first)
