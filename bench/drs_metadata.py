"""DRS metadata benchmark: `GET /ga4gh/drs/v1/objects/{id}` requests per second and p50/p99 latency at
concurrency 1, 16 and 64 against PostgreSQL holding a million objects, next to bench/minimal_db_app.py
(one asyncpg primary-key select behind a bare Starlette route: the ceiling) in the same run.

Not a test: it prints a table. `.venv/bin/python bench/drs_metadata.py [--objects 1000000] [--runs 3]`;
see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres  # noqa: E402
import processes  # noqa: E402

SERVICE_USER = "00000000-0000-0000-0000-000000000000"
TARGET = 0.8  # drsbox / minimal requests per second at the highest concurrency
TICK = os.sysconf("SC_CLK_TCK")

# The service user's uploads: realistic values (url storage://<sha256>, sizes up to 100 MB, md5, a name
# with an extension the mime type comes from), made in two set-based statements rather than a million round trips.
FILL_UPLOADS = """INSERT INTO upload (url, sha256, size, md5, created)
SELECT 'storage://' || h, h, 1 + (n * 2654435761) % 100000000, md5(n::text), now() - (n % 31536000) * interval '1 s'
FROM (SELECT n, encode(sha256(int8send(n)), 'hex') AS h FROM generate_series(1, $1::bigint) AS n) AS numbered"""
FILL_USER_UPLOADS = """INSERT INTO user_upload ("user", upload, filename, created)
SELECT $1::uuid, id, 'sample-' || left(sha256, 12) || (ARRAY['.csv', '.tsv', '.json', '.txt', '.gmt', '.h5ad'])[
    1 + size % 6], created
FROM upload"""
SAMPLE_IDS = "SELECT id FROM user_upload ORDER BY random() LIMIT $1"

# wrk runs this in its one thread: random ids from a file, a count of non-200 answers, one JSON line at the end.
WRK_LUA = """
non200 = 0
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  prefix, ids = args[1], {}
  for line in io.lines(args[2]) do ids[#ids + 1] = line end
  math.randomseed(tonumber(args[3]))
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)])
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non200") end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, "non200": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout))
end
"""


class BenchError(Exception):
    pass


@dataclass
class Sample:
    """One measured run of one target at one concurrency; CPU in percent of one core over the run."""

    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-200 answers plus socket errors and timeouts
    cpu: dict[str, float] = field(default_factory=dict)  # server, postgres, client, other


@dataclass
class Target:
    name: str
    prefix: str  # the path the id is appended to
    server: processes.Server
    pid: int
    samples: dict[int, list[Sample]] = field(default_factory=dict)  # by concurrency

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])


class CpuMeter:
    """CPU time over one run: the server, PostgreSQL (postmaster and its children), the load generator
    (our waited-for children, i.e. wrk; or ourselves for the Python client) and whatever else the machine did.

    PostgreSQL's processes are polled while the run lasts: a backend can end mid-run (asyncpg's pool replaces a
    connection after 50,000 queries) and take its time along; polling loses at most one interval of it."""

    def __init__(self, server_pid: int, postmaster_pid: int, self_client: bool) -> None:
        self.server_pid, self.postmaster_pid, self.self_client = server_pid, postmaster_pid, self_client
        self.first: dict[int, float] = {}  # CPU seconds of each PostgreSQL process when the run started
        self.last: dict[int, float] = {}  # and when last seen
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def totals(self) -> dict[str, float]:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        usage = resource.getrusage(resource.RUSAGE_SELF if self.self_client else resource.RUSAGE_CHILDREN)
        return {
            "machine": (sum(fields[:7]) - fields[3] - fields[4]) / TICK,  # user..softirq but idle, iowait (and steal)
            "server": process_seconds(self.server_pid) or 0.0,
            "client": usage.ru_utime + usage.ru_stime,
            "wall": time.monotonic(),
        }

    def poll(self) -> None:
        while True:
            self.last |= postgres_seconds(self.postmaster_pid)
            if self.done.wait(0.2):
                return

    def __enter__(self) -> CpuMeter:
        self.first = postgres_seconds(self.postmaster_pid)
        self.last = dict(self.first)
        self.before = self.totals()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = self.totals()
        self.done.set()
        self.thread.join()
        self.last |= postgres_seconds(self.postmaster_pid)

    def percent(self) -> dict[str, float]:
        wall = self.after["wall"] - self.before["wall"]
        used = {name: 100 * (self.after[name] - self.before[name]) / wall for name in self.after if name != "wall"}
        # A process that started mid-run counts from zero.
        used["postgres"] = 100 * sum(seconds - self.first.get(pid, 0.0) for pid, seconds in self.last.items()) / wall
        used["other"] = used.pop("machine") - used["server"] - used["postgres"] - used["client"]
        return used


def process_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def postgres_seconds(postmaster_pid: int) -> dict[int, float]:
    # A process that exits between the listing and the read is left out, not read as 0.
    pids = [postmaster_pid, *children(postmaster_pid)]
    return {pid: seconds for pid in pids if (seconds := process_seconds(pid)) is not None}


def children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


async def fill(url: str, objects: int, sample: int, ids_file: Path) -> dict[str, str]:
    """Inserts the objects, analyzes, writes `sample` random ids to `ids_file`; returns facts for the header."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            # Every upload row is new and referenced right below: the per-row foreign key triggers prove nothing.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(FILL_UPLOADS, objects)
            await conn.execute(FILL_USER_UPLOADS, SERVICE_USER)
        # VACUUM sets hint bits and the visibility map: reads then see a table as it is long after its writes.
        await conn.execute("VACUUM (ANALYZE) upload, user_upload")
        ids = [str(row["id"]) for row in await conn.fetch(SAMPLE_IDS, sample)]
        ids_file.write_text("\n".join(ids) + "\n")
        return {
            "version": await conn.fetchval("SHOW server_version"),
            "size": await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))"),
            "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
        }
    finally:
        await conn.close()


