"""Transfer benchmark: drsbox's upload and download throughput against yardsticks on the same file.

Not a test: it prints a table. `.venv/bin/python bench/transfer.py --size-mib 256 --runs 3`; see bench/README.md.
`--storage local,s3` adds drsbox over S3 (moto's standalone server on loopback) next to boto3's own PUT and GET.
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
BUCKET = "bench"
S3_PART = 8 * MiB  # drsbox's multipart part size (objectstore.PART), for boto3's uploads too
LOOPBACK = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # for botocore and aiohttp


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
    endpoint: Endpoint | None = None  # the S3 endpoint whose RSS is watched too
    clear: Callable[[], None] | None = None  # empties its S3 prefix before each run, as `sink` does a dir
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    endpoint_peaks: list[float] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [self.nbytes / seconds / 1e6 for seconds in self.seconds]


@dataclass
class Endpoint:
    """moto's standalone S3 server (tests/s3.py) and a boto3 client of it in the bench process."""

    moto: Any
    client: Any
    idle_rss: list[float] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # unfinished uploads or temp objects found before a run

    @property
    def pid(self) -> int:
        return int(self.moto.process.pid)


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


def download(bench: Bench, server: Server, path: str, follow: bool = False) -> Callable[[int], float]:
    def run(index: int) -> float:
        # -L follows drsbox's 302 to the presigned URL; the status and size are then the store's answer.
        args = ["-o", "/dev/null", *(["-L"] if follow else [])]
        seconds, status, size = curl(args, server.url + path.format(id=server.last_id))
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


def boto3_put(bench: Bench, endpoint: Endpoint, key: str) -> Callable[[int], float]:
    """boto3's managed upload (multipart in drsbox's part size, its default 10 threads): the endpoint's PUT rate."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=S3_PART, multipart_chunksize=S3_PART)

    def run(index: int) -> float:
        started = time.perf_counter()
        endpoint.client.upload_file(str(bench.file), BUCKET, key, Config=config)
        seconds = time.perf_counter() - started
        stored = endpoint.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        if stored != bench.size:
            raise BenchError(f"boto3 upload_file stored {stored} bytes, not {bench.size}")
        return seconds

    return run


def boto3_get(bench: Bench, endpoint: Endpoint, key: str) -> Callable[[int], float]:
    """One streamed GetObject read in 1 MiB chunks and dropped, as drsbox's proxied download reads the store."""

    def run(index: int) -> float:
        started, got = time.perf_counter(), 0
        body = endpoint.client.get_object(Bucket=BUCKET, Key=key)["Body"]
        for chunk in body.iter_chunks(MiB):
            got += len(chunk)
        seconds = time.perf_counter() - started
        if got != bench.size:
            raise BenchError(f"boto3 get_object read {got} bytes, not {bench.size}")
        return seconds

    return run


def clear_prefix(endpoint: Endpoint, prefix: str) -> Callable[[], None]:
    """Deletes every object under the prefix and aborts its unfinished multipart uploads (noting any found)."""

    def clear() -> None:
        client = endpoint.client
        uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        keys = [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key} for key in keys]})
        endpoint.leftovers += [upload["Key"] + " (unfinished upload)" for upload in uploads]
        endpoint.leftovers += [key for key in keys if "/.tmp/" in key]

    return clear


