"""A throwaway PostgreSQL on 127.0.0.1: installed from Debian packages if absent, started in a temp folder.

Postgres refuses to run as root, so as root the cluster belongs to the `postgres` user the Debian
package creates (via runuser); as anyone else it runs as the current user. Stopped and removed at the
end, also when the test fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.stack import free_port

USER = "candlecast"
DATABASES = ("prefect", "mlflow", "optuna")


@dataclass(frozen=True)
class Postgres:
    port: int

    def url(self, database: str, driver: str = "psycopg2") -> str:
        return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{database}"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _install() -> Path:
    """apt-get install postgresql (as root on Debian/Ubuntu); skip the system tests where that is impossible."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("PostgreSQL is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = _bin_dir()
    assert found, "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb exists"
    return found


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bin_dir = _bin_dir() or _install()
    root = Path(tempfile.mkdtemp(prefix="candlecast-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def pg(*argv: str) -> None:
        done = subprocess.run([*as_user, str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    try:
        pg("initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        pg("pg_ctl", "-D", str(data), "-o", opts, "-l", str(root / "postgres.log"), "-w", "start")
        for db in DATABASES:
            pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER, db)
        yield Postgres(port)
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
