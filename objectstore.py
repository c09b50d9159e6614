"""Remote storage backends: S3-compatible stores (aiobotocore, streamed multipart uploads, presigned URLs)
and any other fsspec filesystem (gs://, az://, ...), with the same flat `<root>/<sha256>` layout."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import aiofiles
import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import UNSIGNED

from storage import KEY, READ_CHUNK, BlobNotFound, BlobWriter, Storage, StorageUnavailable, check_key

PART = 8 * 1024 * 1024  # S3 parts must be at least 5 MiB, except the last
MAX_COPY = 5 * 1024**3  # CopyObject's limit; larger blobs are copied part by part
COPY_PART = 1024**3
MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchUpload")

T = TypeVar("T")


@dataclass(frozen=True)
class S3Options:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL or AWS itself
    access_key: str | None = None  # None: the standard AWS credential chain (AWS_ACCESS_KEY_ID, ...)
    secret_key: str | None = None
    anon: bool = False
    region: str | None = None  # None: AWS_DEFAULT_REGION


async def translate(call: Awaitable[T], what: str) -> T:
    """Runs one S3 call, turning the store's refusals and outages into StorageUnavailable."""
    try:
        return await call
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING:
            raise BlobNotFound(what) from error
        raise StorageUnavailable(f"S3 refused {what}: {error}") from error
    except (TimeoutError, botocore.exceptions.BotoCoreError, aiohttp.ClientError, OSError) as error:
        raise StorageUnavailable(f"S3 unreachable for {what}: {error}") from error


class S3Writer(BlobWriter):
    """Streams to a multipart upload under a temporary key while bytes arrive; commit copies it to its
    sha256 key (or drops it when that blob exists), so no partial object is ever visible under a real key."""

    def __init__(self, store: S3Storage) -> None:
        self.store = store
        # The start time in the name lets the sweep judge age on any store (some fake "Initiated").
        self.temp = store.key(f".tmp/{int(time.time())}-{uuid.uuid4().hex}")
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.inflight: asyncio.Task[None] | None = None
        self.completed = False

    async def write(self, data: bytes | bytearray) -> None:
        self.buffer += data
        if len(self.buffer) >= PART:
            await self._send_part()

    async def _send_part(self) -> None:
        # One part uploads while the next one fills: the network and the client both stay busy, and
        # memory stays at two parts.
        await self._wait()
        client = await self.store.client()
        if self.upload_id is None:
            created = await translate(
                # Declared CRC32 part checksums (as boto3's upload_file does) let the store verify each part and
                # complete the upload without re-reading it; botocore computes them.
                client.create_multipart_upload(Bucket=self.store.bucket, Key=self.temp, ChecksumAlgorithm="CRC32"),
                "create_multipart_upload",
            )
            self.upload_id = created["UploadId"]
        body, self.buffer = self.buffer, bytearray()
        self.inflight = asyncio.ensure_future(self._upload_part(client, self.upload_id, len(self.parts) + 1, body))

    async def _upload_part(self, client: Any, upload_id: str, number: int, body: bytearray) -> None:
        call = client.upload_part(
            Bucket=self.store.bucket,
            Key=self.temp,
            UploadId=upload_id,
            PartNumber=number,
            Body=io.BytesIO(body),  # one copy of the part; a bytes Body gets copied twice more on its way out
            ChecksumAlgorithm="CRC32",
        )
        part = await translate(call, "upload_part")
        self.parts.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumCRC32": part["ChecksumCRC32"]})

    async def _wait(self) -> None:
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            await inflight

    async def commit(self, key: str) -> None:
        target = self.store.key(check_key(key))
        client = await self.store.client()
        if await self.store.size(key) is not None:
            await self.abort()
            return
        if self.upload_id is None:
            # Small blobs go up in one PUT, which S3 makes visible only once complete.
            body, self.buffer = bytes(self.buffer), bytearray()
            await translate(client.put_object(Bucket=self.store.bucket, Key=target, Body=body), "put_object")
            return
        try:
            if self.buffer:
                await self._send_part()
            await self._wait()
            await translate(
                client.complete_multipart_upload(
                    Bucket=self.store.bucket,
                    Key=self.temp,
                    UploadId=self.upload_id,
                    MultipartUpload={"Parts": self.parts},
                ),
                "complete_multipart_upload",
            )
            self.completed = True
            await self.store.copy(self.temp, target)
        finally:
            await self.abort()

    async def abort(self) -> None:
        self.buffer = bytearray()
        if self.inflight is not None:
            self.inflight.cancel()
            await asyncio.gather(self.inflight, return_exceptions=True)
            self.inflight = None
        if self.upload_id is None:
            return
        client = await self.store.client()
        try:
            if self.completed:
                await translate(client.delete_object(Bucket=self.store.bucket, Key=self.temp), "delete_object")
            else:
                call = client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.temp, UploadId=self.upload_id)
                await translate(call, "abort_multipart_upload")
        except BlobNotFound:
            pass  # already gone (swept, or aborted before)
        self.upload_id = None