def run_wrk(target: Target, ids_file: Path, script: Path, connections: int, seconds: int, seed: int) -> Sample:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    argv += [f"http://127.0.0.1:{target.port}/", "--", target.prefix, str(ids_file), str(seed)]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    line = next((line for line in out.stdout.splitlines() if line.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed with exit code {out.returncode}:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[len("BENCH ") :])
    rps = result["requests"] / (result["duration_us"] / 1e6)
    return Sample(rps, result["p50_us"] / 1000, result["p99_us"] / 1000, result["non200"] + result["errors"])


async def python_client(port: int, prefix: str, ids: list[str], connections: int, seconds: float, seed: int) -> Sample:
    """Keep-alive GETs over raw sockets, for machines without wrk: it costs the server's CPU far more than wrk."""
    rng, latencies, bad = random.Random(seed), [], 0
    length = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")

    async def loop(deadline: float) -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(f"GET {prefix}{rng.choice(ids)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            match = length.search(head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            latencies.append(time.perf_counter() - started)
            bad += head[9:12] != b"200"
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(loop(started + seconds) for _ in range(connections)))
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Sample(len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000, bad)


@dataclass(frozen=True)
class Load:
    """How requests are made: wrk when installed, else the Python client."""

    client: str
    ids_file: Path
    script: Path
    ids: list[str]
    postmaster_pid: int

    def run(self, target: Target, connections: int, seconds: int, seed: int) -> Sample:
        with CpuMeter(target.pid, self.postmaster_pid, self_client=self.client == "python") as meter:
            if self.client == "wrk":
                sample = run_wrk(target, self.ids_file, self.script, connections, seconds, seed)
            else:
                sample = asyncio.run(python_client(target.port, target.prefix, self.ids, connections, seconds, seed))
        sample.cpu = meter.percent()
        return sample


def measure(load: Load, targets: list[Target], args: argparse.Namespace) -> None:
    for connections in args.concurrency:
        for target in targets:
            load.run(target, connections, args.warmup, seed=random.randrange(1 << 30))
            target.samples[connections] = []
        for index in range(args.runs):
            # Interleaved, order alternating: drift and caches warmed by the previous run favour neither side.
            for target in targets if index % 2 == 0 else reversed(targets):
                sample = load.run(target, connections, args.seconds, seed=random.randrange(1 << 30))
                target.samples[connections].append(sample)
                print(
                    f"  c={connections:<3} run {index + 1}/{args.runs} {target.name:<8}{sample.rps:8.0f} req/s"
                    f"  p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms  bad {sample.bad}"
                    f"  load {os.getloadavg()[0]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )


def check_answers(targets: list[Target], some_id: str) -> None:
    """Both targets find a known id (and drsbox answers the id it was asked) before anything is timed."""
    for target in targets:
        response = httpx.get(f"http://127.0.0.1:{target.port}{target.prefix}{some_id}", timeout=10)
        if response.status_code != 200 or response.json().get("id") != some_id:
            raise BenchError(f"{target.name}: HTTP {response.status_code} for {some_id}: {response.text[:300]}")


def py_spy(target: Target, load: Load, connections: int, seconds: int, output: Path) -> None:
    """Samples drsbox (non-blocking, collapsed stacks) while it is under load at `connections`."""
    py_spy = Path(sys.executable).parent / "py-spy"
    argv = [str(py_spy), "record", "--nonblocking", "--format", "raw", "--rate", "200", "-o", str(output)]
    recorder = subprocess.Popen([*argv, "-d", str(int(seconds)), "-p", str(target.pid)], stdout=subprocess.DEVNULL)
    try:
        load.run(target, connections, seconds, seed=1)
    finally:
        recorder.wait(seconds + 30)
    print(f"py-spy: {output} (collapsed stacks of {target.name} at concurrency {connections})", file=sys.stderr)


def installed(name: str) -> str:
    try:
        return f"{name} {metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"no {name}"


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "not installed"
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0]


def print_header(args: argparse.Namespace, load: Load, facts: dict[str, str], fill_seconds: float) -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) / (1 << 20)
    client = tool_version(["wrk", "--version"]) if load.client == "wrk" else "Python asyncio client (in this process)"
    print(f"command:  {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine:  nproc {os.cpu_count()} ({cpu}), {memory:.1f} GiB, python {platform.python_version()}")
    print(f"          {platform.platform()}")
    print(
        f"servers:  {installed('uvicorn')}, {installed('uvloop')}, {installed('httptools')}, "
        f"{installed('starlette')}, {installed('asyncpg')}; one process each, asyncpg pool max_size 10"
    )
    print(
        f"database: PostgreSQL {facts['version']}, {args.objects:,} objects (random uuids), {facts['size']}, "
        f"shared_buffers {facts['shared_buffers']}, fsync off; filled and analyzed in {fill_seconds:.1f} s"
    )
    print(f"load:     {client}, one thread; ids drawn at random from {len(load.ids):,} sampled object ids")
    print(
        f"runs:     {args.runs} x {args.seconds:g} s per target and concurrency, interleaved, after a "
        f"{args.warmup:g} s warm-up; medians"
    )


