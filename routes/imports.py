"""URL imports: PWB's synchronous fetch, and queued imports with their job's state."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import imports
import links
from auth import user_of
from database import Row
from payload import read_json
from routes.uploads import parse_uuid


def job_view(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "state": row["state"],
        "attempts": row["attempts"],
        "progress": row["progress"],
        "result": row["result"],
        "error": row["error"],
        "created": links.iso(row["created"]),
        "updated": links.iso(row["updated"]),
    }


async def import_body(request: Request) -> tuple[str, str | None]:
    body = await read_json(request)
    url, filename = body.get("url"), body.get("filename")
    if not isinstance(url, str) or not url:
        raise HTTPException(400, "`url` must be a non-empty string")
    if filename is not None and not isinstance(filename, str):
        raise HTTPException(400, "`filename` must be a string")
    return url, filename


async def fetch_file(request: Request) -> Response:
    """PWB's fetch: imports `{url}` now and answers like an upload: `{url, filename, sha256, size}`."""
    user = await user_of(request)
    url, filename = await import_body(request)
    state = request.app.state
    row = await imports.import_url(
        state.db, state.storage, imports.guard(state.settings), imports.options(state.settings), user, url, filename
    )
    return JSONResponse(
        {
            "url": links.drs_uri(state.settings, row["id"]),
            "filename": row["filename"],
            "sha256": row["sha256"],
            "size": row["size"],
        }
    )


async def create_import(request: Request) -> Response:
    """Queues an import of `{url[, filename]}`: 202 with the job; poll /api/v1/jobs/{id}."""
    user = await user_of(request)
    url, filename = await import_body(request)
    payload = {"url": url, **({"filename": filename} if filename else {})}
    state = request.app.state
    job = await state.db.enqueue_job(
        kind="import", payload=payload, user=user, max_attempts=state.settings.job_max_attempts
    )
    headers = {"Location": f"/api/v1/jobs/{job['id']}"}
    return JSONResponse(job_view(job), status_code=202, headers=headers)


async def get_job(request: Request) -> Response:
    """One of the caller's jobs: state, progress in bytes, result or error."""
    user: UUID = await user_of(request)
    id = parse_uuid(request.path_params["id"])
    row = None if id is None else await request.app.state.db.get_job(id=id, user=user)
    if row is None:
        raise HTTPException(404, f"no job {request.path_params['id']}")
    return JSONResponse(job_view(row))


routes = [
    Route("/api/v1/components/core/file/fetch", fetch_file, methods=["POST"], name="pwb_fetch"),
    Route("/api/v1/imports", create_import, methods=["POST"], name="create_import"),
    Route("/api/v1/jobs/{id}", get_job, methods=["GET"], name="get_job"),
]