class S3Storage(Storage):
    can_presign = True

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.bucket = options.bucket
        self.prefix = options.prefix.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.stack: AsyncExitStack | None = None
        self._client: Any = None
        self.lock = asyncio.Lock()

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    async def client(self) -> Any:
        # Created on first use, inside the server's event loop, and kept for the life of the process.
        if self._client is None:
            async with self.lock:
                if self._client is None:
                    self.stack = AsyncExitStack()
                    self._client = await self.stack.enter_async_context(self.create_client())
        return self._client

    def create_client(self) -> Any:
        options = self.options
        endpoint = options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        config = AioConfig(
            # Custom endpoints (MinIO, Ceph, moto) want path-style addressing; AWS takes either.
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            signature_version=UNSIGNED if options.anon else None,
            # Reads are ranged and the scrub checks sha256 itself: never check a whole-object checksum against
            # a range (some stores send one with every GET).
            response_checksum_validation="when_required",
        )
        return get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=options.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            config=config,
        )

    async def close(self) -> None:
        if self.stack is not None:
            await self.stack.aclose()
            self.stack, self._client = None, None

    async def writer(self) -> BlobWriter:
        return S3Writer(self)

    async def size(self, key: str) -> int | None:
        client = await self.client()
        try:
            head = await translate(client.head_object(Bucket=self.bucket, Key=self.key(check_key(key))), key)
        except BlobNotFound:
            # HEAD answers a bare 404 for a missing bucket too: tell the two apart before saying "no blob".
            await self.check()
            return None
        return int(head["ContentLength"])

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        client = await self.client()
        byte_range = f"bytes={start}-{'' if end is None else end - 1}"
        response = await translate(
            client.get_object(Bucket=self.bucket, Key=self.key(check_key(key)), Range=byte_range), key
        )
        body = response["Body"]
        try:
            while chunk := await translate(body.read(READ_CHUNK), key):
                yield chunk
        finally:
            body.close()

    async def copy(self, source: str, target: str) -> None:
        client = await self.client()
        head = await translate(client.head_object(Bucket=self.bucket, Key=source), source)
        size = int(head["ContentLength"])
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= MAX_COPY:
            await translate(client.copy_object(Bucket=self.bucket, Key=target, CopySource=copy_source), "copy_object")
            return
        created = await translate(client.create_multipart_upload(Bucket=self.bucket, Key=target), "copy")
        upload_id, parts = created["UploadId"], []
        try:
            for number, offset in enumerate(range(0, size, COPY_PART), start=1):
                last = min(offset + COPY_PART, size) - 1
                part = await translate(
                    client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={offset}-{last}",
                    ),
                    "upload_part_copy",
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            await translate(
                client.complete_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
                "complete copy",
            )
        except BaseException:
            await translate(client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload_id), "abort")
            raise

    async def delete(self, key: str) -> None:
        client = await self.client()
        await translate(client.delete_object(Bucket=self.bucket, Key=self.key(check_key(key))), key)

    async def list_blobs(self) -> AsyncIterator[tuple[str, dt.datetime]]:
        client = await self.client()
        start = self.key("")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start, Delimiter="/")
        try:
            async for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(start) :]
                    if KEY.match(name):
                        yield name, item["LastModified"]
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, aiohttp.ClientError) as error:
            raise StorageUnavailable(f"S3 refused listing {self.url}: {error}") from error

    async def sweep(self, older_than: dt.datetime) -> int:
        client, temp, removed = await self.client(), self.key(".tmp/"), 0
        listed = await translate(client.list_objects_v2(Bucket=self.bucket, Prefix=temp), "list_objects_v2")
        for item in listed.get("Contents", []):
            if started(item["Key"], item["LastModified"]) < older_than:
                await translate(client.delete_object(Bucket=self.bucket, Key=item["Key"]), "delete_object")
                removed += 1
        uploads = await translate(client.list_multipart_uploads(Bucket=self.bucket, Prefix=temp), "list uploads")
        for item in uploads.get("Uploads", []):
            if started(item["Key"], item["Initiated"]) < older_than:
                call = client.abort_multipart_upload(Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"])
                await translate(call, "abort_multipart_upload")
                removed += 1
        return removed

    async def check(self) -> None:
        client = await self.client()
        try:
            await translate(client.head_bucket(Bucket=self.bucket), f"bucket {self.bucket}")
        except BlobNotFound as error:
            raise StorageUnavailable(f"S3 bucket {self.bucket} does not exist") from error

    async def presign(self, key: str, disposition: str, content_type: str, expires: int) -> str | None:
        client = await self.client()
        params = {
            "Bucket": self.bucket,
            "Key": self.key(check_key(key)),
            # The store then answers with our safe headers, as the proxied byte route would.
            "ResponseContentDisposition": disposition,
            "ResponseContentType": content_type,
        }
        return await client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)


