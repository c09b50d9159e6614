"""Transfer benchmark: drsbox's upload and download throughput against yardsticks on the same file.

Not a test: it prints a table. `.venv/bin/python bench/transfer.py --size-mib 256 --runs 3`; see bench/README.md.
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
import signal
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
from typing import Any

MiB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
DRS_DATA = "/ga4gh/drs/v1/objects/{id}/access/https/data"
RAW_UPLOAD = "/api/v1/uploads?filename=bench-{index}.bin"
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
    sink: Path  # the directory its uploads land in
    process: subprocess.Popen[bytes] | None = None
    last_id: str = ""  # the DRS id of its latest raw upload, which the download cases fetch
    idle_rss: list[float] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log, "wb") as log:
            env = {**os.environ, **self.env}
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start-up:\n{self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    self.idle_rss.append(rss_mib(self.process.pid))
                    return
            except OSError:
                pass  # not listening yet
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
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.sink.parent / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Case:
    name: str
    run: Callable[[int], float]  # takes the run index, returns the seconds the transfer took
    nbytes: int
    server: Server | None = None
    sink: Path | None = None  # emptied before each run, so every run does the full write (and commit) path
    requests: int = 1
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [self.nbytes / seconds / 1e6 for seconds in self.seconds]


@dataclass(frozen=True)
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


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


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


def upload(
    bench: Bench, server: Server, path: str, args: list[str], pick: Callable[[Any], Any]
) -> Callable[[int], float]:
    """POSTs the file with curl under a new name each run; `pick` finds the stored {sha256, size} in the reply."""

    def run(index: int) -> float:
        reply = bench.work / "reply.json"
        auth = ["-X", "POST", "-H", f"Authorization: Bearer {bench.token}", "-o", str(reply)]
        this = [arg.replace("{index}", str(index)) for arg in [*auth, *args, server.url + path]]
        seconds, status, _ = curl(this[:-1], this[-1])
        body = reply.read_text()
        stored = pick(json.loads(body)) if status in (200, 201) else {}
        if (stored.get("sha256"), stored.get("size")) != (bench.sha256, bench.size):
            raise BenchError(f"{server.name} POST {path}: HTTP {status}: {body[:500]}")
        server.last_id = stored.get("id", server.last_id)
        return seconds

    return run


def raw_upload(bench: Bench, server: Server, path: str) -> Callable[[int], float]:
    # -T streams the file as -F does; `--data-binary @file` loads it into memory first, and curl refuses
    # that for files of 1 GiB and up ("out of memory": its file-to-memory cap), the default size here.
    args = ["-H", "Content-Type: application/octet-stream", "-T", str(bench.file)]
    return upload(bench, server, path, args, lambda reply: reply)


def multipart_upload(bench: Bench, server: Server) -> Callable[[int], float]:
    path = "/api/v1/components/core/file/upload"
    args = ["-F", f"file=@{bench.file};filename=bench-{{index}}.bin"]
    return upload(bench, server, path, args, lambda reply: reply["file"][0])


def download(bench: Bench, server: Server, path: str) -> Callable[[int], float]:
    def run(index: int) -> float:
        seconds, status, size = curl(["-o", "/dev/null"], server.url + path.format(id=server.last_id))
        if (status, size) != (200, bench.size):
            raise BenchError(f"{server.name} GET {path}: HTTP {status}, {size} bytes")
        return seconds

    return run


def range_loop(bench: Bench, server: Server, path: str) -> Callable[[int], float]:
    """Sequential 1 MiB Range requests on one keep-alive connection, as a viewer paging through a file reads."""

    def run(index: int) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        target, buffer = path.format(id=server.last_id), memoryview(bytearray(MiB))
        started = time.perf_counter()
        for first in range(0, bench.ranges * MiB, MiB):
            conn.request("GET", target, headers={"Range": f"bytes={first}-{first + MiB - 1}"})
            response = conn.getresponse()
            got = 0
            while got < MiB and (n := response.readinto(buffer[got:])):
                got += n
            if response.status != 206 or got != MiB or response.read():
                raise BenchError(f"{server.name} range at {first}: HTTP {response.status}, {got} bytes")
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
            subprocess.run(["sync", str(target)], check=True)  # coreutils `sync FILE` is fsync(FILE)
        return time.perf_counter() - started

    return run


def build_cases(bench: Bench, fsync: Server, nofsync: Server, mini: Server) -> dict[str, Case]:
    size, ranged, cp_dir = bench.size, bench.ranges * MiB, bench.work / "cp"
    cp_dir.mkdir()
    # Uploads come before downloads: the downloads fetch the blob this run's uploads left behind.
    return {
        "sha256": Case("sha256 (hashlib, 1 MiB reads)", hash_file(bench, "sha256"), size),
        "md5": Case("md5 (hashlib, 1 MiB reads)", hash_file(bench, "md5"), size),
        "cp": Case("cp", copy(bench, cp_dir / "copy", False), size, sink=cp_dir),
        "cp+fsync": Case("cp + fsync", copy(bench, cp_dir / "copy", True), size, sink=cp_dir),
        "min-up": Case("minimal upload (no fsync)", raw_upload(bench, mini, "/upload"), size, mini, mini.sink),
        "raw": Case("drsbox raw upload (fsync)", raw_upload(bench, fsync, RAW_UPLOAD), size, fsync, fsync.sink),
        "raw-nofsync": Case(
            "drsbox raw upload (no fsync)", raw_upload(bench, nofsync, RAW_UPLOAD), size, nofsync, nofsync.sink
        ),
        "multipart": Case("drsbox multipart upload (fsync)", multipart_upload(bench, fsync), size, fsync, fsync.sink),
        "min-down": Case("FileResponse download", download(bench, mini, "/file"), size, mini),
        "drs-down": Case("drsbox DRS download", download(bench, fsync, DRS_DATA), size, fsync),
        "min-ranges": Case(
            "FileResponse 1 MiB ranges", range_loop(bench, mini, "/file"), ranged, mini, requests=bench.ranges
        ),
        "drs-ranges": Case(
            "drsbox DRS 1 MiB ranges", range_loop(bench, fsync, DRS_DATA), ranged, fsync, requests=bench.ranges
        ),
    }


def empty(sink: Path) -> None:
    for path in sink.iterdir():
        if path.is_file():
            path.unlink()


def measure(cases: list[Case], runs: int) -> None:
    # Interleaved, so drift (other load, page cache, writeback) spreads over every case alike.
    for index in range(runs):
        for case in cases:
            if case.sink is not None:
                empty(case.sink)
            os.sync()  # earlier cases' writeback must not land on this one's clock
            with RssPeak(None if case.server is None else case.server.pid) as rss:
                case.seconds.append(case.run(index))
            case.peaks.append(rss.peak)
            print(f"  run {index + 1}/{runs}  {case.name:<34}{case.rates()[-1]:7.0f} MB/s", file=sys.stderr, flush=True)


def fs_type(path: Path) -> str:
    return subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True).stdout.split()[-1]


def make_work_dir(choice: str | None) -> Path:
    """One directory for the test file and every store, so all cases read and write the same disk."""
    root = Path(choice or tempfile.gettempdir()).resolve()
    if choice is None and fs_type(root) in ("tmpfs", "ramfs"):
        root = ROOT / ".tmp-bench"  # RAM would flatter every write: fall back to the repository's disk
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="drsbox-bench-", dir=root))


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for offset in range(0, size, 16 * MiB):
            block = os.urandom(min(16 * MiB, size - offset))
            digest.update(block)
            file.write(block)
    return digest.hexdigest()


def drsbox(bench: Bench, name: str, fsync: bool) -> Server:
    port, store = free_port(), bench.work / name
    store.mkdir()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "DEV_TOKEN": bench.token, "UFS_STORAGE": str(store)}
    # The memory database keeps the numbers about transfers, and a developer's .env cannot redirect them.
    env |= {"UFS_FSYNC": str(fsync).lower(), "DATABASE_URL": "", "LOG_LEVEL": "warning"}
    return Server(name, [sys.executable, "server.py"], env, port, store)


def minimal(bench: Bench) -> Server:
    port, sink = free_port(), bench.work / "minimal"
    sink.mkdir()
    argv = [sys.executable, "-m", "uvicorn", "bench.minimal_app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    return Server("minimal", argv, {"BENCH_FILE": str(bench.file), "BENCH_UPLOAD_DIR": str(sink)}, port, sink)


def installed(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"no {name}"


def print_header(args: argparse.Namespace, bench: Bench, load: float) -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: nproc {os.cpu_count()} ({cpu}), python {platform.python_version()}, {platform.platform()}")
    print(f"servers: {installed('uvicorn')}, {installed('uvloop')}, {installed('httptools')}, {installed('starlette')}")
    print(f"file:    {bench.size // MiB} MiB of random bytes in {bench.work} ({fs_type(bench.work)})")
    print(f"runs:    {args.runs} interleaved; ranges: {bench.ranges} x 1 MiB per run; MB = 1e6 bytes")
    print(f"load:    {load:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute load average)")


def print_table(cases: dict[str, Case]) -> None:
    print(f"\n{'case':<34}{'median MB/s':>12}{'min-max MB/s':>14}{'req/s':>8}{'peak RSS MiB':>14}")
    for case in cases.values():
        rates = case.rates()
        spread = f"{min(rates):.0f}-{max(rates):.0f}"
        requests = f"{case.requests / statistics.median(case.seconds):.1f}" if case.requests > 1 else "-"
        peak = f"{max(case.peaks):.1f}" if case.server is not None else "-"
        print(f"{case.name:<34}{statistics.median(rates):>12.0f}{spread:>14}{requests:>8}{peak:>14}")


RATIOS = [
    ("drsbox raw upload (fsync) / minimal upload", "raw", "min-up", 0.75),
    ("drsbox raw upload (no fsync) / minimal upload", "raw-nofsync", "min-up", 0.75),
    ("drsbox multipart / raw upload (both fsync)", "multipart", "raw", 0.8),
    ("drsbox DRS download / FileResponse", "drs-down", "min-down", 0.8),
    ("drsbox DRS ranges / FileResponse ranges", "drs-ranges", "min-ranges", 0.8),
]


def print_ratios(cases: dict[str, Case], servers: list[Server]) -> None:
    print(f"\n{'ratio of medians':<48}{'value':>7}  target")
    for label, top, bottom, target in RATIOS:
        value = statistics.median(cases[top].rates()) / statistics.median(cases[bottom].rates())
        print(f"{label:<48}{value:>7.2f}  >= {target:<5} {'ok' if value >= target else 'MISSED'}")
    peak = max(max(case.peaks) for case in cases.values() if case.server and case.server.name.startswith("drsbox"))
    print(f"{'drsbox peak RSS during a transfer (MiB)':<48}{peak:>7.1f}  < 100    {'ok' if peak < 100 else 'MISSED'}")
    for server in servers:
        print(f"{server.name} idle RSS: {server.idle_rss[0]:.1f} MiB after start, {server.idle_rss[-1]:.1f} after runs")


def print_oddities(servers: list[Server]) -> None:
    for server in servers:
        left = list((server.sink / ".tmp").glob("*"))
        if left:
            print(f"ODD: {len(left)} temporary files left in {server.sink / '.tmp'}")
        errors = [line for line in server.log.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"ODD: {server.name} logged {len(errors)} error lines, the first: {errors[0]} (see {server.log})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="drsbox transfer benchmark (see bench/README.md)")
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size (default 1024)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs of every case (default 5)")
    parser.add_argument("--ranges", type=int, default=256, help="1 MiB Range requests per ranged run (default 256)")
    parser.add_argument("--tmp-dir", help="parent of the work dir (default: the system temp dir unless it is tmpfs)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir: file, stores, server logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` must run the finally below too, or the servers would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load, work = os.getloadavg()[0], make_work_dir(args.tmp_dir)
    servers: list[Server] = []
    try:
        print(f"writing {args.size_mib} MiB of random bytes to {work}", file=sys.stderr)
        sha256 = make_file(work / "file.bin", args.size_mib * MiB)
        ranges = min(args.ranges, args.size_mib)
        bench = Bench(work / "file.bin", args.size_mib * MiB, sha256, secrets.token_urlsafe(32), work, ranges)
        servers = [drsbox(bench, "drsbox-fsync", True), drsbox(bench, "drsbox-nofsync", False), minimal(bench)]
        for server in servers:
            server.start()
        cases = build_cases(bench, *servers)
        measure(list(cases.values()), args.runs)
        for server in servers:
            server.idle_rss.append(rss_mib(server.pid))
        print_header(args, bench, load)
        print_table(cases)
        print_ratios(cases, servers)
        print_oddities(servers)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
            if work.parent == ROOT / ".tmp-bench" and not any(work.parent.iterdir()):
                work.parent.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
