"""What the README promises about output, checked on the real program with its output piped.

Every table prints whole when piped, whatever COLUMNS says (rich used to cut "turnov…", "BTC/U…" and
`--help`'s option names at 80 columns); a backtest's input problems are one line naming the file, and
the returns and volatility tables of one file are named apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli  # tests/cli/ is on sys.path (pytest's rootdir import mode)
from typer.testing import CliRunner

from candlecast.deployments.cli import app
from candlecast.devtools.synthetic import synthetic_candles

START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
NARROW = 40
WALK = ["--horizon", "4", "--lookback", "12", "--folds", "2", "--test-fraction", "0.3"]


def _markdown_rows(stdout: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines() if line.startswith("| ")
    ]


def _whole(result) -> str:
    assert "…" not in result.stdout + result.stderr, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def candle_files(tmp_path_factory) -> dict[str, Path]:
    """One pair's candles three ways: named like the exchange files, named bare, and with two empty closes."""
    root = tmp_path_factory.mktemp("candles")
    frame = synthetic_candles("BTC/USDT", START, 700, seed=3)
    files = {
        "named": root / "binance_BTC-USDT_1h.csv",
        "bare": root / "btc-usdt.csv",
        "nan": root / "binance_ETH-USDT_1h.csv",
    }
    frame.to_csv(files["named"], index=False)
    frame.to_csv(files["bare"], index=False)
    frame.assign(close=frame["close"].where(~frame.index.isin([100, 101]), np.nan)).to_csv(files["nan"], index=False)
    (root / "empty.csv").write_text("")
    files["empty"] = root / "empty.csv"
    return files


def test_help_is_whole_when_piped_at_40_columns(home):
    backtest = _whole(run_cli(home, "backtest", "--help", columns=NARROW, timeout_s=60))
    for whole in (
        "--test-fraction",
        "--val-fraction",
        "--cal-fraction",
        "--no-indicators",
        "candle file (csv/csv.gz/parquet)",
    ):
        assert whole in backtest, whole
    trade = _whole(run_cli(home, "trade", "backtest", "--help", columns=NARROW, timeout_s=60))
    for whole in (
        "--taker-fee-bps",
        "--min-coverage",
        "--trading-config",
        "walk-forward: share of the timeline tested",
    ):
        assert whole in trade, whole


def test_no_command_help_is_cut(home):
    """In-process (not a terminal either): every command's help keeps its option names and texts whole."""
    import typer.main

    group = typer.main.get_command(app)
    commands = {(name,): cmd for name, cmd in group.commands.items()}  # type: ignore[attr-defined]
    for name, cmd in list(commands.items()):
        commands |= {(*name, sub): c for sub, c in getattr(cmd, "commands", {}).items()}
    assert ("trade", "backtest") in commands and ("signals",) in commands
    runner = CliRunner()
    for path, cmd in commands.items():
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(NARROW)})
        assert result.exit_code == 0, (path, result.output)
        written = (cmd.help or "").count("…") + sum((getattr(p, "help", "") or "").count("…") for p in cmd.params)
        assert result.output.count("…") == written, (path, result.output)  # only an ellipsis the help itself has
        for option in (o for p in cmd.params for o in p.opts if o.startswith("--")):
            assert option in result.output, (path, option)


def test_backtest_prints_whole_warns_of_empty_closes_and_names_tables_by_target(home, candle_files, tmp_path):
    out = tmp_path / "tables"
    result = run_cli(home, "backtest", "--data", str(candle_files["nan"]), "--models", "naive,drift", *WALK,
                     "--out", str(out), columns=NARROW, timeout_s=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = _whole(result)
    warning = [line for line in text.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "2 candle(s) with an empty close left out" in warning[0], text
    assert "line 102 (2024-01-05 04:00)" in warning[0] and "line 103" in warning[0]
    rows = _markdown_rows(text)
    assert rows[0][:4] == ["model", "RMSE/naive", "step 1", "step H"]
    assert [r[0] for r in rows[1:]] == ["naive", "drift"]
    assert "nan" not in " ".join(c for r in rows[1:] for c in r).lower(), "no NaN cells: the empty rows were left out"
    name = "binance_ETH-USDT_1h_returns"
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.md", f"{name}_per_fold.csv", f"{name}_summary.csv"]


def test_trade_backtest_of_a_bare_named_file_prints_every_column_whole(home, candle_files, tmp_path):
    result = run_cli(home, "trade", "backtest", "--data", str(candle_files["bare"]), "--models", "naive,drift", *WALK,
                     "--no-mlflow", "--out", str(tmp_path / "report"), columns=NARROW, timeout_s=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _markdown_rows(_whole(result))
    assert rows[0] == ["strategy", "return", "Sharpe", "max DD", "turnover", "fees", "exposure", "hit rate"]
    assert {"naive", "drift", "buy_and_hold"} <= {r[0] for r in rows[1:]}
    assert "BTC/USDT 1h" in result.stdout, "the pair read from the bare name btc-usdt.csv"


def test_backtest_input_mistakes_exit_2_in_one_line(home, candle_files, tmp_path):
    """An empty file through the real program; the other mistakes in-process (the same code, without the imports)."""
    empty = run_cli(home, "backtest", "--data", str(candle_files["empty"]), columns=NARROW, timeout_s=120)
    assert empty.returncode == 2
    assert (empty.stdout + empty.stderr).strip().splitlines() == [
        f"error: candle file {candle_files['empty']} is empty: a candle file needs a header "
        "timestamp,open,high,low,close,volume and one candle per row"
    ]
    missing = tmp_path / "missing.csv"
    for args, said in [
        (["--data", str(missing)], f"candle file {missing} does not exist"),
        (["--data", str(candle_files["named"]), "--models", "naive,garch"], "add `--target volatility`"),
    ]:
        result = CliRunner().invoke(app, ["backtest", *args], env={"COLUMNS": str(NARROW)})
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and said in lines[0], lines
