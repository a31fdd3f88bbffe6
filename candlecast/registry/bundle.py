"""A trained forecaster as one self-contained bundle: spec, torch weights and the exported network.

The bundle turns raw candles into price forecasts with conformal intervals, so the same artifact
serves evaluation, batch prediction and MLflow's pyfunc. Weights are a plain ``state_dict`` loaded
with ``weights_only=True`` (no pickled code); everything else is JSON. Registration adds the network
exported to ONNX (``export``), which the lean runtime (candlecast.forecasting.runtime) runs without
torch; ``ModelBundle`` is the torch side of the same bundle: training builds it, and a bundle
registered before the export still loads through it.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from candlecast.features.scaling import input_width, scaler_from_dict
from candlecast.forecasting.neural import build_model
from candlecast.forecasting.runtime import NETWORK_FILE, SPEC_FILE, WEIGHTS_FILE, BundleForecaster, BundleSpec
from candlecast.forecasting.served import Served
from candlecast.forecasting.targets import Target, for_bundle
from candlecast.io import write_bytes, write_text
from candlecast.models import ForecastModule

__all__ = ["NETWORK_FILE", "SPEC_FILE", "WEIGHTS_FILE", "BundleSpec", "ModelBundle"]


class ModelBundle(BundleForecaster):
    """A trained torch network with its spec: raw candles of one or many series in, forecasts out."""

    def __init__(self, spec: BundleSpec, model: ForecastModule):
        target: Target = for_bundle(spec.target)
        # the Target's own decode and rows: a target added as a plug-in serves here before it has a served form
        super().__init__(spec, Served(target.key, target.store_kind, target.decode, target.frame))
        self.model = model.eval()
        self.target = target

    def network(self, windows: np.ndarray) -> np.ndarray:
        """The torch forward pass on one thread, without autograd.

        A few windows run fastest on one torch thread (4-5x faster than two on a busy 2-core machine,
        where the second thread only waits); the thread count is restored afterwards.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return self.model(torch.from_numpy(windows)).numpy()
        finally:
            torch.set_num_threads(threads)

    def save(self, directory: Path) -> Path:
        """Write spec.json and weights.pt into ``directory``, each atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        write_text(json.dumps(asdict(self.spec), indent=2), directory / SPEC_FILE)
        weights = io.BytesIO()
        torch.save(self.model.state_dict(), weights)
        write_bytes(weights.getvalue(), directory / WEIGHTS_FILE)
        return directory

    def export(self, directory: Path) -> Path:
        """Write the network as ONNX (torch's dynamo exporter) beside the weights: network.onnx.

        The batch dimension stays dynamic, so one exported graph answers one window or a hundred.
        ONNX rather than TorchScript or a saved torch.export program: both of those need torch (1.6 s
        and 230 MB to import) to run, onnxruntime needs neither (docs/benchmarks.md).
        """
        fc = self.spec.feature_config
        example = torch.zeros(2, fc.lookback, self.model.n_features)
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" lines
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                self.model,
                (example,),
                input_names=["x"],
                output_names=["y"],
                dynamic_shapes=({0: torch.export.Dim("n")},),
                dynamo=True,
                verbose=False,
            )
        assert program is not None  # the dynamo exporter always returns its program
        path = Path(directory) / NETWORK_FILE
        write_bytes(program.model_proto.SerializeToString(), path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        """Rebuild the network from the spec and load its weights (``weights_only``: no pickled code)."""
        directory = Path(directory)
        spec = BundleSpec.read(directory)
        target = for_bundle(spec.target)
        horizon = target.network_horizon(spec.feature_config.horizon)
        scaler = scaler_from_dict(spec.scaler)  # a series-index id makes it the pooled variance model
        width = input_width(len(spec.columns), scaler)
        loss = target.loss(spec.quantiles)
        model = build_model(spec.model_name, width, horizon, spec.hparams, spec.quantiles, loss, scaler, spec.columns)
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
        return cls(spec, model)
