"""The exported network answers as the trained one, and the lean runtime loads nothing of the training stack.

Registration exports the network to ONNX beside its weights (``export_checked``); serving, batch
prediction and the signals run it in onnxruntime (candlecast.forecasting.runtime). Checked on a
two-layer LSTM over real candles (ETH/USDT 1h from ../shared/data, with its synthetic twin always
running): the raw outputs on every test window to 1e-5, the forecast rows to 1e-5, and a fresh
process that forecasts through the runtime and through the pyfunc imports neither torch nor
Lightning, Optuna, Prefect or Great Expectations.
"""

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from candlecast.config import FeatureConfig, TrainConfig
from candlecast.devtools.synthetic import synthetic_candles
from candlecast.features.compute import compute_features, series_features
from candlecast.features.windows import SeriesArrays, WindowDataset
from candlecast.forecasting.calibration import Calibration
from candlecast.forecasting.neural import NeuralForecaster
from candlecast.forecasting.runtime import NETWORK_FILE, ExportedBundle
from candlecast.forecasting.splits import walk_forward
from candlecast.registry.aliases import export_checked
from candlecast.registry.bundle import BundleSpec, ModelBundle
from candlecast.registry.loading import load_forecaster
from tests.conftest import SHARED_DATA

HOUR = 3_600_000
FC = FeatureConfig(lookback=16, horizon=4, vol_window=12, indicators=True, higher_timeframes=["4h"])
HPARAMS = {"hidden_size": 8, "num_layers": 2}
TRAINING_STACK = ["torch", "lightning", "optuna", "prefect", "great_expectations"]
#: and, for the runtime's own loader, what only the registry, training or analysis need (seconds to import)
NOT_LEAN = [*TRAINING_STACK, "mlflow", "sqlalchemy", "alembic", "sklearn", "scipy", "statsforecast"]


@pytest.fixture(scope="module", params=["synthetic", pytest.param("real", marks=pytest.mark.real_data)])
def candles(request) -> pd.DataFrame:
    if request.param == "real":
        return pd.read_csv(SHARED_DATA / "binance" / "binance_ETH-USDT_1h.csv.gz").iloc[-1500:].reset_index(drop=True)
    return synthetic_candles("ETH/USDT", 1_717_200_000_000, 1500, seed=3)


@pytest.fixture(scope="module")
def trained(candles, tmp_path_factory):
    """A two-layer LSTM fitted for one epoch, its bundle saved and exported; the test windows it is judged on."""
    s = SeriesArrays.from_frame("eth", series_features(candles, FC, "1h"), FC.horizon)
    s.mark_windows(FC.lookback, HOUR)
    fold = walk_forward(int(s.timestamps[0]), int(s.timestamps[-1]), HOUR, 24, 1, 200, 200, 200)[0]
    threads = torch.get_num_threads()
    model = NeuralForecaster("lstm", HPARAMS, FC.lookback, FC.horizon, TrainConfig(max_epochs=1, threads=1), [0.1, 0.9])
    model.fit([s.until(fold.val.end)], fold)
    torch.set_num_threads(threads)
    rows = s.sample_rows(fold.val)
    point, bounds = model.forecast(s.inputs_only(), rows)
    spec = BundleSpec(
        model_name="lstm",
        hparams=HPARAMS,
        features=FC.model_dump(mode="json"),
        timeframe="1h",
        scaler=asdict(model.result.scaler),
        columns=s.columns,
        quantiles=[0.1, 0.9],
        calibration=asdict(Calibration.fit(s.targets[rows], point, bounds, 0.8)),
    )
    directory = ModelBundle(spec, model.result.model).save(tmp_path_factory.mktemp("bundle"))
    export_checked(directory, candles.tail(spec.min_candles + 1), "BTC/USDT")  # registration's export and its check
    test_rows = s.sample_rows(fold.test, need_targets=False)
    windows, _ = WindowDataset([s], [test_rows], model.result.scaler, FC.lookback).__getitems__(range(len(test_rows)))
    return directory, windows.numpy()


def test_the_exported_network_answers_as_the_trained_one_on_every_test_window(trained):
    directory, windows = trained
    assert (directory / NETWORK_FILE).is_file()
    lean, torch_side = ExportedBundle.load(directory), ModelBundle.load(directory)
    assert len(windows) > 150
    # the whole test block in one call (the exported batch dimension is dynamic) and one window alone
    np.testing.assert_allclose(lean.network(windows), torch_side.network(windows), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lean.network(windows[:1]), torch_side.network(windows[:1]), rtol=1e-5, atol=1e-5)


def test_the_lean_runtime_forecasts_many_series_as_the_torch_bundle(trained, candles):
    directory, _ = trained
    lean, torch_side = ExportedBundle.load(directory), ModelBundle.load(directory)
    need = lean.spec.min_candles + 1
    # three "series": the same market cut at three different closes
    frame = pd.concat(
        [candles.iloc[: len(candles) - k].tail(need).assign(symbol=f"S{k}") for k in (0, 7, 30)], ignore_index=True
    )
    got, expected = lean.predict_many(frame), torch_side.predict_many(frame)
    assert list(got.columns) == list(expected.columns) and len(got) == 3 * FC.horizon
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-5)


