"""The production topology with real processes: PostgreSQL migrated by dbmate, the S3 test endpoint, two
servers and two workers. Uploads through one server are listed, resolved and downloaded through the
other; imports are done by workers; a worker killed mid-job has its job finished by the other."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from typing import Any

import asyncpg
import httpx
import pytest

import processes
import s3
from conftest import ROOT, reset
from origin import origin

DATA = os.urandom(3 * 1024 * 1024 + 5)


def wait_for(check: Any, timeout: float = 30, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise TimeoutError("gave up waiting")


def query(url: str, sql: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def topology(pg_url: str, moto_server: s3.Moto) -> Any:
    asyncio.run(reset(pg_url))
    bucket = f"topo-{uuid.uuid4().hex[:12]}"
    moto_server.make_bucket(bucket)
    common = {
        "DATABASE_URL": pg_url,
        "UFS_STORAGE": f"s3://{bucket}/ufs",
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SECRET": "topology-secret",
        "IMPORT_ALLOW": "127.0.0.2",
        "RUN_JOBS": "false",
        "JOB_HEARTBEAT": "0.2",
        "JOB_STALE": "2",
        "JOB_POLL": "0.5",
        "JOB_BACKOFF": "0.1",
        "N_WORKERS": "2",
        "WORKER_SHUTDOWN_GRACE": "1",
        "LOG_LEVEL": "info",
    }
    with ExitStack() as stack:
        source = stack.enter_context(origin("127.0.0.2", {"data.bin": DATA}))
        servers = [
            stack.enter_context(processes.server({**common, "PUBLIC_URL": "http://drs.example:8080"})) for _ in range(2)
        ]
        workers = [stack.enter_context(processes.worker(common)) for _ in range(2)]
        token = subprocess.run(
            [sys.executable, "server.py", "create-token", "topo"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **common},
        ).stdout.strip()
        yield {
            "servers": servers,
            "workers": workers,
            "source": source,
            "token": token,
            "bucket": bucket,
            "pg": pg_url,
            "moto": moto_server,
        }


def test_two_servers_two_workers_share_everything_and_lose_nothing(topology: dict[str, Any]) -> None:
    a, b = (
        httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {topology['token']}"})
        for server in topology["servers"]
    )
    # Uploads through A are listed, resolved and downloaded through B.
    uploaded = [a.post(f"/api/v1/uploads?filename=f{n}.bin", content=DATA[n:]).json() for n in range(3)]
    multipart = a.post("/api/v1/components/core/file/upload", files={"file": ("m.txt", b"multi")}).json()
    listed = {item["id"] for item in b.get("/api/v1/uploads").json()["items"]}
    assert listed == {u["id"] for u in uploaded} | {multipart["file"][0]["url"].rsplit("/", 1)[1]}
    for n, record in enumerate(uploaded):
        drs = b.get(f"/ga4gh/drs/v1/objects/{record['id']}").json()
        assert drs["self_uri"] == f"drs://drs.example:8080/{record['id']}"
        body = b.get(f"/ga4gh/drs/v1/objects/{record['id']}/access/https/data").content
        assert hashlib.sha256(body).hexdigest() == record["sha256"] == hashlib.sha256(DATA[n:]).hexdigest()

    # An import queued through B is done by a worker.
    source = topology["source"].url
    job = b.post("/api/v1/imports", json={"url": f"{source}/files/data.bin"}).json()
    done = wait_for(lambda: (j := a.get(f"/api/v1/jobs/{job['id']}").json())["state"] == "done" and j)
    assert done["result"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert a.get(f"/ga4gh/drs/v1/objects/{done['result']['id']}/access/https/data").content == DATA

    # A worker killed mid-job: the other rescues the job and finishes it, once.
    slow = a.post("/api/v1/imports", json={"url": f"{source}/slow?ms=4", "filename": "slow.bin"}).json()
    holder = wait_for(
        lambda: query(
            topology["pg"],
            "SELECT worker FROM jobs WHERE id = $1 AND state = 'running' AND progress > 0",
            uuid.UUID(slow["id"]),
        ),
        every=0.05,
    )[0]["worker"]
    pid = int(holder.split(":")[1])
    victim = next(w for w in topology["workers"] if w.process.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.process.wait()
    finished = wait_for(
        lambda: (j := b.get(f"/api/v1/jobs/{slow['id']}").json())["state"] in ("done", "failed") and j, timeout=60
    )
    assert finished["state"] == "done" and finished["attempts"] == 2, finished
    assert finished["result"]["size"] == 1_000_000

    # Nothing lost, nothing duplicated.
    rows = query(topology["pg"], "SELECT filename, count(*) AS n FROM user_upload GROUP BY filename ORDER BY 1")
    assert {row["filename"]: row["n"] for row in rows} == {
        "data.bin": 1,
        "f0.bin": 1,
        "f1.bin": 1,
        "f2.bin": 1,
        "m.txt": 1,
        "slow.bin": 1,
    }
    client = topology["moto"].client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=topology["bucket"], Prefix="ufs/")["Contents"]}
    blobs = {key.removeprefix("ufs/") for key in keys if not key.startswith("ufs/.tmp/")}
    expected = {row["sha256"] for row in query(topology["pg"], "SELECT sha256 FROM upload")}
    assert blobs == expected

    # SIGTERM: the surviving worker stops claiming, and hands back the job it cannot finish in its grace time.
    last = a.post("/api/v1/imports", json={"url": f"{source}/slow?ms=20", "filename": "late.bin"}).json()
    wait_for(
        lambda: query(topology["pg"], "SELECT 1 FROM jobs WHERE id = $1 AND state = 'running'", uuid.UUID(last["id"])),
        every=0.05,
    )
    survivor = next(w for w in topology["workers"] if w is not victim)
    survivor.process.terminate()
    assert survivor.process.wait(15) == 0
    handed_back = a.get(f"/api/v1/jobs/{last['id']}").json()
    assert (handed_back["state"], handed_back["attempts"]) == ("queued", 0)
    assert "handed back at shutdown" in survivor.log.read_text()
    a.close()
    b.close()
