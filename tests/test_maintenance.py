"""Garbage collection (safe against concurrent uploads), the sweep of temporaries, and the integrity scrub."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from pathlib import Path

import httpx
import pytest

import garbage
import scrub
from auth import SERVICE_USER
from database import Database
from ingest import Digest
from pgdb import PostgresDatabase
from storage import LocalStorage
from upload import Received, save

pytestmark = pytest.mark.anyio


async def store_file(db: Database, store: LocalStorage, data: bytes, name: str = "f") -> dict:
    writer = await store.writer()
    await writer.write(data)
    digest = Digest(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))
    [row] = await save(db, store, SERVICE_USER, [Received("file", name, digest, writer)])
    return row


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "ufs", fsync=False)


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_unreferenced_uploads_and_their_blobs_go_after_the_grace_period(
    db: Database, local: LocalStorage
) -> None:
    kept = await store_file(db, local, b"kept")
    gone = await store_file(db, local, b"gone")
    shared = await store_file(db, local, b"shared", "one name")
    await store_file(db, local, b"shared", "another name")
    for row in (gone, shared):
        await db.delete_user_upload(id=row["id"], user=SERVICE_USER)
    assert await garbage.collect(db, local, grace=3600) == {"rows": 0, "blobs": 0}  # only stamped
    await asyncio.sleep(0.01)
    assert await garbage.collect(db, local, grace=0) == {"rows": 1, "blobs": 1}
    assert await local.size(gone["sha256"]) is None
    assert await db.get_upload_by_url(url=f"storage://{gone['sha256']}") is None
    for row in (kept, shared):  # still referenced by some user_upload
        assert await local.size(row["sha256"]) is not None


async def test_reuploading_stops_the_grace_clock(db: Database, local: LocalStorage) -> None:
    row = await store_file(db, local, b"back again")
    await db.delete_user_upload(id=row["id"], user=SERVICE_USER)
    await garbage.collect(db, local, grace=3600)  # stamped as orphaned
    await store_file(db, local, b"back again")
    await asyncio.sleep(0.01)
    assert await garbage.collect(db, local, grace=0) == {"rows": 0, "blobs": 0}
    assert await local.size(row["sha256"]) == len(b"back again")


async def test_collection_waits_for_an_upload_of_the_same_bytes_in_progress(pg_url: str, local: LocalStorage) -> None:
    from conftest import reset

    await reset(pg_url)
    db = await PostgresDatabase.connect(pg_url)
    try:
        data = b"raced"
        old = await store_file(db, local, data)
        await db.delete_user_upload(id=old["id"], user=SERVICE_USER)
        await garbage.collect(db, local, grace=3600)
        await asyncio.sleep(0.01)
        holding = asyncio.Event()

        async def uploader() -> None:
            # An upload between finding the blob already stored and recording its row.
            async with db.transaction() as tx:
                await tx.lock_blob_shared(sha256=old["sha256"])
                assert await local.size(old["sha256"]) is not None
                holding.set()
                await asyncio.sleep(0.5)
                await tx.upsert_user_upload(
                    user=SERVICE_USER, url=old["url"], sha256=old["sha256"], size=5, md5=None, filename="again"
                )

        task = asyncio.ensure_future(uploader())
        await holding.wait()
        result = await garbage.collect(db, local, grace=0)
        await task
        assert result == {"rows": 0, "blobs": 0}
        assert await local.size(old["sha256"]) == len(data)  # the new upload's blob survived
    finally:
        await db.close()


async def test_blobs_no_row_names_are_collected_once_old(db: Database, local: LocalStorage) -> None:
    recorded = await store_file(db, local, b"recorded")
    writer = await local.writer()
    await writer.write(b"stray")
    stray = hashlib.sha256(b"stray").hexdigest()
    await writer.commit(stray)  # a blob whose request failed before its row was written
    age(local.root / stray, 7200)
    age(local.root / recorded["sha256"], 7200)
    fresh = await local.writer()
    await fresh.write(b"fresh")
    await fresh.commit(hashlib.sha256(b"fresh").hexdigest())
    assert await garbage.collect(db, local, grace=3600) == {"rows": 0, "blobs": 1}
    assert await local.size(stray) is None
    assert await local.size(recorded["sha256"]) is not None
    assert await local.size(hashlib.sha256(b"fresh").hexdigest()) is not None


async def test_sweep_removes_stale_temporary_files(local: LocalStorage) -> None:
    writer = await local.writer()
    await writer.write(b"abandoned by a crash")
    live = await local.writer()
    age(writer.path, 2 * 86400)  # type: ignore[attr-defined]
    assert await garbage.sweep(local, 86400) == {"removed": 1}
    assert [p.name for p in (local.root / ".tmp").iterdir()] == [live.path.name]  # type: ignore[attr-defined]
    await live.abort()
    await writer.abort()  # the crashed writer's file handle, in this test's process


async def test_scrub_marks_corrupt_blobs_which_are_then_refused(
    client: httpx.AsyncClient, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = (await client.post("/api/v1/uploads?filename=good", content=b"good bytes")).json()
    bad = (await client.post("/api/v1/uploads?filename=bad", content=b"bad bytes")).json()
    (tmp_path / "ufs" / bad["sha256"]).write_bytes(b"bit rot!!")
    store = LocalStorage(tmp_path / "ufs")
    with caplog.at_level(logging.ERROR, logger="drsbox.scrub"):
        assert await scrub.scrub(db, store, max_age=3600, batch=10, rate=10**9) == {"checked": 2, "corrupt": 1}
    assert bad["sha256"] in caplog.text
    refused = await client.get(f"/ga4gh/drs/v1/objects/{bad['id']}/access/https/data")
    assert refused.status_code == 500 and "integrity" in refused.json()["msg"]
    assert (await client.get(f"/ga4gh/drs/v1/objects/{good['id']}/access/https/data")).content == b"good bytes"
    metrics = (await client.get("/metrics")).text
    assert "drsbox_corrupt_blobs 1" in metrics
    assert await scrub.scrub(db, store, max_age=3600, batch=10, rate=10**9) == {"checked": 0, "corrupt": 0}


async def test_scrub_reads_at_the_bounded_rate(db: Database, local: LocalStorage) -> None:
    await store_file(db, local, os.urandom(400_000))
    started = time.monotonic()
    await scrub.scrub(db, local, max_age=3600, batch=10, rate=1_000_000)
    assert time.monotonic() - started >= 0.3  # 400 kB at 1 MB/s
