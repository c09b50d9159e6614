"""Garbage collection: upload rows no user_upload refers to, and their blobs, after a grace period; blobs no
row refers to; stale temporary files and abandoned multipart uploads. Never in memory mode.

Safe against a concurrent upload of the same bytes: an uploader holds the blob's shared lock from before
it looks for the blob until its row is committed, and the collector deletes a row and its blob under the
exclusive lock, so no upload can end up pointing at a deleted blob.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import storage
from database import Database

logger = logging.getLogger("drsbox.gc")
BATCH = 1000


async def collect(db: Database, store: storage.Storage, grace: float) -> dict[str, Any]:
    await db.update_orphaned_uploads()
    rows = blobs = 0
    for orphan in await db.list_orphaned_uploads(grace=grace, limit=BATCH):
        async with db.transaction() as tx:
            await tx.lock_blob(sha256=orphan["sha256"])
            gone = await tx.delete_orphaned_upload(id=orphan["id"])
            if gone is not None and gone["url"] == f"storage://{gone['sha256']}":
                # Deleted inside the lock: a failure here rolls the row back with the blob still in place.
                await store.delete(gone["sha256"])
                blobs += 1
            rows += gone is not None
    blobs += await collect_unrecorded_blobs(db, store, grace)
    logger.info("garbage collection: %d upload rows and %d blobs deleted", rows, blobs)
    return {"rows": rows, "blobs": blobs}


async def collect_unrecorded_blobs(db: Database, store: storage.Storage, grace: float) -> int:
    """Blobs older than the grace period that no upload row names (left by failed or abandoned requests)."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=grace)
    batch: list[str] = []
    deleted = 0
    async for key, written in store.list_blobs():
        if written < cutoff:
            batch.append(key)
        if len(batch) >= BATCH:
            deleted += await delete_unrecorded(db, store, batch)
            batch = []
    return deleted + (await delete_unrecorded(db, store, batch) if batch else 0)


async def delete_unrecorded(db: Database, store: storage.Storage, keys: list[str]) -> int:
    recorded = {row["url"] for row in await db.list_uploads_by_url(urls=[f"storage://{key}" for key in keys])}
    deleted = 0
    for key in keys:
        if f"storage://{key}" in recorded:
            continue
        async with db.transaction() as tx:
            await tx.lock_blob(sha256=key)
            if await tx.get_upload_by_url(url=f"storage://{key}") is None:
                await store.delete(key)
                deleted += 1
    return deleted


async def sweep(store: storage.Storage, max_age: float) -> dict[str, Any]:
    removed = await store.sweep(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max_age))
    logger.info("sweep: %d stale temporary objects removed", removed)
    return {"removed": removed}
