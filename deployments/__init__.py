"""The composition root: the `candlecast` CLI, the Prefect deployments and the local server stack.

Everything is wired here and nowhere below: the CLI commands (``commands/``) call the core or run the
flows, ``definitions`` names each deployment once for `serve`, `deploy` and prefect.yaml, and
``stack`` starts the servers `candlecast up` runs.
"""
