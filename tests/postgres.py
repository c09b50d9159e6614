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
    subprocess.run([str(DBMATE), "--no-dump-schema", "--migrations-dir", str(ROOT / "db" / "migrations"), *args],
                   check=True, env=env, capture_output=True)


@contextmanager
def cluster(database: str = "drsbox") -> Iterator[str]:
    """Starts a cluster on a free loopback port, creates `database` and migrates it; yields its URL."""
    bin = server_bin()
    folder = Path(tempfile.mkdtemp(prefix="drsbox-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    data = folder / "data"
    port = free_port()
    run = lambda command: subprocess.run(as_postgres(command), check=True, capture_output=True)  # noqa: E731
    try:
        run([str(bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        # Durability is not under test here; speed is welcome.
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        run([str(bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"])
        url = f"postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable"
        dbmate(url, "create")
        dbmate(url, "up")
        yield url
    finally:
        subprocess.run(as_postgres([str(bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    # `python tests/postgres.py`: a cluster to poke at by hand; Ctrl-C stops it.
    with cluster() as url:
        print(url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
