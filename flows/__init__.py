"""Prefect flows: each body reads like the data-path diagram, tasks in order and nothing else.

Flows compose ``tasks`` (and, through them, the core); the decisions live in the core, so a flow can
be read top to bottom as the story of a run. Imported by ``deployments``, never by what is below.
"""