def cpu_per_request(sample: Sample, name: str) -> float:
    """Microseconds of `name`'s CPU per request: steadier than req/s when other work shares the cores."""
    return sample.cpu[name] / sample.rps * 1e4


def print_table(targets: list[Target], concurrency: list[int]) -> None:
    print(
        f"\n{'conc':>4}  {'target':<8}{'req/s':>7}{'min-max':>12}{'p50 ms':>8}{'p99 ms':>8}{'non-200':>8}"
        f"  {'CPU us/req: server':>18}{'pg':>5}   {'CPU % of a core: server':>23}{'pg':>5}{'client':>7}{'other':>6}"
    )
    for connections in concurrency:
        for target in targets:
            samples = target.samples[connections]
            rates = [sample.rps for sample in samples]
            cpu = {name: statistics.median(sample.cpu[name] for sample in samples) for name in samples[0].cpu}
            print(
                f"{connections:>4}  {target.name:<8}{statistics.median(rates):>7.0f}"
                f"{f'{min(rates):.0f}-{max(rates):.0f}':>12}"
                f"{statistics.median(sample.p50_ms for sample in samples):>8.2f}"
                f"{statistics.median(sample.p99_ms for sample in samples):>8.2f}"
                f"{sum(sample.bad for sample in samples):>8}"
                f"{statistics.median(cpu_per_request(sample, 'server') for sample in samples):>20.0f}"
                f"{statistics.median(cpu_per_request(sample, 'postgres') for sample in samples):>5.0f}"
                f"{cpu['server']:>26.0f}{cpu['postgres']:>5.0f}{cpu['client']:>7.0f}{cpu['other']:>6.0f}"
            )


