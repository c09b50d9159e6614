"""GA4GH DRS 1.5: service-info, objects, access URLs, bulk requests and PWB's byte route."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import download
import links
import signing
from auth import may_read
from database import Row
from payload import read_json
from settings import Settings

OBJECT_ID = re.compile(r"^[A-Za-z0-9._~-]+$")
PRESIGNED = "presigned"
BASES = ("/ga4gh/drs/v1", "/api/ga4gh/drs/v1")  # PWB serves both
VERSION = "0.1.0"


def authorizations(settings: Settings) -> dict[str, list[str]]:
    return {"supported_types": ["BearerAuth", "BasicAuth"] if settings.drs_auth == "token" else ["None"]}


def parse_id(object_id: Any) -> UUID | None:
    """The uuid behind a DRS id; None for a well-formed id that cannot exist. Raises 400 for a malformed one."""
    if not isinstance(object_id, str) or not OBJECT_ID.match(object_id):
        raise HTTPException(400, "malformed object id: ids use only A-Z a-z 0-9 . _ ~ -")
    try:
        return UUID(object_id)
    except ValueError:
        return None


async def object_or_404(request: Request, authorized: bool = False) -> Row:
    """The object of the path; with DRS_AUTH=token only for its owner and the service (others get 404, as if
    it did not exist), unless the request was `authorized` otherwise (a signed URL)."""
    id = parse_id(request.path_params["object_id"])
    row = None if id is None else await request.app.state.db.get_drs_object(id=id)
    if row is None or not (authorized or await may_read(request, row["user"])):
        raise HTTPException(404, f"no object {request.path_params['object_id']}")
    return row


def refuse_passports(request: Request, body: dict[str, Any]) -> None:
    if body.get("passports") and request.app.state.settings.drs_auth == "token":
        raise HTTPException(400, "passport authorization is not configured here: use a bearer token or Basic auth")


def access_ids(request: Request) -> tuple[str, ...]:
    """`https` is our byte route; `presigned`, where enabled, a URL of the object store itself."""
    presigned = request.app.state.settings.ufs_presign and request.app.state.storage.can_presign
    return (PRESIGNED, "https") if presigned else ("https",)


async def access_url(request: Request, row: Row, access_id: str) -> str:
    if access_id not in access_ids(request):
        offered = ", ".join(access_ids(request))
        raise HTTPException(404, f"no access method {access_id!r}: this server offers {offered}")
    if access_id == PRESIGNED:
        return await download.presigned_url(request, row)
    return data_url(request.app.state.settings, row)


def data_url(settings: Settings, row: Row) -> str:
    """The byte route; signed and expiring when objects are not public, so that it needs no header."""
    url = links.data_url(settings, row["id"])
    if settings.drs_auth == "public":
        return url
    assert settings.secret is not None
    return signing.sign(url, settings.secret, str(row["id"]), "https", settings.drs_url_expiry)


def parse_expand(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise HTTPException(400, "expand must be true or false")


def drs_object(settings: Settings, row: Row, ids: tuple[str, ...]) -> dict[str, Any]:
    checksums = [{"checksum": row["sha256"], "type": "sha-256"}]
    if row["md5"]:
        checksums.append({"checksum": row["md5"], "type": "md5"})
    created = links.iso(row["created"])
    return {
        "id": str(row["id"]),
        "name": row["filename"],
        "self_uri": links.drs_uri(settings, row["id"]),
        "size": row["size"],
        "created_time": created,
        "updated_time": created,
        "mime_type": download.content_type(row["filename"]),
        "checksums": checksums,
        "access_methods": [
            {"type": "https", "access_id": id, "access_url": {"url": data_url(settings, row)}}
            if id == "https"
            else {"type": "https", "access_id": id}  # presigned URLs expire: fetched from /access when needed
            for id in ids
        ],
    }


def service_id(settings: Settings) -> str:
    host = settings.drs_host.split(":")[0]
    return ".".join(reversed(host.split("."))) + ".drs"


async def get_service_info(request: Request) -> Response:
    """Describes this DRS service."""
    settings = request.app.state.settings
    info: dict[str, Any] = {
        "id": service_id(settings),
        "name": "drsbox",
        "type": {"group": "org.ga4gh", "artifact": "drs", "version": settings.drs_version},
        "description": "drsbox: a small file store with a GA4GH DRS API",
        "organization": {"name": "drsbox", "url": settings.public_url},
        "version": VERSION,
    }
    if settings.drs_version != "1.2.0":
        # Added after 1.2: a 1.2 deployment emits exactly the 1.2 shape, which strict 1.2 validators demand.
        info["maxBulkRequestLength"] = settings.drs_max_bulk
        info["drs"] = {"maxBulkRequestLength": settings.drs_max_bulk}
        # Counted by the periodic `stats` job (STATS_INTERVAL), never per request: cheap at any size.
        stats = await request.app.state.db.get_drs_stats()
        if stats is not None:
            info["drs"].update(objectCount=stats["object_count"], totalObjectSize=stats["total_size"])
    return JSONResponse(info)


async def get_object(request: Request) -> Response:
    """One object's metadata (GET, or POST with `expand`/`passports` in the body)."""
    if request.method == "POST":
        body = await read_json(request, required=False)
        refuse_passports(request, body)
        parse_expand(body.get("expand"))
    else:
        parse_expand(request.query_params.get("expand"))
    row = await object_or_404(request)
    return JSONResponse(drs_object(request.app.state.settings, row, access_ids(request)))


