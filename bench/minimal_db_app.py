"""The ceiling drsbox's DRS metadata route is measured against: the least a Starlette app can do to answer
one object by id from PostgreSQL (one primary-key select through an asyncpg pool, a small JSONResponse).

Run by bench/drs_metadata.py under the same uvicorn as drsbox; DATABASE_URL names the database. The pool
has drsbox's size (pgdb.PostgresDatabase.connect: min_size=1, max_size=10) and the select is drsbox's
get_drs_object, so the two differ only in what drsbox does around it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SELECT = """SELECT id, "user", url, sha256, size, filename, created, md5, upload, corrupt
FROM user_upload_complete
WHERE id = $1::uuid"""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


async def get_health(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def get_object(request: Request) -> Response:
    """One row by primary key, or 404."""
    row = await request.app.state.pool.fetchrow(SELECT, request.path_params["object_id"])
    if row is None:
        return JSONResponse({"msg": "not found", "status_code": 404}, status_code=404)
    return JSONResponse({"id": str(row["id"]), "name": row["filename"], "size": row["size"], "sha256": row["sha256"]})


app = Starlette(
    routes=[
        Route("/healthz", get_health, methods=["GET"]),
        Route("/objects/{object_id}", get_object, methods=["GET"]),
    ],
    lifespan=lifespan,
)
