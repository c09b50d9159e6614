"""DRS_AUTH=token: objects readable by their owner and the service only; signed, expiring access URLs."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import signing
from auth import issue_token
from conftest import SECRET
from database import Database
from server import create_app
from settings import Settings, load
from storage import LocalStorage

pytestmark = pytest.mark.anyio

DRS = "/ga4gh/drs/v1"


@pytest.fixture
async def private(db: Database, tmp_path: Path, settings: Settings) -> AsyncIterator[dict]:
    """A token-mode app, an anonymous client, and credentials of alice (owner), bob and the service."""
    settings = dataclasses.replace(settings, drs_auth="token", drs_url_expiry=60)
    app = create_app(settings, db=db, storage=LocalStorage(tmp_path / "ufs"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as client:
        alice, bob = await issue_token(db, "alice"), await issue_token(db, "bob")
        headers = {
            "alice": {"Authorization": f"Bearer {alice}"},
            "alice-basic": {"Authorization": "Basic " + base64.b64encode(f"alice:{alice}".encode()).decode()},
            "bob": {"Authorization": f"Bearer {bob}"},
            "service": {"Authorization": f"Token {SECRET}"},
        }
        record = (
            await client.post(
                "/api/v1/uploads?filename=secret.txt", content=b"for alice only", headers=headers["alice"]
            )
        ).json()
        yield {"client": client, "headers": headers, "id": record["id"], "url": record["url"]}


async def test_metadata_needs_credentials_of_the_owner_or_the_service(private: dict) -> None:
    client, headers, id = private["client"], private["headers"], private["id"]
    anonymous = await client.get(f"{DRS}/objects/{id}")
    assert anonymous.status_code == 401 and anonymous.json()["status_code"] == 401
    assert "Bearer" in anonymous.headers["www-authenticate"]
    assert (await client.get(f"{DRS}/objects/{id}", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await client.get(f"{DRS}/objects/{id}", headers=headers["bob"])).status_code == 404  # not 403
    for who in ("alice", "alice-basic", "service"):
        assert (await client.get(f"{DRS}/objects/{id}", headers=headers[who])).json()["name"] == "secret.txt"
    bulk = await client.post(f"{DRS}/objects", json={"bulk_object_ids": [id]}, headers=headers["bob"])
    assert bulk.json()["unresolved_drs_objects"] == [{"error_code": 404, "object_ids": [id]}]


async def test_access_urls_are_signed_and_work_without_any_header(private: dict) -> None:
    client, headers, id = private["client"], private["headers"], private["id"]
    url = (await client.get(f"{DRS}/objects/{id}/access/https", headers=headers["alice"])).json()["url"]
    query = parse_qs(urlsplit(url).query)
    assert set(query) == {"expires", "signature"}
    assert (await client.get(url)).content == b"for alice only"
    ranged = await client.get(url, headers={"Range": "bytes=4-8"})
    assert ranged.status_code == 206 and ranged.content == b"alice"
    drs = (await client.get(f"{DRS}/objects/{id}", headers=headers["alice"])).json()
    assert (await client.get(drs["access_methods"][0]["access_url"]["url"])).status_code == 200
    bulk = await client.post(
        f"{DRS}/objects/access",
        headers=headers["alice"],
        json={"bulk_object_access_ids": [{"bulk_object_id": id, "bulk_access_ids": ["https"]}]},
    )
    assert (await client.get(bulk.json()["resolved_drs_object_access_urls"][0]["url"])).status_code == 200
    assert (await client.get(f"{DRS}/objects/{id}/access/https/data")).status_code == 401  # unsigned, anonymous
    assert (await client.get(f"{DRS}/objects/{id}/access/https/data", headers=headers["alice"])).status_code == 200


async def test_expired_tampered_and_foreign_signatures_get_403(private: dict, db: Database) -> None:
    client, headers, id = private["client"], private["headers"], private["id"]
    other = (await client.post("/api/v1/uploads?filename=o.txt", content=b"other", headers=headers["alice"])).json()
    byte_route = f"http://drs.test:3000{DRS}/objects/{id}/access/https/data"
    expired = signing.sign(byte_route, SECRET, id, "https", -10)
    foreign = signing.sign(byte_route.replace(id, other["id"]), SECRET, other["id"], "https", 60).replace(
        other["id"], id
    )
    good = signing.sign(byte_route, SECRET, id, "https", 60)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    later = good.replace("expires=", "expires=9")  # a longer life, same signature
    wrong_key = signing.sign(byte_route, "another secret", id, "https", 60)
    for url in (expired, foreign, tampered, later, wrong_key, byte_route + "?signature=x&expires=soon"):
        response = await client.get(url)
        assert response.status_code == 403, url
        assert response.json()["status_code"] == 403 and response.json()["msg"]
    assert (await client.get(good)).status_code == 200


async def test_options_report_the_supported_types_without_credentials(private: dict) -> None:
    client, id = private["client"], private["id"]
    single = await client.options(f"{DRS}/objects/{id}")
    assert single.json() == {"drs_object_id": id, "supported_types": ["BearerAuth", "BasicAuth"]}
    unknown = await client.options(f"{DRS}/objects/not-there")  # answers alike: tells nobody which ids exist
    assert unknown.status_code == 200
    bulk = await client.request("OPTIONS", f"{DRS}/objects", json={"bulk_object_ids": [id, "bad id"]})
    assert bulk.json()["resolved_drs_object"] == [{"drs_object_id": id, "supported_types": ["BearerAuth", "BasicAuth"]}]
    assert bulk.json()["unresolved_drs_objects"] == [{"error_code": 400, "object_ids": ["bad id"]}]


async def test_passports_get_a_clear_error(private: dict) -> None:
    client, headers, id = private["client"], private["headers"], private["id"]
    for url in (f"{DRS}/objects/{id}", f"{DRS}/objects/{id}/access/https", f"{DRS}/objects"):
        body = {"passports": ["eyJhbGciOi..."], "bulk_object_ids": [id]}
        response = await client.post(url, json=body, headers=headers["alice"])
        assert response.status_code == 400 and "passport" in response.json()["msg"]
    assert (await client.post(f"{DRS}/objects/{id}", json={}, headers=headers["alice"])).status_code == 200


async def test_pwb_download_follows_the_same_rule(private: dict) -> None:
    client, headers = private["client"], private["headers"]
    body = {"url": private["url"]}
    assert (
        await client.post("/api/v1/components/core/file/download", json=body, headers=headers["bob"])
    ).status_code == 404
    mine = await client.post("/api/v1/components/core/file/download", json=body, headers=headers["alice"])
    assert mine.content == b"for alice only"


async def test_public_mode_ignores_forwarded_headers_for_links(client: httpx.AsyncClient) -> None:
    record = (await client.post("/api/v1/uploads?filename=a", content=b"a")).json()
    spoofed = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Host": "evil.example"}
    drs = (await client.get(f"{DRS}/objects/{record['id']}", headers=spoofed)).json()
    assert drs["self_uri"] == f"drs://drs.test:3000/{record['id']}"
    assert drs["access_methods"][0]["access_url"]["url"].startswith("http://drs.test:3000/")


def test_token_mode_needs_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SECRET"):
        load({"DRS_AUTH": "token"}, env_file=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="DRS_AUTH"):
        load({"DRS_AUTH": "private", "SECRET": "s"}, env_file=str(tmp_path / "none"))
    assert load({"DRS_AUTH": "token", "SECRET": "s"}, env_file=str(tmp_path / "none")).drs_auth == "token"