def build_s3_cases(bench: Bench, endpoint: Endpoint, proxied: Server, presigned: Server) -> dict[str, Case]:
    size, direct = bench.size, "direct/file.bin"
    # Each upload case empties its own prefix: the downloads after it fetch what this run's uploads left there.
    return {
        "s3-raw": Case(
            "drsbox S3 raw upload",
            raw_upload(bench, proxied, RAW_UPLOAD),
            size,
            proxied,
            endpoint=endpoint,
            clear=clear_prefix(endpoint, "drsbox/"),
        ),
        "s3-put": Case(
            "boto3 upload_file (8 MiB parts)",
            boto3_put(bench, endpoint, direct),
            size,
            endpoint=endpoint,
            clear=clear_prefix(endpoint, "direct/"),
        ),
        "s3-down": Case(
            "drsbox S3 DRS download (proxied)", download(bench, proxied, DRS_DATA), size, proxied, endpoint=endpoint
        ),
        "s3-presigned": Case(
            "drsbox S3 download (302, curl -L)",
            download(bench, presigned, DRS_DATA, follow=True),
            size,
            presigned,
            endpoint=endpoint,
        ),
        "s3-get": Case("boto3 get_object (streamed)", boto3_get(bench, endpoint, direct), size, endpoint=endpoint),
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
            if case.clear is not None:
                case.clear()
            os.sync()  # earlier cases' writeback must not land on this one's clock
            server_pid = None if case.server is None else case.server.pid
            endpoint_pid = None if case.endpoint is None else case.endpoint.pid
            with RssPeak(server_pid) as rss, RssPeak(endpoint_pid) as endpoint_rss:
                case.seconds.append(case.run(index))
            case.peaks.append(rss.peak)
            case.endpoint_peaks.append(endpoint_rss.peak)
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


def start_endpoint(bench: Bench) -> Endpoint:
    sys.path.insert(0, str(ROOT / "tests"))
    import s3  # tests/s3.py; imported here, so that local-only runs need neither moto nor boto3

    os.environ.update(LOOPBACK)  # the bench process's boto3 client
    temp = bench.work / "moto"  # moto spools each object above a few MiB to a temporary file: the bench's disk
    temp.mkdir()
    moto = s3.Moto(free_port(), {"TMPDIR": str(temp), **LOOPBACK})
    moto.start()
    endpoint = Endpoint(moto, moto.client())
    endpoint.client.create_bucket(Bucket=BUCKET)
    endpoint.idle_rss.append(rss_mib(endpoint.pid))
    return endpoint


def drsbox_s3(bench: Bench, endpoint: Endpoint, name: str, presign: bool) -> Server:
    port, sink = free_port(), bench.work / name  # sink: only the log's place; the bytes go to the bucket
    sink.mkdir()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "DEV_TOKEN": bench.token, "UFS_STORAGE": f"s3://{BUCKET}/drsbox"}
    env |= {"UFS_PRESIGN": str(presign).lower(), "DATABASE_URL": "", "LOG_LEVEL": "warning", **LOOPBACK}
    env |= {"AWS_ENDPOINT_URL": endpoint.moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1"}
    return Server(name, [sys.executable, "server.py"], env, port, sink)


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


def print_header(args: argparse.Namespace, bench: Bench, load: float, endpoint: Endpoint | None) -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: nproc {os.cpu_count()} ({cpu}), python {platform.python_version()}, {platform.platform()}")
    print(f"servers: {installed('uvicorn')}, {installed('uvloop')}, {installed('httptools')}, {installed('starlette')}")
    print(f"file:    {bench.size // MiB} MiB of random bytes in {bench.work} ({fs_type(bench.work)})")
    print(f"runs:    {args.runs} interleaved; ranges: {bench.ranges} x 1 MiB per run; MB = 1e6 bytes")
    if endpoint is not None:
        print(f"s3:      moto_server ({installed('moto')}) at {endpoint.moto.url}, bucket {BUCKET}; drsbox: ", end="")
        print(f"{installed('aiobotocore')}; yardsticks: {installed('boto3')}; storage: {','.join(args.storage)}")
    print(f"load:    {load:.2f} before, {os.getloadavg()[0]:.2f} after (1-minute load average)")


def print_table(cases: dict[str, Case]) -> None:
    s3 = any(case.endpoint is not None for case in cases.values())
    endpoint_column = f"{'S3 peak RSS':>13}" if s3 else ""
    print(f"\n{'case':<34}{'median MB/s':>12}{'min-max MB/s':>14}{'req/s':>8}{'peak RSS MiB':>14}{endpoint_column}")
    for case in cases.values():
        rates = case.rates()
        spread = f"{min(rates):.0f}-{max(rates):.0f}"
        requests = f"{case.requests / statistics.median(case.seconds):.1f}" if case.requests > 1 else "-"
        peak = f"{max(case.peaks):.1f}" if case.server is not None else "-"
        endpoint_peak = "" if not s3 else f"{max(case.endpoint_peaks):>13.0f}" if case.endpoint else f"{'-':>13}"
        print(f"{case.name:<34}{statistics.median(rates):>12.0f}{spread:>14}{requests:>8}{peak:>14}{endpoint_peak}")


RATIOS = [
    ("drsbox raw upload (fsync) / minimal upload", "raw", "min-up", 0.75),
    ("drsbox raw upload (no fsync) / minimal upload", "raw-nofsync", "min-up", 0.75),
    ("drsbox multipart / raw upload (both fsync)", "multipart", "raw", 0.8),
    ("drsbox DRS download / FileResponse", "drs-down", "min-down", 0.8),
    ("drsbox DRS ranges / FileResponse ranges", "drs-ranges", "min-ranges", 0.8),
    # No targets over S3: drsbox's upload does more than the yardstick (a server-side copy to the sha256 key).
    ("drsbox S3 raw upload / boto3 upload_file", "s3-raw", "s3-put", None),
    ("drsbox S3 DRS download / boto3 get_object", "s3-down", "s3-get", None),
    ("drsbox S3 presigned (curl -L) / boto3 get_object", "s3-presigned", "s3-get", None),
]


def print_ratios(cases: dict[str, Case], servers: list[Server], endpoint: Endpoint | None) -> None:
    print(f"\n{'ratio of medians':<48}{'value':>7}  target")
    for label, top, bottom, target in RATIOS:
        if top not in cases:
            continue  # that storage was not benchmarked
        value = statistics.median(cases[top].rates()) / statistics.median(cases[bottom].rates())
        verdict = "-" if target is None else f">= {target:<5} {'ok' if value >= target else 'MISSED'}"
        print(f"{label:<48}{value:>7.2f}  {verdict}")
    served = [case for case in cases.values() if case.server and case.server.name.startswith("drsbox")]
    for label, s3 in [("drsbox peak RSS during a transfer (MiB)", False), ("drsbox over S3: peak RSS (MiB)", True)]:
        peaks = [max(case.peaks) for case in served if (case.endpoint is not None) == s3]
        if peaks:
            print(f"{label:<48}{max(peaks):>7.1f}  < 100    {'ok' if max(peaks) < 100 else 'MISSED'}")
    for server in servers:
        print(f"{server.name} idle RSS: {server.idle_rss[0]:.1f} MiB after start, {server.idle_rss[-1]:.1f} after runs")
    if endpoint is not None:
        peak = max(max(case.endpoint_peaks) for case in cases.values() if case.endpoint is not None)
        rss = endpoint.idle_rss
        print(f"moto_server RSS: {rss[0]:.0f} MiB after start, {rss[-1]:.0f} after runs, {peak:.0f} at its peak")


def print_oddities(servers: list[Server], endpoint: Endpoint | None) -> None:
    if endpoint is not None:
        endpoint.leftovers += [f"{key} (at the end)" for key in s3_leftovers(endpoint)]
        if endpoint.leftovers:
            first = endpoint.leftovers[0]
            print(f"ODD: {len(endpoint.leftovers)} unfinished uploads or temporary objects in the bucket: {first}, ...")
    for server in servers:
        left = list((server.sink / ".tmp").glob("*"))
        if left:
            print(f"ODD: {len(left)} temporary files left in {server.sink / '.tmp'}")
        errors = [line for line in server.log.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"ODD: {server.name} logged {len(errors)} error lines, the first: {errors[0]} (see {server.log})")


def s3_leftovers(endpoint: Endpoint) -> list[str]:
    """drsbox's temporary objects and unfinished multipart uploads: none should outlive an upload request."""
    client, temp = endpoint.client, "drsbox/.tmp/"
    uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    objects = client.list_objects_v2(Bucket=BUCKET, Prefix=temp).get("Contents", [])
    return [f"{upload['Key']} (unfinished upload)" for upload in uploads] + [item["Key"] for item in objects]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="drsbox transfer benchmark (see bench/README.md)")
    parser.add_argument("--size-mib", type=int, default=1024, help="test file size (default 1024)")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs of every case (default 5)")
    parser.add_argument("--ranges", type=int, default=256, help="1 MiB Range requests per ranged run (default 256)")
    parser.add_argument("--tmp-dir", help="parent of the work dir (default: the system temp dir unless it is tmpfs)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir: file, stores, server logs")
    parser.add_argument(
        "--storage", default="local", help="comma-separated: local, s3 (moto's server on loopback); default local"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.storage.split(",") if name.strip()]
    if not chosen or not set(chosen) <= {"local", "s3"}:
        parser.error(f"--storage takes local, s3 or local,s3, not {args.storage!r}")
    args.storage = [name for name in ("local", "s3") if name in chosen]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` must run the finally below too, or the servers would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load, work = os.getloadavg()[0], make_work_dir(args.tmp_dir)
    servers: list[Server] = []
    endpoint: Endpoint | None = None
    try:
        print(f"writing {args.size_mib} MiB of random bytes to {work}", file=sys.stderr)
        sha256 = make_file(work / "file.bin", args.size_mib * MiB)
        ranges = min(args.ranges, args.size_mib)
        bench = Bench(work / "file.bin", args.size_mib * MiB, sha256, secrets.token_urlsafe(32), work, ranges)
        cases: dict[str, Case] = {}
        if "local" in args.storage:
            local = [drsbox(bench, "drsbox-fsync", True), drsbox(bench, "drsbox-nofsync", False), minimal(bench)]
            servers += local
            for server in local:
                server.start()
            cases |= build_cases(bench, *local)
        if "s3" in args.storage:
            endpoint = start_endpoint(bench)
            remote = [
                drsbox_s3(bench, endpoint, "drsbox-s3", False),
                drsbox_s3(bench, endpoint, "drsbox-s3-presign", True),
            ]
            servers += remote
            for server in remote:
                server.start()
            # The presigning server's own record of the file (its memory database is its own): its download
            # case then follows it to the blob that each run's upload through the other server puts back.
            print("uploading the file once to drsbox-s3-presign for its record (untimed)", file=sys.stderr)
            raw_upload(bench, remote[1], RAW_UPLOAD)(0)
            cases |= build_s3_cases(bench, endpoint, *remote)
        measure(list(cases.values()), args.runs)
        for server in servers:
            server.idle_rss.append(rss_mib(server.pid))
        if endpoint is not None:
            endpoint.idle_rss.append(rss_mib(endpoint.pid))
        print_header(args, bench, load, endpoint)
        print_table(cases)
        print_ratios(cases, servers, endpoint)
        print_oddities(servers, endpoint)
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        if endpoint is not None:
            endpoint.moto.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
            if work.parent == ROOT / ".tmp-bench" and not any(work.parent.iterdir()):
                work.parent.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
