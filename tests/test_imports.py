"""URL imports (http, https, drs) and every SSRF refusal of DESIGN.md §7, against real local servers."""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import processes
from auth import issue_token
from database import Database
from netguard import Allowlist, Guard, Refused
from origin import origin
from server import create_app
from settings import Settings
from storage import LocalStorage
from test_jobs import FAST, run_worker
from test_uploads import row_count, stored

pytestmark = pytest.mark.anyio

FETCH = "/api/v1/components/core/file/fetch"
DATA = os.urandom(300_000)


@pytest.fixture
def source() -> Iterator[Any]:
    """An origin server on 127.0.0.2, which the app's IMPORT_ALLOW lets in (loopback is refused otherwise)."""
    with origin("127.0.0.2", {"data.bin": DATA, "small.txt": b"small"}) as server:
        yield server


@pytest.fixture
async def importer(db: Database, tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings = dataclasses.replace(settings, import_allow="127.0.0.2", import_timeout=3)
    app = create_app(settings, db=db, storage=LocalStorage(tmp_path / "ufs"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as client:
        client.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
        yield client


async def test_fetch_copies_the_file_and_answers_like_an_upload(
    importer: httpx.AsyncClient, source: Any, tmp_path: Path
) -> None:
    response = await importer.post(FETCH, json={"url": f"{source.url}/files/data.bin"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert set(record) == {"url", "filename", "sha256", "size"} and record["filename"] == "data.bin"
    assert record["sha256"] == hashlib.sha256(DATA).hexdigest() and record["size"] == len(DATA)
    assert (tmp_path / "ufs" / record["sha256"]).read_bytes() == DATA
    named = (await importer.post(FETCH, json={"url": f"{source.url}/named"})).json()
    assert named["filename"] == "report.csv"
    renamed = (await importer.post(FETCH, json={"url": f"{source.url}/named", "filename": "mine.csv"})).json()
    assert renamed["filename"] == "mine.csv"
    followed = await importer.post(FETCH, json={"url": f"{source.url}/redirect/~files~small.txt"})
    assert followed.json()["size"] == 5


REFUSED = [
    "http://127.0.0.1/x",
    "http://localhost/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:7f00:1]/x",
    "http://10.1.2.3/x",
    "http://172.16.0.1/x",
    "http://192.168.1.1/x",
    "http://100.64.0.1/x",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/x",
    "http://[fd00::1]/x",
    "http://224.0.0.1/x",
    "http://240.0.0.1/x",
    "http://0.0.0.0/x",
    "http://[2002:7f00:1::]/x",
    "file:///etc/passwd",
    "storage://" + "0" * 64,
    "ftp://example.org/x",
    "gopher://example.org/x",
    "data:text/plain,hello",
    "//no-scheme/x",
    "drs://localhost/abc",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_imports_from_forbidden_places_are_refused_and_change_nothing(
    importer: httpx.AsyncClient, db: Database, tmp_path: Path, url: str
) -> None:
    before = await row_count(db)
    response = await importer.post(FETCH, json={"url": url})
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith("import refused")
    assert await row_count(db) == before and stored(tmp_path) == ([], [])


async def test_redirect_to_a_forbidden_address_is_refused(importer: httpx.AsyncClient, source: Any) -> None:
    port = source.url.rsplit(":", 1)[1]
    for target in [f"http:~~127.0.0.1:{port}~files~data.bin", "http:~~169.254.169.254~x", "file:~~~etc~passwd"]:
        response = await importer.post(FETCH, json={"url": f"{source.url}/redirect/{target}"})
        assert response.status_code == 400, (target, response.text)


async def test_dns_answers_are_checked_all_of_them() -> None:
    async def answers(host: str, port: int) -> list[str]:
        return {"mixed.test": ["93.184.216.34", "10.0.0.5"], "private.test": ["192.168.0.9"]}[host]

    guard = Guard(Allowlist(), resolver=answers)
    for host in ("mixed.test", "private.test"):
        with pytest.raises(Refused, match="not a public address"):
            await guard.pin(f"http://{host}/file")
    target, headers, extensions = await Guard(Allowlist(), resolver=lambda h, p: _public()).pin("https://a.test/x")
    assert (target.host, headers, extensions) == ("93.184.216.34", {"Host": "a.test"}, {"sni_hostname": "a.test"})


async def _public() -> list[str]:
    return ["93.184.216.34"]


def test_allowlist_opens_only_what_it_names() -> None:
    allow = Allowlist.parse("10.0.0.0/8, files.lan ,127.0.0.2")
    guard_checks = [("10.9.9.9", True), ("11.0.0.1", False), ("127.0.0.2", True), ("127.0.0.1", False)]
    for address, allowed in guard_checks:
        assert allow.allows("host", ipaddress.ip_address(address)) is allowed
    assert allow.allows("FILES.lan.", ipaddress.ip_address("192.168.1.1"))


@pytest.mark.parametrize(
    ("path", "status"), [("/status/404", 502), ("/status/500", 502), ("/declared-big", 413), ("/endless", 413)]
)
async def test_failing_and_oversize_sources_record_nothing(
    importer: httpx.AsyncClient, source: Any, db: Database, tmp_path: Path, path: str, status: int
) -> None:
    before = await row_count(db)
    response = await importer.post(FETCH, json={"url": f"{source.url}{path}"})
    assert response.status_code == status, response.text
    assert await row_count(db) == before
    assert stored(tmp_path) == ([], [])


async def test_slow_source_hits_the_time_cap(importer: httpx.AsyncClient, source: Any, tmp_path: Path) -> None:
    response = await importer.post(FETCH, json={"url": f"{source.url}/slow"})  # 50 s of data, a 3 s cap
    assert response.status_code == 502 and "longer than" in response.json()["msg"]
    assert stored(tmp_path) == ([], [])


@pytest.mark.parametrize("body", [b"{}", b'{"url": 5}', b"nope", b'{"url": "x", "filename": 3}'])
async def test_bad_fetch_bodies_get_400(importer: httpx.AsyncClient, body: bytes) -> None:
    assert (await importer.post(FETCH, content=body)).status_code == 400


def remote_drs(tmp_path: Path, public_host: str) -> Any:
    """Another real drsbox on 127.0.0.3 whose links point at `public_host`."""
    return processes.server(
        {
            "HOST": "127.0.0.3",
            "DATABASE_URL": "",
            "DEV_TOKEN": "remote",
            "UFS_STORAGE": str(tmp_path / "remote"),
            "PUBLIC_URL": f"http://{public_host}:{{port}}",
        }
    )


async def test_drs_import_resolves_the_object_and_checks_its_sha256(
    db: Database, tmp_path: Path, settings: Settings
) -> None:
    data = os.urandom(2_000_000)
    with remote_drs(tmp_path, "127.0.0.3") as remote:
        record = httpx.post(
            f"{remote.url}/api/v1/uploads?filename=remote.bin", content=data, headers={"Authorization": "Bearer remote"}
        ).json()
        port = remote.url.rsplit(":", 1)[1]
        settings = dataclasses.replace(settings, import_allow="127.0.0.3")
        app = create_app(settings, db=db, storage=LocalStorage(tmp_path / "ufs"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as c:
            c.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
            imported = (await c.post(FETCH, json={"url": f"drs://127.0.0.3:{port}/{record['id']}"})).json()
            assert imported["filename"] == "remote.bin" and imported["sha256"] == record["sha256"]
            assert (tmp_path / "ufs" / record["sha256"]).read_bytes() == data
            missing = await c.post(FETCH, json={"url": f"drs://127.0.0.3:{port}/00000000-0000-4000-8000-0000000000aa"})
            assert missing.status_code == 502


async def test_drs_access_urls_are_checked_too(db: Database, tmp_path: Path, settings: Settings) -> None:
    with remote_drs(tmp_path, "127.0.0.1") as remote:  # its access URLs name a loopback address
        record = httpx.post(
            f"{remote.url}/api/v1/uploads?filename=x", content=b"x", headers={"Authorization": "Bearer remote"}
        ).json()
        port = remote.url.rsplit(":", 1)[1]
        settings = dataclasses.replace(settings, import_allow="127.0.0.3")
        app = create_app(settings, db=db, storage=LocalStorage(tmp_path / "ufs"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as c:
            c.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
            response = await c.post(FETCH, json={"url": f"drs://127.0.0.3:{port}/{record['id']}"})
            assert response.status_code == 400 and "127.0.0.1" in response.json()["msg"]


async def test_reference_mode_records_the_url_and_redirects_to_it(
    db: Database, tmp_path: Path, settings: Settings, source: Any
) -> None:
    settings = dataclasses.replace(settings, import_allow="127.0.0.2", import_mode="reference")
    app = create_app(settings, db=db, storage=LocalStorage(tmp_path / "ufs"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://drs.test:3000") as c:
        c.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
        url = f"{source.url}/files/data.bin"
        record = (await c.post(FETCH, json={"url": url})).json()
        assert record["sha256"] == hashlib.sha256(DATA).hexdigest()  # hashed while streaming, not kept
        assert stored(tmp_path)[0] == []
        id = record["url"].rsplit("/", 1)[1]
        response = await c.get(f"/ga4gh/drs/v1/objects/{id}/access/https/data")
        assert response.status_code == 302 and response.headers["location"] == url


async def test_queued_import_is_done_by_a_worker_and_reports_progress(
    importer: httpx.AsyncClient, source: Any, db: Database
) -> None:
    queued = await importer.post("/api/v1/imports", json={"url": f"{source.url}/files/data.bin"})
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    job_url = queued.headers["location"]
    refused = (await importer.post("/api/v1/imports", json={"url": "http://127.0.0.1/x"})).json()

    async def finished() -> bool:
        states = [
            (await importer.get(f"/api/v1/jobs/{id}")).json()["state"] for id in (queued.json()["id"], refused["id"])
        ]
        return all(state in ("done", "failed") for state in states)

    settings = dataclasses.replace(FAST, import_allow="127.0.0.2")
    await run_worker(db, settings, finished)
    job = (await importer.get(job_url)).json()
    assert job["state"] == "done" and job["progress"] in (0, len(DATA))
    assert job["result"]["sha256"] == hashlib.sha256(DATA).hexdigest()
    failed = (await importer.get(f"/api/v1/jobs/{refused['id']}")).json()
    assert failed["state"] == "failed" and failed["attempts"] == 1 and "not a public address" in failed["error"]
    assert (await importer.get("/api/v1/jobs/00000000-0000-4000-8000-000000000000")).status_code == 404
