"""A shortened rehearsal (`candlecast live --rehearsal`'s plumbing): real flows, ccxt against the emulator, MLflow.

Its own file: no other tests/live fixture trains a champion or starts Prefect. The plan is cut to a
week of 4h candles with the change after four days and the checks armed after 12 scored forecasts,
and the rehearsal's tiny champion and retrain to two epochs of batches of 64 (the retrain: three trials).
"""

from __future__ import annotations

import pytest

from candlecast.deployments.rehearsal import rehearse
from candlecast.live.monitor import DEGRADED
from candlecast.live.paper import paper_summary
from candlecast.live.rehearsal import Plan
from candlecast.live.state import read_journal, retrain_record
from candlecast.registry import tracking
from candlecast.registry.retrain_search import retrain_seed
from candlecast.settings import Settings
from candlecast.tasks.live import PROMOTED, REFUSED

# two tiny trainings and 42 candles: about 4 minutes with the Prefect server's start on a loaded 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_short_rehearsal_alarms_after_the_change_retrains_once_and_records_the_decision(home, prefect_server):
    plan = Plan(change_day=4, days=7, min_scored=12, pace_s=0.0, epochs=2, batch_size=64, retrain_trials=2)
    lines: list[str] = []
    report = rehearse(plan, lines.append)

    assert report.candles == 42 and report.missing == 0 and report.doubled == 0, lines
    assert len(report.degraded) == 1, lines  # one alarm for the champion, none before the change
    alarm = report.degraded[0]
    assert report.candles_after_change(int(alarm["at"])) >= 0, lines
    assert alarm["version"] == "1"
    (retrain,) = report.retrains
    assert retrain.outcome.version == "2" and retrain.outcome.reasons, lines
    # a search of its own, the champion's configuration among its trials, recorded on the run
    assert retrain.search.finished == 1 + plan.retrain_trials and retrain.search.incumbent == "v1", lines
    assert retrain.search.study.startswith("rehearsal-lstm-retrain-v1-")
    params = tracking.client(Settings()).get_run(retrain.outcome.run_id).data.params
    assert params["retrain.for"] == "v1" and params["retrain.first_trial"] == "v1"
    assert params["retrain.seed"] == str(retrain_seed("candlecast-rehearsal", "1"))
    # the loop serves whichever version is @champion at each candle: v2 from after the retrain, if promoted
    served = {v for counts in report.forecasts.values() for v in counts}
    assert served == ({"1", "2"} if retrain.outcome.promoted else {"1"}), lines
    assert report.served_from.get("2", alarm["at"] + 1) > int(alarm["at"]), lines
    events = read_journal(Settings())
    outcomes = [e for e in events if e["event"] in (PROMOTED, REFUSED) and e["payload"]["retrain_for"]]
    assert [e["payload"]["retrain_for"] for e in outcomes] == ["1"]  # the retrain's decision is recorded, once
    assert outcomes[0]["event"] == (PROMOTED if retrain.outcome.promoted else REFUSED)
    assert sum(e["event"] == DEGRADED for e in events) == 1
    assert retrain_record(Settings(), "candlecast-rehearsal", "1")["emitted"]
    assert any(line.startswith("drift: candlecast.model.degraded for v1") for line in lines)
    assert lines[-2].startswith("paper: PnL") and "over 84 bars of 2 series" in lines[-2], lines  # each candle traded
    assert all(row["bars"] == report.candles and row["forecasts"] > 0 for row in paper_summary(Settings())["series"])
