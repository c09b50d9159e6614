"""The ufs-style storage layer: blobs stored flat at `<root>/<sha256>`, written atomically.

A backend is a small class with the methods of `Storage`; `open_storage(UFS_STORAGE)` picks one.
Routes only ever name blobs by sha256, so a client's filename can never become a path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiofiles
import aiofiles.os

READ_CHUNK = 1 << 20
KEY = re.compile(r"^[0-9a-f]{64}$")


class BlobNotFound(Exception):
    pass


class StorageUnavailable(Exception):
    """The store cannot be reached or refuses us (credentials, missing bucket, full disk)."""


def check_key(key: str) -> str:
    if not KEY.match(key):
        raise ValueError(f"not a sha256 blob key: {key!r}")
    return key


class BlobWriter:
    """A temporary object that becomes the blob `<key>` on commit, or vanishes on abort."""

    # A synchronous write that may run in a worker thread, for backends that have one (local files): the
    # upload path then hashes and writes a block in one thread hop instead of two.
    blocking: Callable[[bytes | bytearray], None] | None = None

    async def write(self, data: bytes | bytearray) -> None:
        raise NotImplementedError

    async def commit(self, key: str) -> None:
        raise NotImplementedError

    async def abort(self) -> None:
        raise NotImplementedError


class Storage:
    url: str
    can_presign = False

    async def writer(self) -> BlobWriter:
        raise NotImplementedError

    async def size(self, key: str) -> int | None:
        """The blob's size, or None when there is no such blob."""
        raise NotImplementedError

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Streams bytes [start, end) of the blob."""
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    def list_blobs(self) -> AsyncIterator[tuple[str, dt.datetime]]:
        """Every blob's key and when it was written (garbage collection of blobs no row refers to)."""
        raise NotImplementedError

    async def sweep(self, older_than: dt.datetime) -> int:
        """Removes temporary objects (and unfinished multipart uploads) begun before `older_than`; how many."""
        raise NotImplementedError

    async def check(self) -> None:
        """Raises StorageUnavailable unless the store can be written."""
        raise NotImplementedError

    async def presign(self, key: str, disposition: str, content_type: str, expires: int) -> str | None:
        """A URL that serves the blob without us, when the backend can make one."""
        return None

    async def close(self) -> None:
        pass


