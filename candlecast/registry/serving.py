"""`candlecast serve-model`: the registry's @champion over HTTP, one inference thread per worker process.

A bare ASGI app on uvicorn, one process per core: a request is CPU-bound Python that holds the GIL, so
threads would only queue, and a framework's routing and validation would cost more than the network's
forward pass (docs/benchmarks.md measures it against `mlflow models serve`). Each worker answers
requests one at a time on its event loop, with onnxruntime (the lean runtime) on one thread.

Requests take what MLflow's scoring server takes for raw candles (``dataframe_split`` or
``dataframe_records``, with an optional ``symbol`` column for many series), a list of series,
``{"series": [{"symbol": ..., "candles": <split or records>}, ...]}``, or the same candles as an Arrow
IPC stream (candlecast.registry.request_body); every series' last window goes through one forward
pass. A request it cannot answer gets HTTP 400 and a one-line reason.

Each worker checks the alias every ``reload_seconds`` in a thread of its own; a moved alias is loaded
in full, then swapped in by one reference assignment, so a request runs on one version from start to
end and says which (``model_version`` in the body, ``x-model-version`` header). A failed load keeps
the serving version and logs one line.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from candlecast.forecasting.runtime import BundleForecaster
from candlecast.registry.loading import load_version
from candlecast.registry.request_body import BadRequest, Series, parse_request

log = logging.getLogger(__name__)

#: How the command hands its options to uvicorn's worker processes (each builds its own app).
ENV = {"model": "CANDLECAST_SERVE_MODEL", "alias": "CANDLECAST_SERVE_ALIAS", "reload": "CANDLECAST_SERVE_RELOAD_S"}
#: Modules a serving worker must never hold; /health lists any that are loaded (an old bundle brings torch).
TRAINING_STACK = ("torch", "lightning", "optuna", "prefect", "great_expectations")
MAX_BODY = 64 * 2**20
JSON = "application/json"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Loaded:
    """One registered version, loaded: what a request runs on from start to end."""

    version: str
    forecaster: BundleForecaster


class Champion:
    """The version an alias points at, reloaded when the alias moves."""

    def __init__(self, client: Any, name: str, alias: str):
        self.client, self.name, self.alias = client, name, alias
        version = self._aliased()
        self.current = Loaded(version, load_version(client, name, version))

    def _aliased(self) -> str:
        return str(self.client.get_model_version_by_alias(self.name, self.alias).version)

    def refresh(self) -> bool:
        """Load the alias's version if it moved, then swap it in; a failure keeps the old one (one log line)."""
        try:
            version = self._aliased()
            if version == self.current.version:
                return False
            loaded = Loaded(version, load_version(self.client, self.name, version))
        except Exception as exc:  # the registry or the new bundle failed: keep answering with what we have
            log.warning("kept %s v%s: reloading @%s failed: %s", self.name, self.current.version, self.alias, exc)
            return False
        self.current = loaded  # one reference: a request in flight keeps the version it started with
        log.warning("now serving %s v%s (@%s moved)", self.name, version, self.alias)
        return True

    def watch(self, every_s: float) -> threading.Thread:
        """Refresh every ``every_s`` seconds in a daemon thread."""

        def loop() -> None:
            while not stop.wait(every_s):
                self.refresh()

        stop = threading.Event()
        thread = threading.Thread(target=loop, name="champion-reload", daemon=True)
        thread.start()
        return thread


def forecast_json(forecaster: BundleForecaster, groups: Series) -> bytes:
    """Every series' forecasts through one forward pass, as a JSON array of row objects (with symbol when named).

    Written column by column: orjson writes each numeric column's array at once (its values split
    at the commas, which no number holds), each distinct symbol once, and each row is one template
    fill: the text orjson writes for the row dicts (compact; a non-finite number as null, where
    ``json.dumps`` wrote an invalid NaN) at half its cost (2,400 rows for a 100-series request).
    """
    if len({symbol for symbol, _ in groups}) != len(groups):
        raise BadRequest("each series may appear once per request")
    try:
        out = forecaster.predict_groups(groups)
    except KeyError as exc:
        raise BadRequest(f"the request lacks a column: {exc}") from None
    texts = []
    for _, column in out.items():
        values = column.to_numpy()
        if values.dtype == object:  # symbols
            encoded = {v: orjson.dumps(v) for v in set(values.tolist())}
            texts.append([encoded[v] for v in values.tolist()])
        else:
            texts.append(
                orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
                if len(values)
                else []
            )
    template = b"{" + b",".join(orjson.dumps(str(c)) + b":%b" for c in out.columns) + b"}"
    return b"[" + b",".join([template % row for row in zip(*texts, strict=True)]) + b"]"


