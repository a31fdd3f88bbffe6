"""The server stack as background processes: Prefect server, a process worker, MLflow, optuna-dashboard, Data Docs.

Every service of `candlecast up` works on the CLI's state folder: Prefect's database is
``<home>/prefect`` (the one `candlecast run` records into), MLflow's is ``<home>/mlflow.db``, and the
Data Docs site under ``<home>/gx`` is served over http, so the links in Prefect's artifacts open.

One definition of each service's command serves `candlecast up`, the system test (Postgres backends)
and docker/compose.yaml (a unit test asserts the compose commands equal ``commands(StackConfig.compose())``).
Pid files and logs live in ``<state>/``; `down` stops only the processes those pid files name.
No store URL goes on a command line or into a pid file (it may hold a password): the services get
theirs through the environment, optuna-dashboard through an owner-only config file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from candlecast.io import read_json, write_json
from candlecast.settings import redact

LOCAL_ALLOWED_HOSTS = ("127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*")
#: MLflow 3.17's UI picks GenAI or model training from this URL parameter (else the browser's last choice,
#: GenAI by default) and ignores the experiment's mlflow.experimentKind tag: without it an experiment opens
#: on an empty traces overview instead of its runs.
MLFLOW_UI_PATH = "#/experiments?workflowType=machine_learning"


@dataclass(frozen=True)
class StackConfig:
    """Where the services listen and what they serve. Backends and secrets come through ``Service.env``."""

    host: str = "127.0.0.1"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    worker_health_port: int = 8081
    dashboard_port: int | None = 8080
    docs_port: int | None = 8082
    pool: str = "candlecast"
    artifacts_dir: str = ".candlecast/mlartifacts"
    allowed_hosts: tuple[str, ...] = LOCAL_ALLOWED_HOSTS

    @classmethod
    def compose(cls) -> StackConfig:
        """The values docker/compose.yaml uses inside its containers."""
        return cls(
            host="0.0.0.0",
            dashboard_port=None,
            docs_port=None,
            artifacts_dir="/data/mlartifacts",
            allowed_hosts=("mlflow", "mlflow:*", *LOCAL_ALLOWED_HOSTS),
        )

    @property
    def connect_host(self) -> str:
        """Where clients connect: a wildcard listen address is reached on loopback."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host

    @property
    def prefect_api_url(self) -> str:
        """The Prefect API URL that clients and the worker use."""
        return f"http://{self.connect_host}:{self.prefect_port}/api"

    @property
    def mlflow_url(self) -> str:
        """The MLflow tracking server's URL, for clients and the UI."""
        return f"http://{self.connect_host}:{self.mlflow_port}"

    @property
    def docs_url(self) -> str | None:
        """The Data Docs site over http (a browser blocks file:// links from an http page), if served."""
        return None if self.docs_port is None else f"http://{self.connect_host}:{self.docs_port}"


#: MLflow 3's server starts seven Huey job consumers by default (GenAI scorers, trace rollups): candlecast runs
#: no MLflow jobs, and they cost ~30 s of CPU at start and memory for as long as the server runs.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def commands(cfg: StackConfig) -> dict[str, list[str]]:
    """Each service's command line; the program is looked up in this interpreter's bin folder at start."""
    cmds = {
        "prefect-server": ["prefect", "server", "start", "--host", cfg.host, "--port", str(cfg.prefect_port)],
        # the backend store comes from MLFLOW_BACKEND_STORE_URI, so no password sits in a command line
        "mlflow": [
            "mlflow",
            "server",
            "--host",
            cfg.host,
            "--port",
            str(cfg.mlflow_port),
            "--workers",
            "1",
            "--artifacts-destination",
            cfg.artifacts_dir,
            "--allowed-hosts",
            ",".join(cfg.allowed_hosts),
        ],  # fmt: skip
        "worker": ["prefect", "worker", "start", "--pool", cfg.pool, "--type", "process", "--with-healthcheck"],
    }
    if cfg.dashboard_port is not None:
        cmds["optuna-dashboard"] = ["optuna-dashboard", "--host", cfg.host, "--port", str(cfg.dashboard_port)]
    if cfg.docs_port is not None:
        # a static file server; services() adds the site folder (--directory)
        cmds["data-docs"] = ["python", "-m", "http.server", "--bind", cfg.host, str(cfg.docs_port)]
    return cmds


