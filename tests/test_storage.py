"""One contract for every storage backend."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

import storage
from ingest import Ingest, TooLarge
from objectstore import PART, FsspecStorage, S3Storage

pytestmark = pytest.mark.anyio


async def put(store: storage.Storage, data: bytes) -> str:
    key = hashlib.sha256(data).hexdigest()
    writer = await store.writer()
    for offset in range(0, len(data), 100_000):
        await writer.write(data[offset : offset + 100_000])
    await writer.commit(key)
    return key


async def read_all(store: storage.Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


async def leftovers(store: storage.Storage) -> list[str]:
    """What a store holds besides committed blobs: temp files, temp objects, unfinished multipart uploads."""
    if isinstance(store, storage.LocalStorage):
        return os.listdir(store.root / ".tmp") if (store.root / ".tmp").exists() else []
    if isinstance(store, S3Storage):
        client = await store.client()
        objects = await client.list_objects_v2(Bucket=store.bucket, Prefix=store.key(".tmp/"))
        uploads = await client.list_multipart_uploads(Bucket=store.bucket)
        return [o["Key"] for o in objects.get("Contents", [])] + [u["Key"] for u in uploads.get("Uploads", [])]
    if isinstance(store, FsspecStorage):
        return store.fs.ls(store.path(".tmp")) if store.fs.exists(store.path(".tmp")) else []
    return []


async def test_put_then_read_whole_and_ranges(store: storage.Storage) -> None:
    data = os.urandom(3 * storage.READ_CHUNK + 5)
    key = await put(store, data)
    assert await store.size(key) == len(data)
    assert await read_all(store, key) == data
    assert await read_all(store, key, 10, 20) == data[10:20]
    assert (
        await read_all(store, key, storage.READ_CHUNK - 1, 2 * storage.READ_CHUNK + 1)
        == data[storage.READ_CHUNK - 1 : 2 * storage.READ_CHUNK + 1]
    )
    assert await read_all(store, key, len(data) - 1) == data[-1:]
    assert await leftovers(store) == []


async def test_put_of_existing_blob_keeps_the_first_copy(store: storage.Storage) -> None:
    key = await put(store, b"same bytes")
    writer = await store.writer()
    await writer.write(b"other bytes under the same key")  # never happens for real: proves no rewrite
    await writer.commit(key)
    assert await read_all(store, key) == b"same bytes"
    assert await leftovers(store) == []


async def test_blob_is_invisible_until_commit_and_abort_leaves_nothing(store: storage.Storage) -> None:
    data = b"x" * 1000
    key = hashlib.sha256(data).hexdigest()
    writer = await store.writer()
    await writer.write(data)
    assert await store.size(key) is None
    await writer.abort()
    assert await store.size(key) is None
    assert await leftovers(store) == []


async def test_missing_blob_has_no_size_and_cannot_be_read(store: storage.Storage) -> None:
    with pytest.raises(storage.BlobNotFound):
        await read_all(store, "0" * 64)
    assert await store.size("0" * 64) is None


async def test_delete_removes_the_blob(store: storage.Storage) -> None:
    key = await put(store, b"gone")
    await store.delete(key)
    assert await store.size(key) is None
    await store.delete(key)  # deleting twice is fine


async def test_keys_must_be_sha256_so_names_never_become_paths(store: storage.Storage) -> None:
    for key in ("../etc/passwd", "A" * 64, "a" * 63, ""):
        with pytest.raises(ValueError):
            await store.size(key)


async def test_check_passes_on_a_usable_store(store: storage.Storage) -> None:
    await store.check()


async def test_local_store_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = storage.LocalStorage(tmp_path / "file" / "ufs")
    with pytest.raises(storage.StorageUnavailable):
        await store.check()
    with pytest.raises(storage.StorageUnavailable):
        await store.writer()


async def test_ingest_hashes_while_streaming_and_commits_under_sha256(store: storage.Storage) -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)
    ingest = Ingest(store, limit=len(data))
    for offset in range(0, len(data), 65536):
        await ingest.feed(data[offset : offset + 65536])
    digest, writer = await ingest.finish()
    assert (digest.sha256, digest.md5, digest.size) == (
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
        len(data),
    )
    await writer.commit(digest.sha256)
    assert await read_all(store, digest.sha256) == data


async def test_ingest_over_the_limit_raises_and_abort_leaves_nothing(store: storage.Storage) -> None:
    ingest = Ingest(store, limit=3 * 1024 * 1024)
    with pytest.raises(TooLarge):
        for _ in range(64):
            await ingest.feed(b"z" * 65536)
    await ingest.abort()
    assert await leftovers(store) == []


async def test_large_blob_spanning_many_parts_round_trips(store: storage.Storage) -> None:
    data = os.urandom(PART * 2 + 12345)  # three multipart parts on S3
    key = await put(store, data)
    assert await store.size(key) == len(data)
    assert hashlib.sha256(await read_all(store, key)).hexdigest() == key
    assert await read_all(store, key, PART - 10, PART + 10) == data[PART - 10 : PART + 10]
    assert await leftovers(store) == []


async def test_aborting_a_multipart_upload_leaves_no_object_and_no_upload(store: storage.Storage) -> None:
    writer = await store.writer()
    await writer.write(os.urandom(PART + 1))  # one part already sent to S3
    await writer.abort()
    assert await leftovers(store) == []


async def test_list_blobs_names_committed_blobs_only(store: storage.Storage) -> None:
    keys = {await put(store, bytes([n]) * 10) for n in range(3)}
    writer = await store.writer()
    await writer.write(os.urandom(PART + 1))  # in progress: not a blob
    listed = {key: written async for key, written in store.list_blobs()}
    await writer.abort()
    assert set(listed) == keys
    assert all(abs((written - dt.datetime.now(dt.UTC)).total_seconds()) < 60 for written in listed.values())


async def test_sweep_removes_only_stale_temporaries(store: storage.Storage) -> None:
    key = await put(store, b"kept")
    writer = await store.writer()
    await writer.write(os.urandom(PART + 1))  # a local temp file, an S3 multipart upload
    assert await store.sweep(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)) == 0
    await store.sweep(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert await leftovers(store) == []
    assert await read_all(store, key) == b"kept"
    await writer.abort()
