"""The `candlecast` command line: the composition root. Each area's commands live in deployments/commands/."""

from __future__ import annotations

import typer

from deployments.commands import backtest, data, deploy, models, pipeline, simulate, stack, trading, validation

app = typer.Typer(help="candlecast: forecast crypto prices with an orchestrated MLOps workflow.", no_args_is_help=True)

# One module per area; each registers its commands on the app. Add a module here to add commands.
COMMAND_MODULES = [pipeline, simulate, models, deploy, stack, data, validation, backtest, trading]
for module in COMMAND_MODULES:
    module.register(app)

if __name__ == "__main__":
    app()