@dataclass(frozen=True)
class Service:
    """One background process of the stack: its command, its environment and where to see that it is up."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    ui_url: str | None = None
    folders: tuple[Path, ...] = ()  # created before it starts (a file server of a missing folder answers 404)
    secret_files: tuple[tuple[Path, str], ...] = ()  # (path, text) written owner-only before it starts


@dataclass(frozen=True)
class Backends:
    """Where the stack keeps its state; the defaults are the files the CLI uses under CANDLECAST_HOME."""

    home: Path
    prefect_database: str | None = None  # None: sqlite under <home>/stack/prefect
    mlflow_store: str | None = None  # None: <home>/mlflow.db, the CLI's own store
    optuna_storage: str | None = None  # None: <home>/optuna.db
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def mlflow_store_uri(self) -> str:
        """MLflow's backend store: the configured database, else the CLI's own sqlite file, so both see one registry."""
        return self.mlflow_store or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def optuna_url(self) -> str:
        """Optuna's storage: the configured database, else the CLI's sqlite file, so the dashboard sees its studies."""
        return self.optuna_storage or f"sqlite:///{self.home / 'optuna.db'}"

    @property
    def state_dir(self) -> Path:
        """The stack's pid files, logs and owner-only config files."""
        return self.home / "stack"

    @property
    def prefect_home(self) -> Path:
        """Prefect's home: the folder `candlecast run` records its flow runs in, so the UI shows them."""
        return self.home / "prefect"

    @property
    def docs_dir(self) -> Path:
        """The Data Docs site the GX project under ``<home>/gx`` writes (expectations/project.py)."""
        return self.home / "gx" / "uncommitted" / "data_docs" / "local_site"


def services(cfg: StackConfig, backends: Backends) -> list[Service]:
    """The stack's services with their environments, in start order (the worker needs the Prefect server)."""
    quiet = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **backends.extra_env}
    prefect_env = {
        **quiet,
        "PREFECT_HOME": str(backends.prefect_home),
        # the UI's browser code calls PREFECT_UI_API_URL; without it, it calls 127.0.0.1:4200 whatever --port says
        "PREFECT_SERVER_API_HOST": cfg.host,
        "PREFECT_SERVER_API_PORT": str(cfg.prefect_port),
        "PREFECT_UI_API_URL": cfg.prefect_api_url,
    }
    if backends.prefect_database:
        prefect_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = backends.prefect_database
    # A local sqlite store is shared with the CLI directly (same file, file:// artifacts under <home>/mlartifacts);
    # any other store is reached through the server, whose proxied artifact store is artifacts_dir.
    local_mlflow = backends.mlflow_store_uri.startswith("sqlite:")
    worker_env = {
        **prefect_env,
        "PREFECT_API_URL": cfg.prefect_api_url,
        "PREFECT_WORKER_WEBSERVER_HOST": cfg.connect_host,
        "PREFECT_WORKER_WEBSERVER_PORT": str(cfg.worker_health_port),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "candlecast",
        "CANDLECAST_HOME": str(backends.home),
        "CANDLECAST_MLFLOW_TRACKING_URI": backends.mlflow_store_uri if local_mlflow else cfg.mlflow_url,
        "CANDLECAST_OPTUNA_STORAGE": backends.optuna_url,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        **({"CANDLECAST_DATA_DOCS_URL": cfg.docs_url} if cfg.docs_url else {}),
    }
    cmds = commands(cfg)
    mlflow_store = backends.mlflow_store_uri
    out = [
        Service(
            "prefect-server", cmds["prefect-server"], prefect_env, f"{cfg.prefect_api_url}/health",
            f"http://{cfg.connect_host}:{cfg.prefect_port}",
        ),
        Service(
            "mlflow", cmds["mlflow"], {**quiet, **MLFLOW_SERVER_ENV, "MLFLOW_BACKEND_STORE_URI": mlflow_store},
            f"{cfg.mlflow_url}/health", f"{cfg.mlflow_url}/{MLFLOW_UI_PATH}",
        ),
        Service("worker", cmds["worker"], worker_env, f"http://{cfg.connect_host}:{cfg.worker_health_port}/health"),
    ]  # fmt: skip
    if "optuna-dashboard" in cmds:
        # its storage (maybe with a password) goes in a 0600 config file, not in argv where `ps` shows it
        conf = backends.state_dir / "optuna-dashboard.toml"
        argv = [*cmds["optuna-dashboard"], "--from-config", str(conf)]
        text = f"[optuna_dashboard]\nstorage = {json.dumps(backends.optuna_url)}\n"
        url = f"http://{cfg.connect_host}:{cfg.dashboard_port}"
        dashboard = Service(
            "optuna-dashboard", argv, quiet, f"{url}/api/studies", f"{url}/dashboard/", secret_files=((conf, text),)
        )
        out.append(dashboard)
    if "data-docs" in cmds and cfg.docs_url:
        argv = [*cmds["data-docs"], "--directory", str(backends.docs_dir)]
        docs = Service("data-docs", argv, quiet, f"{cfg.docs_url}/", f"{cfg.docs_url}/index.html", (backends.docs_dir,))
        out.append(docs)
    return out


