"""Byte responses for stored blobs: Range (single), If-Range, If-None-Match, HEAD, safe headers."""

from __future__ import annotations

import functools
import mimetypes
import os
import re
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

import imports
import storage
from database import Row

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_type(filename: str) -> str:
    return type_of_extension(os.path.splitext(filename)[1].lower())


@functools.lru_cache(maxsize=1024)
def type_of_extension(extension: str) -> str:
    # Cached by extension: names are nearly all different, extensions are few (a hot path of DRS metadata).
    kind, _ = mimetypes.guess_type(f"x{extension}", strict=False)
    return kind or "application/octet-stream"


def content_disposition(filename: str) -> str:
    # RFC 6266: an ASCII fallback for old clients, the exact name in filename*.
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single byte range; None to send the whole file (a multi-range header,
    which we answer whole as S3 does). Raises 416 for a malformed or unsatisfiable range."""
    if "," in header and header.strip().startswith("bytes="):
        return None
    match = RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise range_error(size, "malformed Range header: expected bytes=START-END, bytes=START- or bytes=-SUFFIX")
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise range_error(size, "unsatisfiable range")
        return max(0, size - suffix), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        raise range_error(size, "malformed Range header: the end is before the start")
    if start >= size:
        raise range_error(size, f"unsatisfiable range: the object has {size} bytes")
    return start, end


def range_error(size: int, msg: str) -> HTTPException:
    return HTTPException(416, msg, headers={"Content-Range": f"bytes */{size}"})


def etag_matches(header: str, etag: str) -> bool:
    # If-None-Match uses weak comparison: W/"x" matches "x".
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def if_range_holds(header: str, etag: str, last_modified: str) -> bool:
    header = header.strip()
    if header.startswith('"'):
        return header == etag  # strong comparison only
    try:
        return parsedate_to_datetime(header) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


async def remote_url(request: Request, url: str) -> str:
    if not url.startswith("drs://"):
        return url
    return (await imports.resolve_drs(imports.guard(request.app.state.settings), url)).url


async def presigned_url(request: Request, row: Row) -> str:
    settings, store = request.app.state.settings, request.app.state.storage
    url = await store.presign(
        row["sha256"], content_disposition(row["filename"]), content_type(row["filename"]), settings.ufs_presign_expiry
    )
    if url is None:
        raise HTTPException(404, "this storage cannot make presigned URLs")
    return url


async def blob_response(request: Request, row: Row, store: storage.Storage) -> Response:
    """Streams the upload's bytes, honouring the conditional and range headers of the request."""
    if row.get("corrupt"):
        raise HTTPException(500, "the stored bytes of this object failed their integrity check and are not served")
    if not row["url"].startswith("storage://"):
        # Registered by reference: the bytes stay at their source.
        return RedirectResponse(await remote_url(request, row["url"]), status_code=302)
    key = row["sha256"]
    size = await store.size(key)
    if size is None:
        raise HTTPException(404, "the object's bytes are missing from storage")
    etag = f'"{key}"'
    last_modified = format_datetime(row["created"].replace(microsecond=0), usegmt=True)
    headers = {
        "ETag": etag,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(row["filename"]),
        "X-Content-Type-Options": "nosniff",
        # Uploaded HTML/SVG must never run as our origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if request.app.state.settings.ufs_presign and store.can_presign:
        # Large transfers bypass the server: the client follows us to the object store (Range and all).
        return RedirectResponse(
            await presigned_url(request, row), status_code=302, headers={"Cache-Control": "no-store"}
        )
    start, end, status = 0, size, 200
    range_header = request.headers.get("range")
    if range_header is not None:
        if_range = request.headers.get("if-range")
        if if_range is None or if_range_holds(if_range, etag, last_modified):
            span = parse_range(range_header, size)
            if span is not None:
                (start, end), status = span, 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    media_type = content_type(row["filename"])
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(store.read(key, start, end), status_code=status, headers=headers, media_type=media_type)
