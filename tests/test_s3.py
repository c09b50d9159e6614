"""drsbox over S3 (a real endpoint: moto's server): uploads, proxied and presigned downloads, outages."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

import s3
from auth import issue_token
from database import Database
from objectstore import S3Options, S3Storage
from server import create_app
from settings import Settings
from storage import StorageUnavailable
from test_uploads import row_count

pytestmark = pytest.mark.anyio

UPLOAD = "/api/v1/components/core/file/upload"


@pytest.fixture
def moto_own() -> object:
    """An endpoint of the test's own, so that it can be stopped and started."""
    with s3.moto() as server:
        server.make_bucket("files")
        yield server


async def client_for(db: Database, store: S3Storage, settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings, db=db, storage=store)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000")
    client.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
    return client


@pytest.fixture
async def s3_client(db: Database, moto_own: s3.Moto, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    store = S3Storage(S3Options("files", "ufs", moto_own.url, "test", "test"))
    async with await client_for(db, store, dataclasses.replace(settings, max_upload_size=64 << 20)) as client:
        yield client
    await store.close()


def keys(moto: s3.Moto, bucket: str = "files") -> list[str]:
    listed = moto.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


async def test_uploads_land_in_the_bucket_flat_under_sha256_and_download_through_drsbox(
    s3_client: httpx.AsyncClient, moto_own: s3.Moto
) -> None:
    data = os.urandom(9 * 1024 * 1024 + 7)  # more than one multipart part
    record = (await s3_client.post("/api/v1/uploads?filename=big.bin", content=data)).json()
    small = (await s3_client.post(UPLOAD, files={"file": ("s.txt", b"small")})).json()["file"][0]
    assert keys(moto_own) == sorted([f"ufs/{record['sha256']}", f"ufs/{small['sha256']}"])
    url = f"/ga4gh/drs/v1/objects/{record['id']}/access/https/data"
    whole = await s3_client.get(url)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == record["sha256"]
    ranged = await s3_client.get(url, headers={"Range": "bytes=8388600-8388700"})
    assert ranged.status_code == 206 and ranged.content == data[8388600:8388701]
    uploads = moto_own.client().list_multipart_uploads(Bucket="files")  # type: ignore[attr-defined]
    assert uploads.get("Uploads", []) == []


async def test_presigned_mode_hands_out_urls_of_the_store(db: Database, moto_own: s3.Moto, settings: Settings) -> None:
    store = S3Storage(S3Options("files", "ufs", moto_own.url, "test", "test"))
    async with await client_for(db, store, dataclasses.replace(settings, ufs_presign=True)) as client:
        data = os.urandom(100_000)
        record = (await client.post("/api/v1/uploads?filename=report.html", content=data)).json()
        drs = (await client.get(f"/ga4gh/drs/v1/objects/{record['id']}")).json()
        assert [m["access_id"] for m in drs["access_methods"]] == ["presigned", "https"]
        presigned = (await client.get(f"/ga4gh/drs/v1/objects/{record['id']}/access/presigned")).json()["url"]
        assert presigned.startswith(moto_own.url) and "Signature" in presigned
        direct = httpx.get(presigned)
        assert direct.status_code == 200 and direct.content == data
        assert direct.headers["content-disposition"].startswith("attachment;")
        byte_route = await client.get(f"/ga4gh/drs/v1/objects/{record['id']}/access/https/data")
        assert byte_route.status_code == 302 and byte_route.headers["location"].startswith(moto_own.url)
        followed = httpx.get(byte_route.headers["location"], headers={"Range": "bytes=10-19"})
        assert followed.status_code == 206 and followed.content == data[10:20]
    await store.close()


async def test_store_outage_gives_503_records_nothing_and_recovers_without_restart(
    s3_client: httpx.AsyncClient, moto_own: s3.Moto, db: Database
) -> None:
    record = (await s3_client.post("/api/v1/uploads?filename=a", content=b"before")).json()
    before = await row_count(db)
    moto_own.stop()
    for response in [
        await s3_client.post("/api/v1/uploads?filename=b", content=os.urandom(100_000)),
        await s3_client.post(UPLOAD, files={"file": ("c", b"c")}),
        await s3_client.get(f"/ga4gh/drs/v1/objects/{record['id']}/access/https/data"),
        await s3_client.get("/readyz"),
    ]:
        assert response.status_code == 503 and response.json()["status_code"] == 503
    assert (await s3_client.get("/readyz")).json()["storage"].startswith("down")
    assert await row_count(db) == before
    moto_own.start()  # a fresh, empty endpoint on the same address
    moto_own.make_bucket("files")
    assert (await s3_client.get("/readyz")).status_code == 200
    again = await s3_client.post("/api/v1/uploads?filename=b", content=b"after")
    assert again.status_code == 201
    assert (await s3_client.get(f"/ga4gh/drs/v1/objects/{again.json()['id']}/access/https/data")).content == b"after"


async def test_missing_bucket_gives_503_not_404(db: Database, moto_own: s3.Moto, settings: Settings) -> None:
    store = S3Storage(S3Options("no-such-bucket", "", moto_own.url, "test", "test"))
    async with await client_for(db, store, settings) as client:
        assert (await client.post("/api/v1/uploads?filename=a", content=b"x")).status_code == 503
        assert (await client.get("/readyz")).status_code == 503
        with pytest.raises(StorageUnavailable, match="does not exist"):
            await store.size("0" * 64)
    assert await row_count(db) == 0
    await store.close()


async def test_refused_credentials_give_503(db: Database, settings: Settings) -> None:
    with s3.moto({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as strict:
        store = S3Storage(S3Options("files", "", strict.url, "wrong", "keys"))
        async with await client_for(db, store, settings) as client:
            response = await client.post("/api/v1/uploads?filename=a", content=b"x")
            assert response.status_code == 503 and "traceback" not in response.text.lower()
            with pytest.raises(StorageUnavailable, match="refused"):
                await store.check()
        await store.close()
