"""Config files: each bad file is one line naming it and the fix; paths mean the same from any folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from candlecast.config import RunConfig
from candlecast.configfile import read_mapping, relative_paths, resolve_path
from candlecast.deployments.cli import app
from candlecast.deployments.definitions import config_parameters
from candlecast.trading.config import TradingConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "does not exist"),
        ("empty.yaml", b"# only a comment\n\n", "is empty"),
        ("binary.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        ("latin1.yaml", "name: caf\xe9\n".encode("latin-1"), "not a text file"),
        ("list.yaml", b"- a\n- b\n", "holds a list, not a mapping"),
        ("scalar.yaml", b"just words\n", "holds a str, not a mapping"),
        ("bad.yaml", b"name: x\n  data: [unclosed\n", r"not valid YAML \(line 2"),
    ],
)
def test_each_bad_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        read_mapping(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    with pytest.raises(ValueError, match=message):  # the run config and the trading config say the same
        RunConfig.from_yaml(path)
    with pytest.raises(ValueError, match=f"trading config {path}"):
        TradingConfig.from_yaml(path)


def test_a_folder_is_not_a_config(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        read_mapping(tmp_path)


def test_paths_resolve_against_the_file_or_the_state_never_the_working_directory(tmp_path):
    base, home = tmp_path / "configs", tmp_path / "state"
    assert resolve_path("data/x.csv", base, home) == base / "data" / "x.csv"
    assert resolve_path("../x.csv", base, home) == tmp_path / "x.csv"
    assert resolve_path("${CANDLECAST_HOME}/exogenous/x.csv", base, home) == home / "exogenous" / "x.csv"
    assert resolve_path("/abs/x.csv", base, home) == Path("/abs/x.csv")
    assert resolve_path("~/x.csv", base, home) == Path.home() / "x.csv"
    with pytest.raises(ValueError, match=r"only variable.*\$\{CANDLECAST_HOME\}"):
        resolve_path("${HOME}/x.csv", base, home)


def test_from_yaml_resolves_every_path_once_at_load(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "run.yaml"
    path.write_text(
        "exchange:\n  synthetic_sentiment_path: ${CANDLECAST_HOME}/exo/fg.csv\n"
        "features:\n  exogenous:\n    - path: exo/fg.csv\n    - path: /data/other.csv\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder: the working directory must not matter
    cfg = RunConfig.from_yaml(Path("configs/run.yaml"), home=tmp_path / "state")
    assert cfg.exchange.synthetic_sentiment_path == tmp_path / "state" / "exo" / "fg.csv"
    assert [e.path for e in cfg.features.exogenous] == [folder / "exo" / "fg.csv", Path("/data/other.csv")]
    assert relative_paths(cfg) == []
    # recorded in a state folder, paths inside it stay relative to it, and load back to the same config
    text = cfg.to_yaml(tmp_path / "state")
    assert "${CANDLECAST_HOME}/exo/fg.csv" in text
    recorded = tmp_path / "state" / "config.yaml"
    recorded.parent.mkdir()
    recorded.write_text(text)
    assert RunConfig.from_yaml(recorded, home=tmp_path / "state") == cfg


def test_the_demo_config_reads_its_sentiment_from_the_state_folder(tmp_path):
    cfg = RunConfig.from_yaml(REPO / "configs" / "demo.yaml", home=tmp_path)
    assert cfg.exchange.synthetic_sentiment_path == tmp_path / "exogenous" / "synthetic_fear_greed.csv"
    assert cfg.features.exogenous[0].path == cfg.exchange.synthetic_sentiment_path


def test_deployments_refuse_a_relative_path_a_worker_would_resolve_in_its_temp_folder(tmp_path):
    raw = {"features": {"exogenous": [{"path": "exo/fg.csv"}]}}
    with pytest.raises(ValueError, match=r"relative paths \(features\.exogenous\.0\.path\).*from_yaml"):
        config_parameters(RunConfig.model_validate(raw))
    path = tmp_path / "run.yaml"
    path.write_text("features:\n  exogenous:\n    - path: exo/fg.csv\n")
    params = config_parameters(RunConfig.from_yaml(path, home=tmp_path))
    assert params["config"]["features"]["exogenous"][0]["path"] == str(tmp_path / "exo" / "fg.csv")


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"", ["is empty"]),
        (b"\x00\x01\x02binary", ["not a text file"]),
        (b"sweep:\n  n_trials: 0\n  modle: x\ntrain:\n  max_epochs: x\n  patience: -1\n", ["sweep.n_trials", "more"]),
        (b"features:\n  horizon: 24\nsplit:\n  gap: 3\n", ["split.gap 3 is shorter"]),
    ],
)
def test_a_bad_config_on_the_command_line_is_at_most_three_lines_without_library_urls(tmp_path, content, names):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["status", "--config", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) <= 3, result.output
    assert "errors.pydantic.dev" not in result.output and "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert str(path) in flat
    for name in names:
        assert name in flat, flat
