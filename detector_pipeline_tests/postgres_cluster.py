"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests, from Debian's packages (`make postgres`)."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PostgresMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Cluster:
    host: str
    port: int
    user: str
    db_name: str

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": self.db_name}


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    raise PostgresMissing("PostgreSQL is not installed: run `make postgres` (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` account then."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")  # the Debian package creates it
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr or done.stdout}")


@contextlib.contextmanager
def running_cluster(db_name: str = "dagster") -> Iterator[Cluster]:
    """initdb a cluster in a fresh folder under /tmp (the postgres account must reach it), start it on a
    free port of 127.0.0.1 (trust auth, no other listener), yield it, stop it and delete it."""
    bin_dir, prefix = postgres_bin(), _as_postgres_user()
    folder = Path(tempfile.mkdtemp(prefix="detector-pipeline-pg-"))
    if prefix:
        shutil.chown(folder, "postgres")
    data, port, user = folder / "pgdata", _free_port(), "dagster"
    try:
        _run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"])
        _run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", f"-h 127.0.0.1 -p {port} -k {folder} -F",
              "-l", str(folder / "log"), "-w", "start"])
        try:
            _run([*prefix, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, db_name])
            yield Cluster("127.0.0.1", port, user, db_name)
        finally:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
