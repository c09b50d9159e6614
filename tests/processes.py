"""Real server processes on free loopback ports, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from postgres import free_port

ROOT = Path(__file__).resolve().parent.parent


def wait_until_up(url: str, process: subprocess.Popen, ca: Path | None = None, timeout: float = 20.0) -> None:
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path  # stdout and stderr: a file, so a chatty server can never block on a full pipe


@contextmanager
def server(env: dict[str, str], command: list[str] | None = None, ca: Path | None = None) -> Iterator[Server]:
    """Runs `python server.py` (or `command`) with `env` on top of ours plus a free PORT; with `ca`, the server
    speaks https (SSL_CERTFILE in `env`) under the name localhost, checked against that CA."""
    port = free_port()
    env = {name: value.replace("{port}", str(port)) for name, value in env.items()}
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    host = full_env["HOST"]
    command = command or [sys.executable, "server.py"]
    log = Path(tempfile.mkstemp(prefix="drsbox-server-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"https://localhost:{port}" if ca else f"http://{host}:{port}"
    try:
        wait_until_up(url, process, ca)
        yield Server(url, process, log)
    finally:
        stop(process, log, 10)


def stop(process: subprocess.Popen, log: Path, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; the log goes too."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.unlink(missing_ok=True)


@contextmanager
def worker(env: dict[str, str]) -> Iterator[Server]:
    """Runs `python worker.py` with `env`; ready once it logs its job loops."""
    log = Path(tempfile.mkstemp(prefix="drsbox-worker-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while "job loops" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start: {log.read_text()}")
            time.sleep(0.05)
        yield Server("", process, log)
    finally:
        stop(process, log, 30)
