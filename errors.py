"""Every error leaves as DRS's JSON error shape `{"msg": ..., "status_code": ...}`: mapped here, and only here."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

import database
import multipart
import storage
import upload
from auth import Unauthorized
from imports import ImportFailed
from ingest import TooLarge
from netguard import Refused
from signing import Forbidden

logger = logging.getLogger("drsbox")


def error_response(status_code: int, msg: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"msg": msg, "status_code": status_code}, status_code=status_code, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def unauthorized(request: Request, exc: Exception) -> Response:
    return error_response(401, str(exc), {"WWW-Authenticate": 'Bearer realm="drsbox"'})


async def forbidden(request: Request, exc: Exception) -> Response:
    return error_response(403, str(exc))


async def bad_request(request: Request, exc: Exception) -> Response:
    return error_response(400, str(exc))


async def refused(request: Request, exc: Exception) -> Response:
    return error_response(400, f"import refused: {exc}")


async def import_failed(request: Request, exc: Exception) -> Response:
    # The source, not the request, is at fault: a gateway error.
    return error_response(502, f"import failed: {exc}")


async def too_large(request: Request, exc: Exception) -> Response:
    # The rest of the body is not read: the connection is closed rather than drained.
    return error_response(413, str(exc), {"Connection": "close"})


async def unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "the service is temporarily unavailable, try again later", {"Retry-After": "5"})


async def client_gone(request: Request, exc: Exception) -> Response:
    # Nobody reads this response; the upload it belonged to was already rolled back.
    return error_response(400, "the client disconnected before the body was complete")


async def server_error(request: Request, exc: Exception) -> Response:
    # The server logs the traceback (Starlette re-raises after this response); the client never sees it.
    return error_response(500, "internal server error")


HANDLERS = {
    HTTPException: http_error,
    Unauthorized: unauthorized,
    Forbidden: forbidden,
    upload.BadUpload: bad_request,
    multipart.MalformedMultipart: bad_request,
    TooLarge: too_large,
    Refused: refused,
    ImportFailed: import_failed,
    ClientDisconnect: client_gone,
    storage.StorageUnavailable: unavailable,
    database.Unavailable: unavailable,
    Exception: server_error,
}