async def options_object(request: Request) -> Response:
    """How to authorize requests for one object: objects are public."""
    settings = request.app.state.settings
    object_id = request.path_params["object_id"]
    id = parse_id(object_id)
    # OPTIONS needs no credentials. With DRS_AUTH=token it answers for any id, so it tells nobody which exist.
    if settings.drs_auth == "public" and (id is None or await request.app.state.db.get_drs_object(id=id) is None):
        raise HTTPException(404, f"no object {object_id}")
    return JSONResponse({"drs_object_id": object_id, **authorizations(settings)})


async def get_access_url(request: Request) -> Response:
    """The URL that serves an object's bytes."""
    if request.method == "POST":
        refuse_passports(request, await read_json(request, required=False))
    row = await object_or_404(request)
    return JSONResponse({"url": await access_url(request, row, request.path_params["access_id"])})


async def get_object_data(request: Request) -> Response:
    """PWB's byte route: the object's bytes, with Range, conditional requests and HEAD."""
    settings, query = request.app.state.settings, request.query_params
    signed = settings.drs_auth == "token" and "signature" in query
    if signed:
        assert settings.secret is not None
        object_id = request.path_params["object_id"]
        signing.verify(settings.secret, object_id, "https", query.get("expires", ""), query["signature"])
    row = await object_or_404(request, authorized=signed)
    return await download.blob_response(request, row, request.app.state.storage)


