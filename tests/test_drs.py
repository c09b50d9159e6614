"""GA4GH DRS 1.5 endpoints, checked against the spec's own schemas, and the byte route's HTTP semantics."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from database import Database
from server import create_app
from settings import Settings
from storage import LocalStorage

pytestmark = pytest.mark.anyio

SPEC = (
    yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "shared" / "reference" / "drs-1.5.0.openapi.yaml").read_text()
    )
    if (Path(__file__).resolve().parents[2] / "shared").exists()
    else None
)
BASES = ["/ga4gh/drs/v1", "/api/ga4gh/drs/v1"]


def validate(instance: Any, schema_name: str) -> None:
    """Validates against a schema of the bundled DRS 1.5 OpenAPI spec (skipped where shared/ is absent)."""
    if SPEC is None:
        pytest.skip("shared/reference is not beside the checkout")
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    jsonschema.validate(instance, schema)


def no_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert item is not None
            no_nulls(item)
    elif isinstance(value, list):
        for item in value:
            no_nulls(item)


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "data.bin") -> dict:
    response = await client.post("/api/v1/uploads", params={"filename": name}, content=data)
    assert response.status_code == 201
    return response.json()


async def test_service_info_is_a_proper_service_object(client: httpx.AsyncClient) -> None:
    for base in BASES:
        info = (await client.get(f"{base}/service-info")).json()
        validate(info, "Service")
        validate(info, "DrsService")
        assert info["type"] == {"group": "org.ga4gh", "artifact": "drs", "version": "1.5.0"}
        assert info["drs"]["maxBulkRequestLength"] == info["maxBulkRequestLength"] >= 1


async def test_object_metadata_follows_the_spec_and_interop_rules(client: httpx.AsyncClient) -> None:
    data = os.urandom(5000)
    record = await upload(client, data, "table.csv")
    for base in BASES:
        client.headers.pop("Authorization", None)  # objects are readable by id without credentials
        for response in [
            await client.get(f"{base}/objects/{record['id']}"),
            await client.get(f"{base}/objects/{record['id']}", params={"expand": "True"}),
            await client.post(f"{base}/objects/{record['id']}", json={"expand": False}),
            await client.request("GET", f"{base}/objects/{record['id']}", content=b"{}"),
        ]:
            assert response.status_code == 200, response.text
            drs = response.json()
            validate(drs, "DrsObject")
            no_nulls(drs)
            assert drs["id"] == record["id"] and drs["name"] == "table.csv" and drs["size"] == 5000
            assert drs["self_uri"] == f"drs://drs.test:3000/{record['id']}"
            assert drs["checksums"] == [
                {"checksum": hashlib.sha256(data).hexdigest(), "type": "sha-256"},
                {"checksum": hashlib.md5(data).hexdigest(), "type": "md5"},
            ]
            [method] = drs["access_methods"]
            assert method["type"] == "https" and method["access_id"] == "https"
            assert method["access_url"]["url"] == (
                f"http://drs.test:3000/ga4gh/drs/v1/objects/{record['id']}/access/https/data"
            )


async def test_access_url_points_at_the_byte_route_which_serves_the_bytes(client: httpx.AsyncClient) -> None:
    data = os.urandom(70_000)
    record = await upload(client, data)
    for base in BASES:
        for response in [
            await client.get(f"{base}/objects/{record['id']}/access/https"),
            await client.post(f"{base}/objects/{record['id']}/access/https", json={"passports": []}),
        ]:
            validate(response.json(), "AccessURL")
            url = response.json()["url"]
            fetched = await client.get(url, headers={"Authorization": ""})
            assert fetched.status_code == 200 and fetched.content == data


@pytest.mark.parametrize("base", BASES)
async def test_unknown_malformed_ids_and_access_ids_get_json_errors(client: httpx.AsyncClient, base: str) -> None:
    record = await upload(client, b"x")
    cases = {
        f"{base}/objects/00000000-0000-4000-8000-000000000000": 404,
        f"{base}/objects/not-a-uuid": 404,
        f"{base}/objects/bad%20id": 400,
        f"{base}/objects/bad$id": 400,
        f"{base}/objects/{record['id']}/access/s3": 404,
        f"{base}/objects/{record['id']}/access/https/data/more": 404,
        f"{base}/objects/bad!id/access/https/data": 400,
        f"{base}/objects/{record['id']}?expand=maybe": 400,
    }
    for url, status in cases.items():
        response = await client.get(url)
        assert response.status_code == status, url
        assert response.json()["status_code"] == status and response.json()["msg"], url
        validate(response.json(), "Error")
    wrong_method = await client.delete(f"{base}/objects/{record['id']}")
    assert wrong_method.status_code == 405 and wrong_method.json()["status_code"] == 405
    for body in [b"{oops", b"[]"]:
        bad_json = await client.post(f"{base}/objects/{record['id']}", content=body)
        assert bad_json.status_code == 400 and bad_json.json()["status_code"] == 400


@pytest.mark.parametrize("base", BASES)
async def test_options_report_that_objects_need_no_authorization(client: httpx.AsyncClient, base: str) -> None:
    record = await upload(client, b"opt")
    single = await client.options(f"{base}/objects/{record['id']}")
    assert single.json() == {"drs_object_id": record["id"], "supported_types": ["None"]}
    validate(single.json(), "Authorizations")
    assert (await client.options(f"{base}/objects/{'0' * 8}-0000-4000-8000-{'0' * 12}")).status_code == 404
    bulk = await client.request("OPTIONS", f"{base}/objects", json={"bulk_object_ids": [record["id"], "missing"]})
    assert bulk.json()["summary"] == {"requested": 2, "resolved": 1, "unresolved": 1}
    assert bulk.json()["resolved_drs_object"] == [{"drs_object_id": record["id"], "supported_types": ["None"]}]


@pytest.mark.parametrize("base", BASES)
async def test_bulk_objects_resolve_what_exists_and_report_the_rest(client: httpx.AsyncClient, base: str) -> None:
    a, b = await upload(client, b"a", "a"), await upload(client, b"b", "b")
    missing = "00000000-0000-4000-8000-000000000000"
    response = await client.post(f"{base}/objects", json={"bulk_object_ids": [a["id"], b["id"], missing, "bad id"]})
    body = response.json()
    assert body["summary"] == {"requested": 4, "resolved": 2, "unresolved": 2}
    assert sorted(obj["id"] for obj in body["resolved_drs_object"]) == sorted([a["id"], b["id"]])
    for obj in body["resolved_drs_object"]:
        validate(obj, "DrsObject")
    assert body["unresolved_drs_objects"] == [
        {"error_code": 400, "object_ids": ["bad id"]},
        {"error_code": 404, "object_ids": [missing]},
    ]
    access = await client.post(
        f"{base}/objects/access",
        json={
            "bulk_object_access_ids": [
                {"bulk_object_id": a["id"], "bulk_access_ids": ["https"]},
                {"bulk_object_id": missing, "bulk_access_ids": ["https"]},
            ]
        },
    )
    urls = access.json()["resolved_drs_object_access_urls"]
    assert urls == [
        {
            "drs_object_id": a["id"],
            "drs_access_id": "https",
            "url": f"http://drs.test:3000/ga4gh/drs/v1/objects/{a['id']}/access/https/data",
        }
    ]
    for url in urls:
        validate(url, "BulkAccessURL")
    assert access.json()["unresolved_drs_objects"] == [{"error_code": 404, "object_ids": [missing]}]


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"bulk_object_ids": []}', b'{"bulk_object_ids": "x"}', b"nope", b'{"bulk_object_ids": [1]}']
)
async def test_bad_bulk_requests_get_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/ga4gh/drs/v1/objects", content=body)
    if body == b'{"bulk_object_ids": [1]}':  # a non-string id is reported, not fatal
        assert response.json()["unresolved_drs_objects"] == [{"error_code": 400, "object_ids": [1]}]
    else:
        assert response.status_code == 400 and response.json()["status_code"] == 400


async def test_bulk_request_over_the_advertised_length_gets_413(client: httpx.AsyncClient) -> None:
    limit = (await client.get("/ga4gh/drs/v1/service-info")).json()["drs"]["maxBulkRequestLength"]
    response = await client.post("/ga4gh/drs/v1/objects", json={"bulk_object_ids": ["x"] * (limit + 1)})
    assert response.status_code == 413 and response.json()["status_code"] == 413


async def byte_route(client: httpx.AsyncClient, data: bytes, name: str = "data.bin") -> str:
    record = await upload(client, data, name)
    client.headers.pop("Authorization", None)
    return f"/ga4gh/drs/v1/objects/{record['id']}/access/https/data"


async def test_byte_route_headers(client: httpx.AsyncClient) -> None:
    data = os.urandom(10_000)
    url = await byte_route(client, data, 'évil "name".html')
    response = await client.get(url)
    assert response.content == data
    headers = response.headers
    assert headers["content-length"] == "10000" and headers["accept-ranges"] == "bytes"
    assert headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert headers["content-type"].startswith("text/html")
    assert headers["x-content-type-options"] == "nosniff" and "sandbox" in headers["content-security-policy"]
    assert headers["content-disposition"] == (
        "attachment; filename=\"_vil _name_.html\"; filename*=UTF-8''%C3%A9vil%20%22name%22.html"
    )


@pytest.mark.parametrize(
    ("header", "status", "span"),
    [
        ("bytes=0-9", 206, (0, 10)),
        ("bytes=100-", 206, (100, 1000)),
        ("bytes=-10", 206, (990, 1000)),
        ("bytes=990-5000", 206, (990, 1000)),
        ("bytes=999-999", 206, (999, 1000)),
        ("bytes=-5000", 206, (0, 1000)),
        ("bytes=0-1,5-6", 200, (0, 1000)),
    ],
)
async def test_single_ranges_are_served_with_206(
    client: httpx.AsyncClient, header: str, status: int, span: tuple[int, int]
) -> None:
    data = os.urandom(1000)
    url = await byte_route(client, data)
    response = await client.get(url, headers={"Range": header})
    assert response.status_code == status and response.content == data[span[0] : span[1]]
    assert response.headers["content-length"] == str(span[1] - span[0])
    if status == 206:
        assert response.headers["content-range"] == f"bytes {span[0]}-{span[1] - 1}/1000"


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=9-3", "lines=1-2", "bytes=a-b", "bytes=-", "bytes 0-1"],
)
async def test_malformed_and_unsatisfiable_ranges_get_416_json(client: httpx.AsyncClient, header: str) -> None:
    url = await byte_route(client, os.urandom(1000))
    response = await client.get(url, headers={"Range": header})
    assert response.status_code == 416 and response.json()["status_code"] == 416
    assert response.headers["content-range"] == "bytes */1000"


async def test_conditional_requests_and_head(client: httpx.AsyncClient) -> None:
    data = os.urandom(2000)
    url = await byte_route(client, data)
    full = await client.get(url)
    etag, last_modified = full.headers["etag"], full.headers["last-modified"]
    not_modified = await client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b"" and not_modified.headers["etag"] == etag
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304
    ranged = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert ranged.status_code == 206 and ranged.content == data[:10]
    ranged_by_date = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": last_modified})
    assert ranged_by_date.status_code == 206
    stale = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data
    head = await client.head(url, headers={"Range": "bytes=10-19"})
    assert head.status_code == 206 and head.content == b"" and head.headers["content-length"] == "10"


async def test_empty_file_downloads_and_refuses_ranges(client: httpx.AsyncClient) -> None:
    url = await byte_route(client, b"")
    response = await client.get(url)
    assert response.status_code == 200 and response.content == b"" and response.headers["content-length"] == "0"
    assert (await client.get(url, headers={"Range": "bytes=0-"})).status_code == 416


async def test_missing_blob_answers_404_not_500(client: httpx.AsyncClient, tmp_path: Path) -> None:
    data = b"will vanish"
    url = await byte_route(client, data)
    (tmp_path / "ufs" / hashlib.sha256(data).hexdigest()).unlink()
    response = await client.get(url)
    assert response.status_code == 404 and response.json()["status_code"] == 404


async def test_drs_version_1_2_emits_the_1_2_service_info_shape(
    db: Database, tmp_path: Path, settings: Settings
) -> None:
    app = create_app(dataclasses.replace(settings, drs_version="1.2.0"), db=db, storage=LocalStorage(tmp_path / "ufs"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as client:
        info = (await client.get("/ga4gh/drs/v1/service-info")).json()
    assert info["type"]["version"] == "1.2.0"
    assert "maxBulkRequestLength" not in info and "drs" not in info
    validate(info, "Service")


async def test_service_info_counts_objects_and_distinct_bytes_as_of_the_last_stats_job(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert "objectCount" not in (await client.get("/ga4gh/drs/v1/service-info")).json()["drs"]  # never counted
    await upload(client, b"12345", "a")
    await upload(client, b"12345", "b")  # same bytes: counted once in totalObjectSize
    await upload(client, b"1234567890", "c")
    await db.refresh_drs_stats()
    info = (await client.get("/ga4gh/drs/v1/service-info")).json()
    assert (info["drs"]["objectCount"], info["drs"]["totalObjectSize"]) == (3, 15)
    validate(info, "DrsService")
