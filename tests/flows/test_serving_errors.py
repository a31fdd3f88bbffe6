"""`mlflow models serve` of a candlecast model answers a request it cannot forecast with the reason, not a traceback.

Before the fix a request with 10 candles got HTTP 400 whose JSON body held the server's full Python
traceback under a generic message. The model here is a real bundle (one epoch on synthetic candles),
logged as the pyfunc the registry ships and served by MLflow's own scoring server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

import mlflow
import pytest

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.deployments.stack import free_port
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import series_features
from candlecast.features.windows import SeriesArrays
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.splits import walk_forward
from candlecast.registry.aliases import log_bundle
from candlecast.registry.bundle import BundleSpec, ModelBundle

pytestmark = pytest.mark.slow

HOUR = 3_600_000
FC = FeatureConfig(lookback=12, horizon=4, vol_window=12)
QUANTILES = [0.1, 0.9]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A one-epoch model logged as candlecast's pyfunc and served on 127.0.0.1; yields (url, candles)."""
    root = tmp_path_factory.mktemp("serving-errors")
    candles = synthetic_candles("BTC/USDT", 1_704_067_200_000, 800, seed=3)
    series = SeriesArrays.from_frame("btc", series_features(candles, FC, "1h"), FC.horizon)
    series.mark_windows(FC.lookback, HOUR)
    fold = walk_forward(int(series.timestamps[0]), int(series.timestamps[-1]), HOUR, 20, 1, 100, 100, 100)[0]
    train = TrainConfig(max_epochs=1, threads=1)
    model = NeuralForecaster("lstm", {"hidden_size": 8}, FC.lookback, FC.horizon, train, QUANTILES)
    model.fit([series.until(fold.val.end)], fold)
    rows = series.sample_rows(fold.val)
    point, bounds = model.forecast(series.inputs_only(), rows)
    spec = BundleSpec(
        model_name="lstm", hparams={"hidden_size": 8}, features=FC.model_dump(mode="json"), timeframe="1h",
        scaler=asdict(model.result.scaler), columns=series.columns, quantiles=QUANTILES,
        calibration=asdict(Calibration.fit(series.targets[rows], point, bounds, 0.8)),
    )  # fmt: skip
    bundle_dir = ModelBundle(spec, model.result.model).save(root / "bundle")
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    # set_tracking_uri exports MLFLOW_TRACKING_URI, which every later Settings() in this process would read
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking)
    try:
        experiment = mlflow.create_experiment("serving-errors", artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            uri = log_bundle(bundle_dir, candles.tail(200).reset_index(drop=True), "BTC/USDT")
    finally:
        if exported is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = exported
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"MLFLOW_TRACKING_URI": tracking, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1"]
    proc = subprocess.Popen(
        [*argv, "-p", str(port), "-w", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_until_up(proc, f"http://127.0.0.1:{port}/ping")
        yield f"http://127.0.0.1:{port}/invocations", candles
    finally:
        proc.terminate()
        proc.wait(30)


def _wait_until_up(proc: subprocess.Popen, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            time.sleep(1)
    pytest.fail(f"mlflow models serve did not answer {url}")


def _post(url: str, frame) -> tuple[int, dict]:
    body = json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_too_few_candles_is_a_400_with_the_one_line_reason(served):
    url, candles = served
    status, body = _post(url, candles.tail(10))
    assert status == 400
    assert body["error_code"] == "BAD_REQUEST"
    assert "needs at least" in body["message"] and "got 10" in body["message"]
    assert "\n" not in body["message"] and "Traceback" not in json.dumps(body)
    assert "stack_trace" not in body


def test_enough_candles_still_forecast(served):
    url, candles = served
    status, body = _post(url, candles.tail(200))
    assert status == 200 and len(body["predictions"]) == FC.horizon