def bulk_ids(request: Request, values: Any, field: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise HTTPException(400, f"{field} must be a non-empty list")
    limit = request.app.state.settings.drs_max_bulk
    if len(values) > limit:
        raise HTTPException(413, f"{field} has {len(values)} items; the limit is {limit}")
    return values


async def resolve(request: Request, ids: list[Any]) -> tuple[dict[str, Row], list[dict[str, Any]]]:
    """Rows of the ids that exist (one query for all) and the unresolved ones grouped by error code."""
    malformed, parsed = [], {}
    for object_id in ids:
        try:
            id = parse_id(object_id)
        except HTTPException:
            malformed.append(object_id)
            continue
        parsed[object_id] = id
    rows = await request.app.state.db.list_drs_objects(ids=[id for id in parsed.values() if id is not None])
    # With DRS_AUTH=token, others' objects are unresolved (404) like missing ones.
    by_id = {row["id"]: row for row in rows if await may_read(request, row["user"])}
    found = {object_id: by_id[id] for object_id, id in parsed.items() if id in by_id}
    missing = [object_id for object_id in parsed if object_id not in found]
    unresolved = [{"error_code": code, "object_ids": ids} for code, ids in ((400, malformed), (404, missing)) if ids]
    return found, unresolved


def summary(requested: int, resolved: int) -> dict[str, int]:
    return {"requested": requested, "resolved": resolved, "unresolved": requested - resolved}


async def post_bulk_objects(request: Request) -> Response:
    """Metadata of several objects at once."""
    body = await read_json(request)
    refuse_passports(request, body)
    parse_expand(body.get("expand", request.query_params.get("expand")))
    ids = bulk_ids(request, body.get("bulk_object_ids"), "bulk_object_ids")
    found, unresolved = await resolve(request, ids)
    settings = request.app.state.settings
    return JSONResponse(
        {
            "summary": summary(len(ids), len(found)),
            "resolved_drs_object": [drs_object(settings, row, access_ids(request)) for row in found.values()],
            "unresolved_drs_objects": unresolved,
        }
    )


async def options_bulk_objects(request: Request) -> Response:
    """How to authorize requests for several objects (no credentials needed, as for one object)."""
    settings = request.app.state.settings
    ids = bulk_ids(request, (await read_json(request)).get("bulk_object_ids"), "bulk_object_ids")
    if settings.drs_auth == "token":
        found = {object_id: object_id for object_id in ids if isinstance(object_id, str) and OBJECT_ID.match(object_id)}
        unresolved = (
            [{"error_code": 400, "object_ids": [i for i in ids if i not in found]}] if len(found) < len(ids) else []
        )
    else:
        rows, unresolved = await resolve(request, ids)
        found = {object_id: str(row["id"]) for object_id, row in rows.items()}
    return JSONResponse(
        {
            "summary": summary(len(ids), len(found)),
            "resolved_drs_object": [{"drs_object_id": id, **authorizations(settings)} for id in found.values()],
            "unresolved_drs_objects": unresolved,
        }
    )


async def post_bulk_access(request: Request) -> Response:
    """Access URLs for several (object, access id) pairs."""
    body = await read_json(request)
    refuse_passports(request, body)
    items = bulk_ids(request, body.get("bulk_object_access_ids"), "bulk_object_access_ids")
    if not all(isinstance(item, dict) and isinstance(item.get("bulk_access_ids"), list) for item in items):
        raise HTTPException(400, "each bulk_object_access_ids item needs bulk_object_id and bulk_access_ids")
    found, unresolved = await resolve(request, [item.get("bulk_object_id") for item in items])
    urls, bad_access = [], []
    for item in items:
        row = found.get(item.get("bulk_object_id"))
        if row is None:
            continue
        for access_id in item["bulk_access_ids"]:
            if access_id in access_ids(request):
                url = await access_url(request, row, access_id)
                urls.append({"drs_object_id": str(row["id"]), "drs_access_id": access_id, "url": url})
            else:
                bad_access.append(item["bulk_object_id"])
    if bad_access:
        unresolved.append({"error_code": 404, "object_ids": bad_access})
    return JSONResponse(
        {
            "summary": summary(len(items), len(found) - len(set(bad_access))),
            "resolved_drs_object_access_urls": urls,
            "unresolved_drs_objects": unresolved,
        }
    )


# /objects/access must come before /objects/{object_id}, or it would be read as an object id.
routes = [
    Route("/service-info", get_service_info, methods=["GET"], name="drs_service_info"),
    Route("/objects/access", post_bulk_access, methods=["POST"], name="drs_bulk_access"),
    Route("/objects", post_bulk_objects, methods=["POST"], name="drs_bulk_objects"),
    Route("/objects", options_bulk_objects, methods=["OPTIONS"], name="drs_bulk_options"),
    Route("/objects/{object_id}", get_object, methods=["GET", "POST"], name="drs_object"),
    Route("/objects/{object_id}", options_object, methods=["OPTIONS"], name="drs_object_options"),
    Route("/objects/{object_id}/access/https/data", get_object_data, methods=["GET"], name="drs_object_data"),
    Route("/objects/{object_id}/access/{access_id}", get_access_url, methods=["GET", "POST"], name="drs_access"),
]
