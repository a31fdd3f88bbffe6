"""The event path on a real Prefect server: ``candlecast.candles.stored`` -> the predict deployment's trigger -> a run.

    nice -n 10 .venv/bin/python bench/live_trigger.py

Starts a temporary Prefect server, `candlecast serve` for a one-series config with
PREFECT_RUNNER_POLL_FREQUENCY=1, emits one ``candles.stored`` for the series, and prints how long until
the triggered predict run is submitted and until it completes (with no @champion it completes having
nothing to forecast: the path is what is timed), with the parameters the trigger rendered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def main() -> None:
    started = time.time()
    os.environ.setdefault("CANDLECAST_HOME", tempfile.mkdtemp(prefix="live-trigger-"))
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="live-trigger-prefect-")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    from candlecast.tasks.events import emit

    with prefect_test_harness(server_startup_timeout=90):
        url = get_current_settings().api.url
        config = Path(tempfile.mkdtemp()) / "trigger.yaml"
        config.write_text(yaml.safe_dump({"name": "trigger", "data": {"symbols": ["ETH/USDT"]}}))
        env = os.environ | {"PREFECT_API_URL": str(url), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
        command = [sys.executable, "-m", "candlecast.deployments.cli", "serve", "--config", str(config)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            with get_client(sync_client=True) as client:
                while True:
                    try:
                        client.read_deployment_by_name("candlecast-predict/predict-trigger")
                        break
                    except Exception:
                        time.sleep(1)
                time.sleep(2)  # the runner's first poll
                payload = {"symbol": "ETH/USDT", "first": 1, "cutoff": 2}
                emit("candlecast.candles.stored", "candlecast.series.binance.ETH/USDT.1h", payload, "bench")
                sent, submitted = time.time(), None
                while time.time() - sent < 300:
                    runs = client.read_flow_runs(limit=5, sort=FlowRunSort.ID_DESC)
                    if runs and submitted is None:
                        submitted = time.time() - sent
                        print(f"event -> run {runs[0].name} created in {submitted:.1f} s, parameters "
                              f"{ {k: runs[0].parameters.get(k) for k in payload} }")  # fmt: skip
                    if runs and runs[0].state and runs[0].state.is_final():
                        print(f"event -> run {runs[0].state.name} in {time.time() - sent:.1f} s")
                        break
                    time.sleep(0.5)
        finally:
            server.terminate()
            server.wait()
    print(f"wall {time.time() - started:.0f} s (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