class LocalWriter(BlobWriter):
    def __init__(self, root: Path, fsync: bool) -> None:
        self.root = root
        self.fsync = fsync
        self.path = root / ".tmp" / f"{uuid.uuid4().hex}.part"
        self.file: io.FileIO | None = None
        self.blocking = self.write_blocking

    async def open(self) -> None:
        try:
            self.file = await asyncio.to_thread(io.FileIO, self.path, "xb")
        except OSError as error:
            raise StorageUnavailable(f"cannot create a temporary file in {self.root}: {error.strerror}") from error

    def write_blocking(self, data: bytes | bytearray) -> None:
        assert self.file is not None
        view = memoryview(data)
        try:
            while view:
                view = view[self.file.write(view) or 0 :]
        except OSError as error:
            raise StorageUnavailable(f"cannot write to {self.root}: {error.strerror}") from error

    async def write(self, data: bytes | bytearray) -> None:
        await asyncio.to_thread(self.write_blocking, data)

    async def commit(self, key: str) -> None:
        assert self.file is not None
        target = self.root / check_key(key)
        try:
            if self.fsync:
                await asyncio.to_thread(os.fsync, self.file.fileno())
            self.file.close()
            # link() never replaces: an existing blob is left as it is and our copy is dropped.
            await aiofiles.os.link(self.path, target)
            if self.fsync:
                await asyncio.to_thread(fsync_dir, self.root)
        except FileExistsError:
            pass
        except OSError as error:
            await self.abort()
            raise StorageUnavailable(f"cannot store {key} in {self.root}: {error.strerror}") from error
        await self.abort()

    async def abort(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()
        try:
            await aiofiles.os.unlink(self.path)
        except FileNotFoundError:
            pass


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    def __init__(self, root: str | Path, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"
        self.fsync = fsync

    async def writer(self) -> BlobWriter:
        await self.check()
        writer = LocalWriter(self.root, self.fsync)
        await writer.open()
        return writer

    async def size(self, key: str) -> int | None:
        try:
            return (await aiofiles.os.stat(self.root / check_key(key))).st_size
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageUnavailable(f"cannot read {self.root}: {error.strerror}") from error

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.root / check_key(key)
        try:
            file = await aiofiles.open(path, "rb", buffering=0)
        except FileNotFoundError as error:
            raise BlobNotFound(key) from error
        except OSError as error:
            raise StorageUnavailable(f"cannot read {self.root}: {error.strerror}") from error
        try:
            await file.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = await file.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await file.close()

    async def delete(self, key: str) -> None:
        try:
            await aiofiles.os.unlink(self.root / check_key(key))
        except FileNotFoundError:
            pass

    async def list_blobs(self) -> AsyncIterator[tuple[str, dt.datetime]]:
        def scan() -> list[tuple[str, dt.datetime]]:
            with os.scandir(self.root) as entries:
                return [
                    (entry.name, dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC))
                    for entry in entries
                    if KEY.match(entry.name)
                ]

        try:
            blobs = await asyncio.to_thread(scan)
        except FileNotFoundError:
            return
        except OSError as error:
            raise StorageUnavailable(f"cannot list {self.root}: {error.strerror}") from error
        for blob in blobs:
            yield blob

    async def sweep(self, older_than: dt.datetime) -> int:
        def remove_stale() -> int:
            removed = 0
            with os.scandir(self.root / ".tmp") as entries:
                for entry in entries:
                    if dt.datetime.fromtimestamp(entry.stat().st_mtime, dt.UTC) < older_than:
                        os.unlink(entry.path)
                        removed += 1
            return removed

        try:
            return await asyncio.to_thread(remove_stale)
        except FileNotFoundError:
            return 0

    async def check(self) -> None:
        try:
            await aiofiles.os.makedirs(self.root / ".tmp", exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise StorageUnavailable(f"{self.root} is not writable")
        except OSError as error:
            raise StorageUnavailable(f"cannot use {self.root}: {error.strerror}") from error


class MemoryWriter(BlobWriter):
    def __init__(self, store: MemoryStorage) -> None:
        self.store = store
        self.data = bytearray()

    async def write(self, data: bytes | bytearray) -> None:
        self.data += data

    async def commit(self, key: str) -> None:
        if check_key(key) not in self.store.blobs:
            self.store.blobs[key] = bytes(self.data)
            self.store.written[key] = dt.datetime.now(dt.UTC)
        self.data = bytearray()

    async def abort(self) -> None:
        self.data = bytearray()


class MemoryStorage(Storage):
    url = "memory://"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.written: dict[str, dt.datetime] = {}

    async def writer(self) -> BlobWriter:
        return MemoryWriter(self)

    async def size(self, key: str) -> int | None:
        blob = self.blobs.get(check_key(key))
        return None if blob is None else len(blob)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        blob = self.blobs.get(check_key(key))
        if blob is None:
            raise BlobNotFound(key)
        view = memoryview(blob)[start:end]
        for offset in range(0, len(view), READ_CHUNK):
            yield bytes(view[offset : offset + READ_CHUNK])

    async def delete(self, key: str) -> None:
        self.blobs.pop(check_key(key), None)
        self.written.pop(key, None)

    async def list_blobs(self) -> AsyncIterator[tuple[str, dt.datetime]]:
        for key, written in list(self.written.items()):
            yield key, written

    async def sweep(self, older_than: dt.datetime) -> int:
        return 0  # writers keep their bytes to themselves until commit

    async def check(self) -> None:
        pass
