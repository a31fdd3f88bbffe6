"""Config is a leaf, checked in a fresh interpreter (a subprocess: this test process has torch loaded already)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_validating_a_config_loads_no_heavy_library():
    """Config is a leaf: checking a YAML file must not import torch, Lightning, MLflow or statsforecast."""
    code = (
        "import sys; from candlecast.config import RunConfig; "
        f"RunConfig.from_yaml({str(REPO / 'configs' / 'demo.yaml')!r}); "
        "heavy = ('torch', 'lightning', 'mlflow', 'statsforecast', 'optuna', 'models'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
