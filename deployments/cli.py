"""The `candlecast` command line: the composition root. Each area's commands live in deployments/commands/."""

from __future__ import annotations

import atexit
import gc
import os

import typer

from candlecast.deployments.commands import (
    backtest,
    data,
    deploy,
    live,
    models,
    pipeline,
    simulate,
    stack,
    trading,
    validation,
)

app = typer.Typer(help="candlecast: forecast crypto prices with an orchestrated MLOps workflow.", no_args_is_help=True)

# One module per area; each registers its commands on the app. Add a module here to add commands.
COMMAND_MODULES = [pipeline, simulate, models, deploy, stack, data, validation, backtest, trading, live]
for module in COMMAND_MODULES:
    module.register(app)


@app.callback()
def state_folder() -> None:
    """Keep Prefect's database and results in the state folder, before any command imports Prefect.

    Prefect's default home is ~/.prefect, shared by every checkout on the machine; under
    <home>/prefect (CANDLECAST_HOME, default ./.candlecast) the runs of `candlecast run` are the
    ones `candlecast up`'s Prefect UI shows. A PREFECT_HOME the user set wins.
    """
    from candlecast.settings import Settings

    os.environ.setdefault("PREFECT_HOME", str(Settings().root / "prefect"))
    # Registered first, so it runs after every other exit handler (Prefect's log flush included): a heap of
    # torch, MLflow, Prefect and GX objects otherwise takes Python's final garbage collection 10+ s on a busy
    # laptop, which a user waiting for Ctrl-C to return pays for nothing; the OS frees the memory at once.
    atexit.register(gc.freeze)


if __name__ == "__main__":
    app()
