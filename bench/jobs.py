"""Benchmark (not a test): jobs per second through the PostgreSQL queue with 1 and 2 worker processes,
for empty jobs and for 1 MiB URL imports from a local HTTP server.

    .venv/bin/python bench/jobs.py [--jobs 2000] [--imports 200] [--loops 2]

Each case starts a fresh throwaway PostgreSQL (migrated by dbmate), enqueues every job at once in one
INSERT, starts the worker processes (`python worker.py`, N_WORKERS loops each) and times from their
start until the last job is done. Only 127.0.0.0/8 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres  # noqa: E402
import processes  # noqa: E402
from origin import origin  # noqa: E402

SERVICE_USER = "00000000-0000-0000-0000-000000000000"
ENQUEUE = """INSERT INTO jobs (kind, payload, "user")
SELECT $1, jsonb_build_object('url', $2::text, 'filename', 'f' || n || '.bin'), $3::uuid
FROM generate_series(1, $4) AS n"""


async def enqueue(url: str, kind: str, source: str, count: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(ENQUEUE, kind, source, SERVICE_USER, count)
    finally:
        await conn.close()


async def wait_done(url: str, kind: str, count: int, timeout: float = 600) -> None:
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + timeout
        finished = "SELECT count(*) FROM jobs WHERE kind = $1 AND state IN ('done', 'failed')"
        while await conn.fetchval(finished, kind) < count:
            if time.monotonic() > deadline:
                raise TimeoutError("jobs did not finish")
            await asyncio.sleep(0.02)
        failed = await conn.fetchval("SELECT count(*) FROM jobs WHERE state = 'failed'")
        if failed:
            raise RuntimeError(
                f"{failed} jobs failed: {await conn.fetchval('SELECT error FROM jobs WHERE error IS NOT NULL LIMIT 1')}"
            )
    finally:
        await conn.close()


def run_case(kind: str, count: int, workers: int, loops: int, source: str) -> float:
    """Jobs per second for one case, on its own fresh database and storage."""
    with postgres.cluster() as pg, tempfile.TemporaryDirectory() as ufs:
        url = pg.url()
        asyncio.run(enqueue(url, kind, source, count))
        env = {
            "DATABASE_URL": url,
            "UFS_STORAGE": ufs,
            "N_WORKERS": str(loops),
            "IMPORT_ALLOW": "127.0.0.2",
            "JOB_POLL": "1",
            "LOG_LEVEL": "warning",
            "UFS_FSYNC": "false",
        }
        started = time.monotonic()
        with ExitStack() as stack:
            for _ in range(workers):
                stack.enter_context(processes.worker({**env, "LOG_LEVEL": "info"}))
            asyncio.run(wait_done(url, kind, count))
            elapsed = time.monotonic() - started
        return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="empty jobs per case")
    parser.add_argument("--imports", type=int, default=200, help="1 MiB imports per case")
    parser.add_argument("--loops", type=int, default=2, help="N_WORKERS: job loops per worker process")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: nproc {os.cpu_count()}, python {platform.python_version()}, PostgreSQL {postgres.server_bin()}")
    print(f"each worker process runs N_WORKERS={args.loops} loops; medians of {args.runs} runs\n")
    print(f"{'case':40} {'workers':>8} {'jobs/s':>10} {'runs':>24}")
    with origin("127.0.0.2", {"1mib.bin": os.urandom(1 << 20)}) as server:
        for kind, count, source in [("noop", args.jobs, ""), ("import", args.imports, f"{server.url}/files/1mib.bin")]:
            for workers in (1, 2):
                rates = [run_case(kind, count, workers, args.loops, source) for _ in range(args.runs)]
                label = "empty jobs" if kind == "noop" else "1 MiB imports (local HTTP)"
                runs = ", ".join(f"{rate:.0f}" for rate in rates)
                print(f"{label + f' ({count})':40} {workers:>8} {statistics.median(rates):>10.1f} {runs:>24}")


if __name__ == "__main__":
    main()
