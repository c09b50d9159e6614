"""A throwaway PostgreSQL cluster for tests and benchmarks, with the schema applied by real dbmate."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DBMATE = Path(sys.executable).parent / "dbmate"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql: scripts/test installs them")
    return Path(found[-1]).parent


def as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package's `postgres` user owns the cluster instead.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def dbmate(url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [str(DBMATE), "--no-dump-schema", "--migrations-dir", str(ROOT / "db" / "migrations"), *args],
        check=True,
        env=env,
        capture_output=True,
    )


class Cluster:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port

    def url(self, database: str = "drsbox") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def pg_ctl(self, *args: str) -> None:
        command = [str(server_bin() / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(as_postgres(command), check=True, capture_output=True)

    def start(self) -> None:
        # Durability is not under test here; speed is welcome.
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")


@contextmanager
def cluster(database: str = "drsbox") -> Iterator[Cluster]:
    """Starts a cluster on a free loopback port, creates `database` and migrates it with dbmate."""
    folder = Path(tempfile.mkdtemp(prefix="drsbox-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    pg = Cluster(folder, free_port())
    try:
        initdb = [str(server_bin() / "initdb"), "-D", str(pg.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run(as_postgres([*initdb, "--no-sync"]), check=True, capture_output=True)
        pg.start()
        dbmate(pg.url(database), "create")
        dbmate(pg.url(database), "up")
        yield pg
    finally:
        subprocess.run(
            as_postgres([str(server_bin() / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    # `python tests/postgres.py`: a cluster to poke at by hand; Ctrl-C stops it.
    with cluster() as pg:
        print(pg.url(), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
