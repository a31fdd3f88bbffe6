"""Which exchange a run talks to, decided here in the composition root: the real one or the local emulator.

``candlecast.data`` takes an ``Endpoint`` from its caller and never knows the test double; the ingest
task and the CLI (deployments/commands/data.py) open one here. No Prefect import, so the CLI's ingest
stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from candlecast.config import RunConfig
from candlecast.data.exchange import Endpoint
from candlecast.data.fetching import exchange_clock_ms


@contextmanager
def exchange_endpoint(cfg: RunConfig, now_ms: int | None = None) -> Iterator[Endpoint]:
    """The configured exchange for the length of the block: with ``exchange.emulator`` a local emulator."""
    now = exchange_clock_ms(cfg) if now_ms is None else int(now_ms)
    if not cfg.exchange.emulator:
        yield Endpoint(now, cfg.exchange.api_url, cfg.exchange.rate_limit)
        return
    from candlecast.devtools.market import config_emulator  # the test double loads only when a config asks

    with config_emulator(cfg, now) as url:
        yield Endpoint(now, url, rate_limit=False)
