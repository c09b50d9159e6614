"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import database
import storage

PROBE_TIMEOUT = 5.0


async def get_health(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def get_ready(request: Request) -> Response:
    """The database and the storage both answer; 503 naming what is down otherwise."""
    checks = {"database": "ok", "storage": "ok"}
    try:
        await asyncio.wait_for(request.app.state.db.get_now(), PROBE_TIMEOUT)
    except (database.Unavailable, TimeoutError) as error:
        checks["database"] = f"down: {error or 'timed out'}"
    try:
        await asyncio.wait_for(request.app.state.storage.check(), PROBE_TIMEOUT)
    except (storage.StorageUnavailable, TimeoutError) as error:
        checks["storage"] = f"down: {error or 'timed out'}"
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ok", **checks})
    down = ", ".join(name for name, value in checks.items() if value != "ok")
    return JSONResponse({"msg": f"not ready: {down} down", "status_code": 503, **checks}, status_code=503)


async def get_metrics(request: Request) -> Response:
    """Prometheus text: corrupt blobs and jobs by kind and state (cluster-wide: read from the database)."""
    db = request.app.state.db
    corrupt = (await db.count_corrupt_uploads())["count"]
    lines = [
        "# HELP drsbox_corrupt_blobs Stored blobs whose bytes failed their last integrity check.",
        "# TYPE drsbox_corrupt_blobs gauge",
        f"drsbox_corrupt_blobs {corrupt}",
        "# HELP drsbox_jobs Jobs by kind and state.",
        "# TYPE drsbox_jobs gauge",
    ]
    for row in await db.list_job_counts():
        lines.append(f'drsbox_jobs{{kind="{row["kind"]}",state="{row["state"]}"}} {row["count"]}')
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


routes = [
    Route("/healthz", get_health, methods=["GET"], name="healthz"),
    Route("/readyz", get_ready, methods=["GET"], name="readyz"),
    Route("/metrics", get_metrics, methods=["GET"], name="metrics"),
]