def init_optuna_storage(url: str) -> None:
    """Create the Optuna schema once, before the dashboard and sweep workers open it (concurrent creation races)."""
    import optuna

    path = url.removeprefix("sqlite:///")
    if path != url and not path.startswith("file:"):  # a sqlite URI filename (file:...?uri=true) is no path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    optuna.storages.RDBStorage(url)


class StackError(RuntimeError):
    """A service could not start; the message names it, says why and where its log is."""


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` now (checked before starting, so a clash names the port)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on ``host`` (for tests: it may be taken again before use)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200 within ``timeout``; any connection error means not yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _program(name: str) -> str:
    """The program from this interpreter's environment (the venv), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} is not installed in {sys.prefix}; install candlecast with its dependencies")
    return found


def start(svc: Service, state: Path, timeout_s: float = 120) -> int:
    """Start one service in its own session, wait until its health URL answers, record its pid."""
    for folder in (state, *svc.folders):
        folder.mkdir(parents=True, exist_ok=True)
    pid_file, log = state / f"{svc.name}.json", state / f"{svc.name}.log"
    if running(state, svc.name):
        raise StackError(f"{svc.name} is already running (pid file {pid_file}); run `candlecast down` first")
    argv = [_program(svc.argv[0]), *svc.argv[1:]]
    for path, text in svc.secret_files:
        _write_private(path, text)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, **svc.env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    record = {"pid": proc.pid, "argv": [redact(a) for a in argv], "url": svc.ui_url}
    write_json({**record, "secret_files": [str(p) for p, _ in svc.secret_files]}, pid_file)
    deadline = time.monotonic() + timeout_s
    while not healthy(svc.health_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(state, svc.name)
            tail = log.read_text(errors="replace")[-2000:]
            why = (
                f"exited with {proc.returncode}" if proc.returncode is not None else f"not healthy in {timeout_s:.0f}s"
            )
            raise StackError(f"{svc.name} {why} ({svc.health_url}); log {log}:\n{tail}")
        time.sleep(0.5)
    return proc.pid


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (created 0600, never world-readable for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # an older file keeps its mode: start from a fresh one
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _ours(pid: int, argv: list[str]) -> bool:
    """The pid still runs the program we started (pids are reused); without /proc, trust the pid file."""
    try:
        return argv[0].encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc").is_dir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(state: Path, name: str) -> int | None:
    """The pid of the service's live process, or None (no pid file, dead, or the pid reused by another program)."""
    info = read_json(state / f"{name}.json")
    if info and _alive(info["pid"]) and _ours(info["pid"], info["argv"]):
        return int(info["pid"])
    return None


def stop(state: Path, name: str, grace_s: float = 15) -> bool:
    """Stop a service's process group (SIGTERM, then SIGKILL after ``grace_s``) and drop its pid file."""
    info = read_json(state / f"{name}.json") or {}
    pid = running(state, name)
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            _reap(pid)
    for secret in info.get("secret_files", []):
        Path(secret).unlink(missing_ok=True)
    (state / f"{name}.json").unlink(missing_ok=True)
    return pid is not None


def _reap(pid: int) -> None:
    """Collect a child we started in this process, so it does not linger as a zombie that looks alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def up(services_: list[Service], state: Path, timeout_s: float = 120) -> list[Service]:
    """Start the services in order; on any failure stop the ones already started, then raise."""
    started: list[Service] = []
    try:
        for svc in services_:
            start(svc, state, timeout_s)
            started.append(svc)
    except BaseException:
        down(state, [s.name for s in reversed(started)])
        raise
    return started


def down(state: Path, names: list[str] | None = None) -> list[str]:
    """Stop the named services (default: every one with a pid file in ``state``), workers first."""
    if names is None:
        order = ["data-docs", "optuna-dashboard", "worker", "mlflow", "prefect-server"]
        found = {p.stem for p in state.glob("*.json")} if state.is_dir() else set()
        names = [n for n in order if n in found] + sorted(found - set(order))
    return [n for n in names if stop(state, n)]
