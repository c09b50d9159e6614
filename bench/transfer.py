"""Transfer benchmark: drsbox's upload and download throughput against yardsticks on the same file.

Not a test: it prints a table. Run from anywhere with the project's venv, e.g.
`.venv/bin/python bench/transfer.py --size-mib 256 --runs 3` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

MiB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
DRS_DATA = "/ga4gh/drs/v1/objects/{id}/access/https/data"
# --noproxy: a proxy set in the environment must never see (or slow down) benchmark traffic.
CURL = ["curl", "-s", "--noproxy", "*", "-w", "%{time_total} %{http_code} %{size_download}"]


class BenchError(Exception):
    pass


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    last_id: str = ""

    def start(self) -> None:
        with open(self.log, "wb") as log:
            env = {**os.environ, **self.env}
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start-up:\n{self.log.read_text()[-2000:]}")
            if get_status(self.port, "/healthz") == 200:
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer /healthz within 30 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Case:
    name: str
    run: Callable[[int], float]  # takes the run index, returns the seconds the transfer took
    server: Server | None = None
    sink: Path | None = None  # emptied before each run so every run writes afresh
    requests: int = 1
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)


@dataclass
class Bench:
    file: Path
    size: int
    sha256: str
    token: str
    work: Path
    ranges: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_status(port: int, path: str) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssPeak:
    """Polls VmRSS during one transfer: VmHWM would be the process's lifetime peak, not this transfer's."""

    def __init__(self, pid: int | None) -> None:
        self.pid, self.peak = pid, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        while self.pid is not None:
            self.peak = max(self.peak, rss_mib(self.pid))
            if self.done.wait(0.02):
                return

    def __enter__(self) -> RssPeak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def curl(args: list[str], url: str) -> tuple[float, int, int]:
    out = subprocess.run([*CURL, *args, url], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"curl {url} failed with exit code {out.returncode}: {out.stderr.strip()}")
    seconds, status, size = out.stdout.split()
    return float(seconds), int(status), int(size)


def post(bench: Bench, server: Server, path: str, args: list[str], expect: int) -> tuple[float, dict]:
    reply = bench.work / "reply.json"
    auth = ["-X", "POST", "-H", f"Authorization: Bearer {bench.token}", "-o", str(reply)]
    seconds, status, _ = curl([*auth, *args], server.url + path)
    body = reply.read_text()
    if status != expect:
        raise BenchError(f"{server.name} POST {path}: HTTP {status}: {body[:500]}")
    return seconds, json.loads(body)


def check_digest(bench: Bench, where: str, reply: dict) -> None:
    if (reply.get("sha256"), reply.get("size")) != (bench.sha256, bench.size):
        raise BenchError(f"{where} stored the wrong bytes: {reply}")


def raw_upload(bench: Bench, server: Server, path: str, expect: int) -> Callable[[int], float]:
    def run(index: int) -> float:
        args = ["-H", "Content-Type: application/octet-stream", "--data-binary", f"@{bench.file}"]
        seconds, reply = post(bench, server, path.format(index=index), args, expect)
        check_digest(bench, server.name, reply)
        server.last_id = reply.get("id", "")
        return seconds

    return run


def multipart_upload(bench: Bench, server: Server) -> Callable[[int], float]:
    def run(index: int) -> float:
        args = ["-F", f"file=@{bench.file};filename=bench-{index}.bin"]
        seconds, reply = post(bench, server, "/api/v1/components/core/file/upload", args, 200)
        check_digest(bench, server.name, reply["file"][0])
        return seconds

    return run


def download(bench: Bench, server: Server, path: str) -> Callable[[int], float]:
    def run(index: int) -> float:
        seconds, status, size = curl(["-o", "/dev/null"], server.url + path.format(id=server.last_id))
        if (status, size) != (200, bench.size):
            raise BenchError(f"{server.name} GET {path}: HTTP {status}, {size} bytes")
        return seconds

    return run


def range_loop(bench: Bench, server: Server, path: str) -> Callable[[int], float]:
    """Sequential 1 MiB Range requests on one keep-alive connection, as a player or a tiled viewer reads."""

    def run(index: int) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        target, buffer = path.format(id=server.last_id), memoryview(bytearray(MiB))
        started = time.perf_counter()
        for number in range(bench.ranges):
            first, last = number * MiB, min((number + 1) * MiB, bench.size) - 1
            conn.request("GET", target, headers={"Range": f"bytes={first}-{last}"})
            response = conn.getresponse()
            got = 0
            while got < last - first + 1 and (n := response.readinto(buffer[got:])):
                got += n
            if response.status != 206 or got != last - first + 1 or response.read():
                raise BenchError(f"{server.name} range {first}-{last}: HTTP {response.status}, {got} bytes")
        seconds = time.perf_counter() - started
        conn.close()
        return seconds

    return run


def hash_file(bench: Bench, algorithm: str) -> Callable[[int], float]:
    def run(index: int) -> float:
        digest = hashlib.new(algorithm)
        started = time.perf_counter()
        with open(bench.file, "rb", buffering=0) as file:
            while chunk := file.read(MiB):
                digest.update(chunk)
        return time.perf_counter() - started

    return run


def copy(bench: Bench, target: Path, sync: bool) -> Callable[[int], float]:
    def run(index: int) -> float:
        started = time.perf_counter()
        subprocess.run(["cp", str(bench.file), str(target)], check=True)
        if sync:
            subprocess.run(["sync", str(target)], check=True)  # coreutils sync FILE = fsync(FILE)
        return time.perf_counter() - started

    return run


def empty(sink: Path) -> None:
    for path in sink.iterdir():
        if path.is_file():
            path.unlink()


def measure(cases: list[Case], runs: int) -> None:
    # Interleaved so drift (other load, page cache, thermal) spreads over every case alike.
    for index in range(runs):
        for case in cases:
            if case.sink is not None:
                empty(case.sink)
            os.sync()  # earlier cases' writeback must not land on this one's clock
            with RssPeak(None if case.server is None else case.server.process.pid) as rss:  # type: ignore[union-attr]
                case.seconds.append(case.run(index))
            case.peaks.append(rss.peak)
            print(f"  run {index + 1}/{runs} {case.name}: {mb_per_s(case, case.seconds[-1], bench_size):.0f} MB/s",
                  flush=True)


bench_size = 0  # set once in main; only the progress lines use it


def mb_per_s(case: Case, seconds: float, size: int) -> float:
    return case.requests * min(size, MiB) * 0 + transferred(case, size) / seconds / 1e6


def transferred(case: Case, size: int) -> int:
    return size if case.requests == 1 else min(case.requests * MiB, size)
