"""Integrity scrub: re-hashes stored blobs at a bounded rate. A blob whose bytes no longer match its
sha256 is marked corrupt: logged, counted in /metrics, and no longer served (an error, not bad bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import storage
from database import Database

logger = logging.getLogger("drsbox.scrub")


async def rehash(store: storage.Storage, key: str, rate: int) -> str | None:
    """The blob's actual sha256 (None when it is missing), read at no more than `rate` bytes a second."""
    digest, started, read = hashlib.sha256(), time.monotonic(), 0
    try:
        async for chunk in store.read(key):
            await asyncio.to_thread(digest.update, chunk)
            read += len(chunk)
            ahead = read / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    except storage.BlobNotFound:
        return None
    return digest.hexdigest()


async def scrub(db: Database, store: storage.Storage, max_age: float, batch: int, rate: int) -> dict[str, Any]:
    checked = corrupt = 0
    for row in await db.list_uploads_to_scrub(older_than=max_age, limit=batch):
        actual = await rehash(store, row["sha256"], rate)
        bad = actual != row["sha256"]
        if bad:
            state = "missing" if actual is None else f"hashes to {actual}"
            logger.error("integrity scrub: blob %s of upload %s is %s", row["sha256"], row["id"], state)
        await db.update_upload_scrub(id=row["id"], corrupt=bad)
        checked += 1
        corrupt += bad
    logger.info("integrity scrub: %d blobs checked, %d corrupt", checked, corrupt)
    return {"checked": checked, "corrupt": corrupt}