def training_stack_loaded() -> list[str]:
    """Which of the training stack's packages this process has imported (none, for an exported bundle)."""
    return [name for name in TRAINING_STACK if name in sys.modules]


class ServeApp:
    """The ASGI app: POST /invocations forecasts, GET /health (or /ping) names what serves."""

    def __init__(self, champion: Champion):
        self.champion = champion

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One ASGI connection event: lifespan, or one HTTP request answered whole."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path in ("/health", "/ping") and method == "GET":
            await _respond(send, 200, _json(self.health()))
        elif path == "/invocations" and method == "POST":
            body = await _body(receive)
            loaded = self.champion.current  # this request's version, whatever a reload swaps in meanwhile
            status, answer = self.invoke(loaded, body, _content_type(scope))
            await _respond(send, status, answer, loaded.version)
        else:
            await _respond(send, 404, _error("NOT_FOUND", f"no {method} {path}: POST /invocations, GET /health"))

    def health(self) -> dict[str, Any]:
        """What serves, and which of the training stack this process holds (an empty list)."""
        c = self.champion
        loaded = training_stack_loaded()
        return {
            "model": c.name,
            "version": c.current.version,
            "alias": c.alias,
            "training_stack": loaded,
            "worker_pid": os.getpid(),  # which worker answered: connections spread over the workers
        }

    def invoke(self, loaded: Loaded, body: bytes | None, content_type: str = JSON) -> tuple[int, bytes]:
        """Status and JSON body of one request: 200 with the forecasts, 400 with the reason, never a traceback."""
        if body is None:
            return 413, _error("BAD_REQUEST", f"the body exceeds {MAX_BODY // 2**20} MiB: send fewer candles or series")
        try:
            rows = forecast_json(loaded.forecaster, parse_request(body, content_type))
        except ValueError as exc:  # BadRequest and the runtime's own (too few candles, a gap, an unknown series)
            return 400, _error("BAD_REQUEST", str(exc))
        except Exception as exc:
            log.exception("request failed")
            return 500, _error("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        name, version = orjson.dumps(self.champion.name), orjson.dumps(loaded.version)
        return 200, b'{"predictions":' + rows + b',"model":' + name + b',"model_version":' + version + b"}"


def _content_type(scope: Scope) -> str:
    """The request's content-type header (JSON when it sends none)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-type":
            return str(value.decode("latin-1"))
    return JSON


def _json(answer: dict[str, Any]) -> bytes:
    return orjson.dumps(answer)


def _error(code: str, reason: str) -> bytes:
    return _json({"error_code": code, "message": " ".join(reason.split())})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None past MAX_BODY."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, version: str | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if version is not None:
        headers.append((b"x-model-version", version.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def app_from_env() -> ServeApp:
    """Uvicorn's factory, called in each worker: load the aliased version, start watching the alias."""
    from candlecast.registry.local_registry import reader
    from candlecast.settings import Settings

    champion = Champion(reader(Settings()), os.environ[ENV["model"]], os.environ[ENV["alias"]])
    champion.watch(float(os.environ[ENV["reload"]]))
    return ServeApp(champion)


def serve(model: str, alias: str, host: str, port: int, workers: int, reload_seconds: float) -> None:
    """Serve with ``workers`` processes, each its own app on one inference thread (blocks until one exits).

    Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections over them
    (32 keep-alive connections to two workers landed 14 and 18), whatever each worker is busy with:
    on uvicorn's one shared socket, whichever worker's loop is free takes every waiting connection.
    """
    os.environ.update({ENV["model"]: model, ENV["alias"]: alias, ENV["reload"]: str(reload_seconds)})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the workers: one core each, the cores shared by processes
    if workers == 1:
        _worker(host, port)
        return
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, args=(host, port), name=f"serve-model-{i}") for i in range(workers)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: no orphaned workers
    try:
        for proc in procs:
            proc.start()
        multiprocessing.connection.wait([proc.sentinel for proc in procs])  # one exited: stop them all
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(30)


def _worker(host: str, port: int) -> None:
    """One worker process: its own socket on the shared port, uvicorn on it, the app built by the factory."""
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        "candlecast.registry.serving:app_from_env",
        factory=True,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])
