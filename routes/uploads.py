"""The caller's uploads: raw-body upload, list, get and delete (native), plus PWB's list and delete."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import links
import upload
from auth import user_of
from database import Row
from ingest import TooLarge
from settings import Settings

MAX_PAGE = 1000


def native(settings: Settings, row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "url": links.drs_uri(settings, row["id"]),
        "filename": row["filename"],
        "size": row["size"],
        "sha256": row["sha256"],
        "md5": row["md5"],
        "created": links.iso(row["created"]),
    }


def pwb_item(settings: Settings, row: Row) -> dict[str, Any]:
    """The shape of PWB's /api/db/user/uploads items."""
    return {
        "id": str(row["id"]),
        "user": None if row["user"] is None else str(row["user"]),
        "url": links.drs_uri(settings, row["id"]),
        "sha256": row["sha256"],
        "size": row["size"],
        "filename": row["filename"],
        "created": links.iso(row["created"]),
    }


def check_length(request: Request) -> None:
    """Refuses a body whose declared length is over the limit before reading any of it."""
    limit = request.app.state.settings.max_upload_size
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


async def create_upload(request: Request) -> Response:
    """Stores the raw request body as a file named by `?filename=`."""
    user = await user_of(request)
    filename = upload.clean_filename(request.query_params.get("filename"))
    check_length(request)
    state = request.app.state
    received = await upload.receive_raw(request.stream(), filename, state.storage, state.settings.max_upload_size)
    [row] = await upload.save(state.db, state.storage, user, [received])
    return JSONResponse(native(state.settings, row), status_code=201)


def encode_cursor(row: Row) -> str:
    raw = json.dumps([row["created"].isoformat(), str(row["id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, UUID]:
    try:
        created, id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return dt.datetime.fromisoformat(created), UUID(id)
    except (ValueError, TypeError) as error:
        raise HTTPException(400, "invalid cursor") from error


async def page_of_uploads(request: Request, user: UUID) -> tuple[list[Row], str | None]:
    """All the user's uploads, or one keyset page of them when `limit` or `cursor` is given."""
    params = request.query_params
    if "limit" not in params and "cursor" not in params:
        rows = await request.app.state.db.list_user_uploads(user=user, after_created=None, after_id=None, limit=None)
        return rows, None
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise HTTPException(400, f"limit must be a whole number from 1 to {MAX_PAGE}")
    limit = int(limit_text)
    after_created, after_id = decode_cursor(params["cursor"]) if params.get("cursor") else (None, None)
    rows = await request.app.state.db.list_user_uploads(
        user=user, after_created=after_created, after_id=after_id, limit=limit + 1
    )
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


async def list_uploads(request: Request) -> Response:
    """The caller's uploads, newest first: `{items, next_cursor}`."""
    user = await user_of(request)
    rows, next_cursor = await page_of_uploads(request, user)
    settings = request.app.state.settings
    return JSONResponse({"items": [native(settings, row) for row in rows], "next_cursor": next_cursor})


async def list_pwb_uploads(request: Request) -> Response:
    """PWB's list: a bare JSON array; with `limit`/`cursor`, the next page's cursor is in `X-Next-Cursor`."""
    user = await user_of(request)
    rows, next_cursor = await page_of_uploads(request, user)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else None
    return JSONResponse([pwb_item(request.app.state.settings, row) for row in rows], headers=headers)


async def get_upload(request: Request) -> Response:
    """One of the caller's uploads."""
    user = await user_of(request)
    id = parse_uuid(request.path_params["id"])
    row = None if id is None else await request.app.state.db.get_user_upload(id=id, user=user)
    if row is None:
        raise HTTPException(404, f"no upload {request.path_params['id']}")
    return JSONResponse(native(request.app.state.settings, row))


async def delete_row_or_404(request: Request) -> Row:
    user = await user_of(request)
    id = parse_uuid(request.path_params["id"])
    row = None if id is None else await request.app.state.db.delete_user_upload(id=id, user=user)
    if row is None:
        raise HTTPException(404, f"no upload {request.path_params['id']}")
    return row


async def delete_upload(request: Request) -> Response:
    """Deletes one of the caller's uploads; its DRS id answers 404 from then on."""
    await delete_row_or_404(request)
    return Response(status_code=204)


async def delete_pwb_upload(request: Request) -> Response:
    """PWB's delete: answers the deleted row."""
    row = await delete_row_or_404(request)
    return JSONResponse(
        {
            "id": str(row["id"]),
            "user": None if row["user"] is None else str(row["user"]),
            "upload": str(row["upload"]),
            "filename": row["filename"],
            "created": links.iso(row["created"]),
        }
    )


routes = [
    Route("/api/v1/uploads", create_upload, methods=["POST"], name="create_upload"),
    Route("/api/v1/uploads", list_uploads, methods=["GET"], name="list_uploads"),
    Route("/api/v1/uploads/{id}", get_upload, methods=["GET"], name="get_upload"),
    Route("/api/v1/uploads/{id}", delete_upload, methods=["DELETE"], name="delete_upload"),
    Route("/api/db/user/uploads", list_pwb_uploads, methods=["GET"], name="list_pwb_uploads"),
    Route("/api/db/user/uploads/{id}/delete", delete_pwb_upload, methods=["POST"], name="delete_pwb_upload"),
]
