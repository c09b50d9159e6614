"""URL import: copy a file from http(s) or another DRS server into storage (or, in reference mode, record
only where it lives), as PWB's `file_from_url` does. Every fetch goes through netguard."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

import httpx
from python_multipart.multipart import parse_options_header

import storage
import upload
from database import Database, Row
from ingest import Ingest, TooLarge
from netguard import Allowlist, Guard, Refused, Unreachable
from settings import Settings

MAX_METADATA = 1 << 20
DRS_OBJECT = re.compile(r"^/?([A-Za-z0-9._~-]+)$")


class ImportFailed(Exception):
    """The source answered but the import cannot succeed as asked; `permanent` ones are not retried."""

    def __init__(self, message: str, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Source:
    url: str  # what the bytes are fetched from
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class ImportSettings:
    mode: str  # "copy" or "reference"
    max_size: int
    timeout: float


def options(settings: Settings) -> ImportSettings:
    return ImportSettings(
        settings.import_mode, settings.import_max_size or settings.max_upload_size, settings.import_timeout
    )


def guard(settings: Settings) -> Guard:
    return Guard(Allowlist.parse(settings.import_allow))


def display_name(name: str | None) -> str | None:
    """A remote name made safe to store (unlike an upload's, a remote name is cleaned, not refused)."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", unquote(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")).strip()
    if name in ("", ".", ".."):
        return None
    try:
        return upload.clean_filename(name[: upload.MAX_FILENAME])
    except upload.BadUpload:
        return None


def status_error(response: httpx.Response, what: str) -> ImportFailed:
    # A 4xx will not change by retrying; a 5xx or 429 may.
    transient = response.status_code >= 500 or response.status_code == 429
    return ImportFailed(f"{what} answered HTTP {response.status_code}", permanent=not transient)


async def read_json(guard: Guard, url: str) -> Any:
    async with guard.get(url, {"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise status_error(response, url)
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > MAX_METADATA:
                raise ImportFailed(f"{url}: the DRS answer is larger than {MAX_METADATA} bytes")
    try:
        return httpx.Response(200, content=bytes(body)).json()
    except ValueError as error:
        raise ImportFailed(f"{url}: the DRS answer is not JSON") from error


async def resolve_drs(guard: Guard, uri: str) -> Source:
    """drs://host[:port]/id → the object's bytes URL, name and checksum (http when a port is given, else https)."""
    parts = urlsplit(uri)
    match = DRS_OBJECT.match(parts.path)
    if not parts.netloc or match is None:
        raise Refused(f"not a drs://host/id URI: {uri}")
    scheme = "http" if parts.port else "https"
    base = f"{scheme}://{parts.netloc}/ga4gh/drs/v1/objects/{match.group(1)}"
    obj = await read_json(guard, base)
    if not isinstance(obj, dict) or not isinstance(obj.get("access_methods"), list):
        raise ImportFailed(f"{uri}: the DRS object has no access_methods")
    checksums = {c.get("type"): c.get("checksum") for c in obj.get("checksums", []) if isinstance(c, dict)}
    source = Source("", display_name(obj.get("name")), checksums.get("sha-256"), obj.get("size"))
    for method in obj["access_methods"]:
        if not isinstance(method, dict) or method.get("type") not in ("https", "http"):
            continue
        access_url = method.get("access_url")
        if isinstance(access_url, dict) and isinstance(access_url.get("url"), str):
            return fill(source, access_url)
        if isinstance(method.get("access_id"), str):
            access = await read_json(guard, f"{base}/access/{method['access_id']}")
            if isinstance(access, dict) and isinstance(access.get("url"), str):
                return fill(source, access)
    raise ImportFailed(f"{uri}: no http(s) access method")


def fill(source: Source, access_url: dict[str, Any]) -> Source:
    source.url = access_url["url"]
    headers = [h.split(":", 1) for h in access_url.get("headers", []) if isinstance(h, str) and ":" in h]
    source.headers = {name.strip(): value.strip() for name, value in headers}
    return source


def filename_from(response: httpx.Response, url: str) -> str | None:
    _, options = parse_options_header(response.headers.get("content-disposition", ""))
    name = options.get(b"filename")
    return display_name(name.decode("utf-8", "replace") if name else urlsplit(url).path)


async def fetch(
    guard: Guard, source: Source, store: storage.Storage | None, limit: int, progress: Callable[[int], None]
) -> tuple[Source, Ingest]:
    """Streams the source through an Ingest (hashing; writing a temp blob unless `store` is None)."""
    ingest = Ingest(store, limit)
    try:
        async with guard.get(source.url, source.headers) as response:
            if response.status_code != 200:
                raise status_error(response, "the source")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise TooLarge(limit)
            source.filename = source.filename or filename_from(response, source.url)
            async for chunk in response.aiter_raw():
                await ingest.feed(chunk)
                progress(ingest.size)
        return source, ingest
    except BaseException:
        await upload.abort_all([ingest])
        raise


async def import_url(
    db: Database,
    store: storage.Storage,
    guard: Guard,
    options: ImportSettings,
    user: UUID,
    url: str,
    filename: str | None = None,
    progress: Callable[[int], None] = lambda size: None,
) -> Row:
    """Imports `url` for `user`; returns the user_upload_complete row. Raises Refused, ImportFailed, TooLarge."""
    if not isinstance(url, str) or not url:
        raise Refused("`url` must be a non-empty string")
    scheme = urlsplit(url).scheme
    try:
        async with asyncio.timeout(options.timeout):
            if scheme == "drs":
                source = await resolve_drs(guard, url)
            elif scheme in ("http", "https"):
                source = Source(url)
            else:
                raise Refused(f"refusing {scheme or 'a schemeless'} URL: only http, https and drs are imported")
            if filename:
                source.filename = upload.clean_filename(filename)
            if options.mode == "reference" and source.sha256 and source.size is not None:
                # Registered as it is: the bytes stay where they are, and their checksum is the source's.
                return await record_reference(db, user, url, source)
            keep = store if options.mode == "copy" else None
            source, ingest = await fetch(guard, source, keep, options.max_size, progress)
    except TimeoutError as error:
        raise ImportFailed(f"the import took longer than {options.timeout:g} seconds", permanent=False) from error
    except (Unreachable, httpx.HTTPError) as error:
        raise ImportFailed(f"cannot fetch the source: {error}", permanent=False) from error
    digest, writer = await ingest.finish()
    if source.sha256 and source.sha256.lower() != digest.sha256:
        await upload.abort_all([ingest])
        raise ImportFailed(f"the bytes do not match the source's sha-256 ({source.sha256})")
    name = source.filename or "download"
    if options.mode == "reference":
        await writer.abort()
        return await record_reference(db, user, url, Source(url, name, digest.sha256, digest.size))
    [row] = await upload.save(db, store, user, [upload.Received("file", name, digest, writer)])
    return row


async def record_reference(db: Database, user: UUID, url: str, source: Source) -> Row:
    row = await db.upsert_user_upload(
        user=user,
        url=url,
        sha256=source.sha256 or "",
        size=int(source.size or 0),
        md5=None,
        filename=source.filename or "download",
    )
    assert row is not None
    return row