def print_ratios(drsbox: Target, minimal: Target, concurrency: list[int]) -> None:
    print(f"\n{'drsbox / minimal':<20}{'req/s':>8}{'requests per server CPU second':>32}")
    for connections in concurrency:
        ours, theirs = drsbox.samples[connections], minimal.samples[connections]
        ratio = statistics.median(s.rps for s in ours) / statistics.median(s.rps for s in theirs)
        cost = statistics.median(cpu_per_request(s, "server") for s in theirs) / statistics.median(
            cpu_per_request(s, "server") for s in ours
        )
        last = connections == max(concurrency)
        verdict = f"  target req/s >= {TARGET}: {'ok' if ratio >= TARGET else 'MISSED'}" if last else ""
        print(f"  concurrency {connections:<6}{ratio:>8.2f}{cost:>32.2f}{verdict}")


def print_oddities(targets: list[Target]) -> None:
    for target in targets:
        lines = target.server.log.read_text().splitlines()
        errors = [line for line in lines if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"ODD: {target.name} logged {len(errors)} error lines, the first: {errors[0]}")
        if target.server.process.poll() is not None:
            print(f"ODD: {target.name} exited with {target.server.process.returncode}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="drsbox DRS metadata benchmark (see bench/README.md)")
    parser.add_argument("--objects", type=int, default=1_000_000, help="objects in the database (default 1000000)")
    parser.add_argument("--sample", type=int, default=100_000, help="random object ids requests draw from")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up per target and concurrency (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per target and concurrency (default 3)")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 16, 64],
        help="comma-separated connection counts (default 1,16,64)",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when installed (auto), or the Python asyncio client",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="afterwards, record drsbox at the highest concurrency with py-spy (collapsed stacks)",
    )
    return parser.parse_args(argv)


def pick_client(choice: str) -> str:
    if choice != "python" and shutil.which("wrk"):
        return "wrk"
    if choice == "wrk":
        raise BenchError("wrk is not installed (Debian: apt-get install -y wrk)")
    if choice == "auto":
        print(
            "wrk not found (Debian: apt-get install -y wrk): using the Python asyncio client, which shares the "
            "cores with the servers and costs more CPU than they do: expect lower, client-bound numbers",
            file=sys.stderr,
        )
    return "python"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A plain `kill` must run the finally blocks too, or the servers and PostgreSQL would outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    try:
        client = pick_client(args.client)
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drsbox-bench-")))
            print(f"starting PostgreSQL, filling {args.objects:,} objects", file=sys.stderr, flush=True)
            pg = stack.enter_context(postgres.cluster())
            started = time.monotonic()
            facts = asyncio.run(fill(pg.url(), args.objects, args.sample, work / "ids.txt"))
            fill_seconds = time.monotonic() - started
            (work / "ufs").mkdir()
            quiet = {"DATABASE_URL": pg.url(), "LOG_LEVEL": "warning"}
            uvicorn = [sys.executable, "-m", "uvicorn", "bench.minimal_db_app:app", "--host", "127.0.0.1"]
            uvicorn += ["--port", "{port}", "--log-level", "warning", "--no-access-log"]
            drsbox_server = stack.enter_context(processes.server({**quiet, "UFS_STORAGE": str(work / "ufs")}))
            minimal_server = stack.enter_context(processes.server(quiet, uvicorn))
            drsbox = Target("drsbox", "/ga4gh/drs/v1/objects/", drsbox_server, drsbox_server.process.pid)
            minimal = Target("minimal", "/objects/", minimal_server, minimal_server.process.pid)
            ids = (work / "ids.txt").read_text().split()
            (work / "random_ids.lua").write_text(WRK_LUA)
            postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
            load = Load(client, work / "ids.txt", work / "random_ids.lua", ids, postmaster)
            check_answers([minimal, drsbox], ids[0])
            measure(load, [minimal, drsbox], args)
            if args.py_spy:
                py_spy(drsbox, load, max(args.concurrency), args.seconds, args.py_spy.resolve())
            print_header(args, load, facts, fill_seconds)
            print(f"machine load (1-minute average): {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
            print_table([minimal, drsbox], args.concurrency)
            print_ratios(drsbox, minimal, args.concurrency)
            print_oddities([minimal, drsbox])
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