def _forecast_as_before(bundle: ExportedBundle, tails: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The forecast path before the one-pass features, verbatim: compute_features per series, one forward pass."""
    fc = bundle.spec.feature_config
    windows, scales, cutoffs, closes = [], [], [], []
    for candles in tails.values():
        feats = compute_features(candles, fc, bundle.spec.timeframe, exogenous=[])
        windows.append(bundle.scaler.transform(feats[bundle.spec.columns].to_numpy("float64")[-fc.lookback :]))
        scales.append(np.asarray(bundle.scaler.target_scale))
        cutoffs.append(int(feats["timestamp"].iloc[-1]))
        closes.append(float(feats["close"].iloc[-1]))
    point, bounds = bundle.served.decode(bundle.network(np.stack(windows).astype("float32")), np.stack(scales))
    out = bundle.served.frame(bundle.spec, np.array(cutoffs), np.array(closes), point, bounds)
    return out.assign(symbol=np.repeat(list(tails), fc.horizon))


def test_many_series_forecast_exactly_as_with_features_computed_per_series(trained, candles):
    """The one-pass features (features/last_window.py) change no forecast: bit for bit the per-series path's."""
    lean = ExportedBundle.load(trained[0])
    need = lean.spec.min_candles + 1
    tails = {f"S{k:02d}": candles.iloc[: len(candles) - k].tail(need) for k in (0, 3, 7, 30)}
    tails["S99"] = candles.drop(index=candles.index[-need + 3]).tail(need)  # a gap in the warm-up: computed alone
    frame = pd.concat([c.assign(symbol=s) for s, c in tails.items()], ignore_index=True)
    expected = _forecast_as_before(lean, tails)
    pd.testing.assert_frame_equal(lean.predict_many(frame), expected, check_exact=True)
    arrays = [(s, {col: c[col].to_numpy() for col in c.columns}) for s, c in tails.items()]  # as the server parses
    pd.testing.assert_frame_equal(lean.predict_groups(arrays), expected, check_exact=True)
    one = {"S00": tails["S00"]}
    pd.testing.assert_frame_equal(lean.predict(tails["S00"]), _forecast_as_before(lean, one).drop(columns="symbol"))
    gap = candles.drop(index=candles.index[-5]).tail(need)  # a missing candle inside the window itself
    with pytest.raises(ValueError, match=r"^GAP: the last 16 candles before the cutoff must be contiguous 1h"):
        lean.predict_groups([("S00", tails["S00"]), ("GAP", gap)])
    with pytest.raises(ValueError, match=rf"^SHORT needs at least {need - 1} contiguous 1h candles .* got {need - 2}$"):
        lean.predict_groups([("S00", tails["S00"]), ("SHORT", candles.tail(need - 2))])


def test_a_bundle_registered_before_the_export_loads_through_torch_with_a_note(trained, tmp_path, caplog):
    directory, _ = trained
    old = shutil.copytree(directory, tmp_path / "old")
    (old / NETWORK_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="candlecast.registry.loading"):
        bundle = load_forecaster(old)
    assert isinstance(bundle, ModelBundle)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "\n" not in notes[0] and NETWORK_FILE in notes[0]
    assert isinstance(load_forecaster(directory), ExportedBundle)


_FRESH_PROCESS = """
import json, sys, types
import pandas as pd
from candlecast.registry.loading import load_forecaster
from tests.conftest import SHARED_DATA
candles = pd.read_parquet(sys.argv[2])
lean = load_forecaster(sys.argv[1]).predict(candles)
lean.to_parquet(sys.argv[3])
after_runtime = sorted(m for m in {lean} if m in sys.modules)
from candlecast.registry.pyfunc_model import BundlePyfunc
served = BundlePyfunc()
served.load_context(types.SimpleNamespace(artifacts={{"bundle": sys.argv[1]}}))
pd.testing.assert_frame_equal(served.predict(None, candles), lean)
print(json.dumps({{"runtime": after_runtime, "pyfunc": sorted(m for m in {stack} if m in sys.modules)}}))
"""


def test_a_fresh_process_forecasts_without_the_training_stack(trained, candles, tmp_path):
    directory, _ = trained
    tail = candles.tail(ModelBundle.load(directory).spec.min_candles + 1)
    tail.to_parquet(tmp_path / "candles.parquet")
    code = _FRESH_PROCESS.format(stack=TRAINING_STACK, lean=NOT_LEAN)
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory), str(tmp_path / "candles.parquet"), str(tmp_path / "out.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"runtime": [], "pyfunc": []}
    # and its forecasts are the training path's: the torch network on the same candles
    expected = ModelBundle.load(directory).predict(tail)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), expected, check_exact=False, rtol=1e-5)
