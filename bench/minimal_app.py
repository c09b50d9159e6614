"""The yardstick drsbox is measured against: the least a Starlette app can do to receive a file
(sha256 and a plain file, no md5, no fsync) and to serve one (a bare FileResponse).

Run by bench/transfer.py under the same uvicorn as drsbox; BENCH_FILE names the file `GET /file`
serves, BENCH_UPLOAD_DIR the directory `POST /upload` writes into.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

FILE = os.environ.get("BENCH_FILE", "")
UPLOAD_DIR = Path(os.environ.get("BENCH_UPLOAD_DIR", "."))


async def get_health(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def create_upload(request: Request) -> Response:
    """Streams the body to a new file, hashing it on the way."""
    digest = hashlib.sha256()
    size = 0
    # Blocking writes on the event loop on purpose: the yardstick is the cheapest correct thing.
    with open(UPLOAD_DIR / f"{uuid.uuid4().hex}.bin", "xb") as file:
        async for chunk in request.stream():
            digest.update(chunk)
            file.write(chunk)
            size += len(chunk)
    return JSONResponse({"sha256": digest.hexdigest(), "size": size})


async def get_file(request: Request) -> Response:
    """The test file, with Starlette's own Range handling."""
    return FileResponse(FILE)


app = Starlette(
    routes=[
        Route("/healthz", get_health, methods=["GET"]),
        Route("/upload", create_upload, methods=["POST"]),
        Route("/file", get_file, methods=["GET"]),
    ]
)
