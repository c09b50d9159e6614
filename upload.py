"""The upload path: request body → Ingest (hash + temp blob) → commit under sha256 → one row-writing statement.

Every file of a request stays a temporary object until the whole request has arrived, so a request
that fails half way (bad part, size limit, disconnect) leaves no blob and no row behind.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import anyio

import multipart
import storage
from database import Database, Row
from ingest import Digest, Ingest, TooLarge

MAX_FILENAME = 255


class BadUpload(Exception):
    pass


@dataclass
class Received:
    field: str
    filename: str
    digest: Digest
    writer: storage.BlobWriter


def clean_filename(name: str | None) -> str:
    """The display name to store; refuses what could be mistaken for a path or break a header."""
    if not name:
        raise BadUpload("a filename is required")
    name = unicodedata.normalize("NFC", name)
    if len(name) > MAX_FILENAME:
        raise BadUpload(f"the filename is longer than {MAX_FILENAME} characters")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        raise BadUpload("the filename contains control characters")
    if "/" in name or "\\" in name or name.strip() in (".", ".."):
        raise BadUpload("the filename must be a plain name, without directories")
    if not name.strip():
        raise BadUpload("the filename is blank")
    return name


async def abort_all(ingests: list[Ingest]) -> None:
    with anyio.CancelScope(shield=True):
        for ingest in ingests:
            await ingest.abort()


async def capped(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body, refused once it grows past the limit (chunked bodies have no Content-Length to check)."""
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        yield chunk


async def receive_raw(stream: AsyncIterator[bytes], filename: str, store: storage.Storage, limit: int) -> Received:
    ingest = Ingest(store, limit)
    try:
        async for chunk in stream:
            await ingest.feed(chunk)
        digest, writer = await ingest.finish()
    except BaseException:
        await abort_all([ingest])
        raise
    return Received("file", filename, digest, writer)


async def receive_multipart(
    stream: AsyncIterator[bytes], content_type: str, store: storage.Storage, limit: int
) -> list[Received]:
    """Every file part of the body, in order; plain form fields are skipped."""
    boundary = multipart.boundary_of(content_type)
    ingests: list[Ingest] = []
    received: list[Received] = []
    current: tuple[multipart.Part, Ingest] | None = None
    try:
        async for event in multipart.events(capped(stream, limit), boundary):
            if isinstance(event, multipart.Part):
                if event.filename is not None:
                    filename = clean_filename(event.filename)
                    ingest = Ingest(store, limit)
                    ingests.append(ingest)
                    current = (multipart.Part(event.name, filename, event.content_type), ingest)
            elif event is None:
                if current is not None:
                    part, ingest = current
                    digest, writer = await ingest.finish()
                    received.append(Received(part.name, part.filename or "", digest, writer))
                current = None
            elif current is not None:
                await current[1].feed(event)
        if not received:
            raise BadUpload("the multipart body has no file part")
    except BaseException:
        await abort_all(ingests)
        raise
    return received


async def save(db: Database, store: storage.Storage, user: UUID, files: list[Received]) -> list[Row]:
    """Commits each blob under its sha256 and records it, in one transaction; returns the rows.

    The shared blob locks, held from before a blob is looked for until its row is committed, keep garbage
    collection (which takes them exclusively) from deleting a blob that is about to be referenced.
    """
    try:
        async with db.transaction() as tx:
            # Sorted, so that two requests taking the same locks never wait on each other in a cycle.
            for sha256 in sorted({file.digest.sha256 for file in files}):
                await tx.lock_blob_shared(sha256=sha256)
            rows = []
            for file in files:
                await file.writer.commit(file.digest.sha256)
                row = await tx.upsert_user_upload(
                    user=user,
                    url=f"storage://{file.digest.sha256}",
                    sha256=file.digest.sha256,
                    size=file.digest.size,
                    md5=file.digest.md5,
                    filename=file.filename,
                )
                rows.append(row)
    except BaseException:
        with anyio.CancelScope(shield=True):
            for file in files:
                await file.writer.abort()
        raise
    return rows
