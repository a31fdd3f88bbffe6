"""Which exchange a run talks to, decided here in the composition root: the real one or the local emulator.

``candlecast.data`` takes an ``Endpoint`` from its caller and never knows the test double; the ingest
task and the CLI (deployments/commands/data.py) open one here, and name its ``Source`` for the store's
record of where each series comes from. No Prefect import, so the CLI's ingest stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from candlecast.config import RunConfig
from candlecast.data.exchange import Endpoint
from candlecast.data.fetching import exchange_clock_ms
from candlecast.data.provenance import Source, emulator_source, exchange_source


def uses_emulator(cfg: RunConfig, exchange_id: str | None = None, api_url: str | None = None) -> bool:
    """Whether fetches of ``exchange_id`` (default the config's) go to the config's emulator: no --api-url given."""
    return cfg.exchange.emulator and api_url is None and exchange_id in (None, cfg.exchange.id)


def endpoint_source(cfg: RunConfig, exchange_id: str | None = None, api_url: str | None = None) -> Source:
    """Where candles fetched for ``cfg`` (or ``exchange_id`` at ``api_url``) come from, known before anything opens."""
    if uses_emulator(cfg, exchange_id, api_url):
        from candlecast.devtools.market import synthetic_market

        return emulator_source(cfg.exchange.id, synthetic_market(cfg), cfg.exchange.seed)
    exchange_id = exchange_id or cfg.exchange.id
    own_url = cfg.exchange.api_url if exchange_id == cfg.exchange.id else None
    return exchange_source(exchange_id, api_url or own_url)


@contextmanager
def exchange_endpoint(
    cfg: RunConfig, now_ms: int | None = None, symbols: Iterable[str] | None = None
) -> Iterator[Endpoint]:
    """The configured exchange for the length of the block: with ``exchange.emulator`` a local emulator.

    The emulator serves ``symbols`` (default the config's), each of which must be a market it lists.
    """
    now = exchange_clock_ms(cfg) if now_ms is None else int(now_ms)
    if not cfg.exchange.emulator:
        yield Endpoint(now, cfg.exchange.api_url, cfg.exchange.rate_limit)
        return
    from candlecast.devtools.market import config_emulator  # the test double loads only when a config asks

    with config_emulator(cfg, now, symbols) as url:
        yield Endpoint(now, url, rate_limit=False)