class FsspecWriter(BlobWriter):
    """Spools to a local temporary file (fsspec has no common streaming-write API), then puts it under a
    temporary remote name and moves it to its sha256 name."""

    def __init__(self, store: FsspecStorage) -> None:
        self.store = store
        fd, path = tempfile.mkstemp(prefix="drsbox-", suffix=".part")
        os.close(fd)
        self.path = path
        self.file: Any = None

    async def write(self, data: bytes | bytearray) -> None:
        if self.file is None:
            self.file = await aiofiles.open(self.path, "wb")
        await self.file.write(data)

    async def commit(self, key: str) -> None:
        target = self.store.path(check_key(key))
        try:
            if self.file is not None:
                await self.file.close()
            if await self.store.size(key) is None:
                temp = self.store.path(f".tmp/{uuid.uuid4().hex}")
                await self.store.call("put_file", self.path, temp)
                await self.store.call("mv", temp, target)
        finally:
            await self.abort()

    async def abort(self) -> None:
        if self.file is not None:
            await self.file.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class FsspecStorage(Storage):
    """Any fsspec filesystem, sync or async, addressed by `protocol://root`."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = f"{fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]}://{self.root}"

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            # Async implementations run their own loop unless created with asynchronous=True.
            if getattr(self.fs, "asynchronous", False):
                method: Callable[..., Awaitable[Any]] = getattr(self.fs, f"_{name}")
                return await method(*args, **kwargs)
            return await asyncio.to_thread(getattr(self.fs, name), *args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as error:
            raise StorageUnavailable(f"{self.url}: {name} failed: {error}") from error

    async def writer(self) -> BlobWriter:
        return FsspecWriter(self)

    async def size(self, key: str) -> int | None:
        try:
            return int((await self.call("info", self.path(check_key(key))))["size"])
        except FileNotFoundError:
            return None

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path(check_key(key))
        if end is None:
            size = await self.size(key)
            if size is None:
                raise BlobNotFound(key)
            end = size
        for offset in range(start, end, READ_CHUNK):
            try:
                yield await self.call("cat_file", path, start=offset, end=min(offset + READ_CHUNK, end))
            except FileNotFoundError as error:
                raise BlobNotFound(key) from error

    async def delete(self, key: str) -> None:
        try:
            await self.call("rm_file", self.path(check_key(key)))
        except FileNotFoundError:
            pass

    async def list_blobs(self) -> AsyncIterator[tuple[str, dt.datetime]]:
        try:
            entries = await self.call("ls", self.root, detail=True)
        except FileNotFoundError:
            return
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if KEY.match(name):
                yield name, modified(entry)

    async def sweep(self, older_than: dt.datetime) -> int:
        try:
            entries = await self.call("ls", self.path(".tmp"), detail=True)
        except FileNotFoundError:
            return 0
        stale = [entry["name"] for entry in entries if modified(entry) < older_than]
        for name in stale:
            await self.call("rm_file", name)
        return len(stale)

    async def check(self) -> None:
        try:
            await self.call("ls", self.root)
        except FileNotFoundError:
            await self.call("makedirs", self.root, exist_ok=True)


def started(key: str, fallback: dt.datetime) -> dt.datetime:
    """When a temporary object was begun, from its name `<unix time>-<uuid>`."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return dt.datetime.fromtimestamp(int(stamp), dt.UTC) if stamp.isdigit() else fallback


def modified(entry: dict[str, Any]) -> dt.datetime:
    """When an fsspec entry was written: each filesystem names it differently; unknown counts as now."""
    for field in ("LastModified", "mtime", "last_modified", "updated", "created"):
        value = entry.get(field)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC)
    return dt.datetime.now(dt.UTC)
