"""PWB's file component API: multipart upload and download of this server's own objects."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import download
import links
import upload
from auth import may_read, user_of
from payload import read_json
from routes.uploads import check_length


async def upload_files(request: Request) -> Response:
    """Stores every file of a multipart body: `{field: [{url, filename, sha256, size}, ...]}`."""
    user = await user_of(request)
    check_length(request)
    state = request.app.state
    content_type = request.headers.get("content-type", "")
    received = await upload.receive_multipart(
        request.stream(), content_type, state.storage, state.settings.max_upload_size
    )
    rows = await upload.save(state.db, state.storage, user, received)
    result: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for file, row in zip(received, rows, strict=True):
        result[file.field].append(
            {
                "url": links.drs_uri(state.settings, row["id"]),
                "filename": row["filename"],
                "sha256": row["sha256"],
                "size": row["size"],
            }
        )
    return JSONResponse(result)


async def download_file(request: Request) -> Response:
    """The bytes of `{url}`: one of this server's drs:// links (never a proxy for other hosts)."""
    await user_of(request)
    url = (await read_json(request)).get("url")
    if not isinstance(url, str):
        raise HTTPException(400, "`url` must be a string")
    state = request.app.state
    parts = urlsplit(url)
    if parts.scheme != "drs" or parts.netloc != state.settings.drs_host:
        raise HTTPException(400, f"only drs://{state.settings.drs_host}/... links can be downloaded here")
    id = parse_drs_id(parts.path)
    row = None if id is None else await state.db.get_drs_object(id=id)
    if row is None or not await may_read(request, row["user"]):
        raise HTTPException(404, f"no object {url}")
    return await download.blob_response(request, row, state.storage)


def parse_drs_id(path: str) -> UUID | None:
    try:
        return UUID(path.lstrip("/"))
    except ValueError:
        return None


routes = [
    Route("/api/v1/components/core/file/upload", upload_files, methods=["POST"], name="pwb_upload"),
    Route("/api/v1/components/core/file/download", download_file, methods=["POST"], name="pwb_download"),
]
