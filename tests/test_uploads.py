"""Uploads (raw and PWB multipart), listing and deleting, and what bad input leaves behind: nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from conftest import SECRET
from database import Database
from memdb import MemoryDatabase

pytestmark = pytest.mark.anyio

UPLOAD = "/api/v1/components/core/file/upload"


async def row_count(db: Database) -> int:
    if isinstance(db, MemoryDatabase):
        return len(db.user_uploads) + len(db.uploads)
    async with db.pool.acquire() as conn:
        return await conn.fetchval("SELECT (SELECT count(*) FROM user_upload) + (SELECT count(*) FROM upload)")


def stored(tmp_path: Path) -> tuple[list[str], list[str]]:
    """(blobs, temp files) under the test's local storage."""
    root = tmp_path / "ufs"
    blobs = sorted(p.name for p in root.iterdir() if p.is_file()) if root.exists() else []
    temps = sorted(os.listdir(root / ".tmp")) if (root / ".tmp").exists() else []
    return blobs, temps


async def assert_nothing_changed(db: Database, tmp_path: Path, before: tuple[int, list[str]]) -> None:
    blobs, temps = stored(tmp_path)
    assert (await row_count(db), blobs) == before
    assert temps == []


async def snapshot(db: Database, tmp_path: Path) -> tuple[int, list[str]]:
    return await row_count(db), stored(tmp_path)[0]


async def test_raw_upload_returns_the_record_and_stores_the_blob_under_its_sha256(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    response = await client.post("/api/v1/uploads", params={"filename": "réad me.txt"}, content=data)
    assert response.status_code == 201, response.text
    body = response.json()
    sha256 = hashlib.sha256(data).hexdigest()
    assert body["sha256"] == sha256 and body["md5"] == hashlib.md5(data).hexdigest()
    assert body["size"] == len(data) and body["filename"] == "réad me.txt"
    assert body["url"] == f"drs://drs.test:3000/{body['id']}"
    assert (tmp_path / "ufs" / sha256).read_bytes() == data
    assert stored(tmp_path)[1] == []


async def test_raw_upload_is_idempotent_for_same_user_bytes_and_name(client: httpx.AsyncClient, bob: dict) -> None:
    first = (await client.post("/api/v1/uploads?filename=a.txt", content=b"abc")).json()
    again = (await client.post("/api/v1/uploads?filename=a.txt", content=b"abc")).json()
    renamed = (await client.post("/api/v1/uploads?filename=b.txt", content=b"abc")).json()
    by_bob = (await client.post("/api/v1/uploads?filename=a.txt", content=b"abc", headers=bob)).json()
    assert again["id"] == first["id"]
    assert len({first["id"], renamed["id"], by_bob["id"]}) == 3


async def test_raw_upload_of_an_empty_body_stores_an_empty_file(client: httpx.AsyncClient) -> None:
    body = (await client.post("/api/v1/uploads?filename=empty", content=b"")).json()
    assert body["size"] == 0 and body["sha256"] == hashlib.sha256(b"").hexdigest()


async def test_multipart_upload_keys_records_by_field_with_several_files_each(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    files = [
        ("file", ("one.csv", b"a,b\n1,2\n", "text/csv")),
        ("file", ("two.bin", os.urandom(200_000), "application/octet-stream")),
        ("extra", ("three.txt", b"three", "text/plain")),
    ]
    response = await client.post(UPLOAD, files=files, data={"note": "plain fields are ignored"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body) == ["extra", "file"]
    assert [record["filename"] for record in body["file"]] == ["one.csv", "two.bin"]
    for (_, (name, data, _)), record in zip(files, body["file"] + body["extra"], strict=True):
        assert set(record) == {"url", "filename", "sha256", "size"} and record["filename"] == name
        assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
        assert record["url"].startswith("drs://drs.test:3000/")
        assert (tmp_path / "ufs" / record["sha256"]).read_bytes() == data


async def test_service_token_uploads_as_the_all_zero_user(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Token {SECRET}"}
    record = (await client.post(UPLOAD, files={"file": ("x.txt", b"x")}, headers=headers)).json()["file"][0]
    listing = (await client.get("/api/db/user/uploads", headers=headers)).json()
    assert [item["url"] for item in listing] == [record["url"]]
    assert listing[0]["user"] == "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token wrong"}, {"Authorization": "Basic eDp5"}],
)
async def test_missing_or_wrong_credentials_get_401_json(client: httpx.AsyncClient, headers: dict) -> None:
    client.headers.pop("Authorization")
    for method, url in [
        ("POST", "/api/v1/uploads?filename=a"),
        ("GET", "/api/v1/uploads"),
        ("POST", UPLOAD),
        ("GET", "/api/db/user/uploads"),
    ]:
        response = await client.request(method, url, headers=headers, content=b"x")
        assert response.status_code == 401
        assert response.json()["status_code"] == 401 and response.json()["msg"]


BAD_NAMES = ["", "../etc/passwd", "a/b.txt", "a\\b.txt", "nul\x00.txt", "bell\x07.txt", "line\nbreak", "x" * 1000, ".."]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_raw_upload_with_a_bad_filename_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tmp_path: Path, name: str
) -> None:
    before = await snapshot(db, tmp_path)
    response = await client.post("/api/v1/uploads", params={"filename": name}, content=b"data")
    assert response.status_code == 400 and response.json()["msg"]
    await assert_nothing_changed(db, tmp_path, before)


async def test_raw_upload_without_filename_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/uploads", content=b"data")
    assert response.status_code == 400 and "filename" in response.json()["msg"]


@pytest.mark.parametrize("name", [name for name in BAD_NAMES if name] + ["tab\tname"])
async def test_multipart_with_a_bad_filename_stores_none_of_its_files(
    client: httpx.AsyncClient, db: Database, tmp_path: Path, name: str
) -> None:
    before = await snapshot(db, tmp_path)
    # Written by hand: httpx would percent-encode control characters as browsers do.
    good = b'Content-Disposition: form-data; name="file"; filename="good.txt"\r\n\r\n' + os.urandom(100_000)
    bad = b'Content-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n\r\nbad'
    body = multipart_body("xyz", good, bad)
    response = await client.post(UPLOAD, content=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400, response.text
    await assert_nothing_changed(db, tmp_path, before)


def multipart_body(boundary: str, *parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary.encode() + b"--\r\n" if end else b"")


FILE_PART = b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello'
BAD_BODIES = {
    "no boundary": ("multipart/form-data", multipart_body("xyz", FILE_PART)),
    "not multipart": ("application/json", b"{}"),
    "wrong boundary": ("multipart/form-data; boundary=other", multipart_body("xyz", FILE_PART)),
    "truncated": ("multipart/form-data; boundary=xyz", multipart_body("xyz", FILE_PART, end=False)),
    "garbage": ("multipart/form-data; boundary=xyz", b"this is not multipart at all"),
    "no file part": (
        "multipart/form-data; boundary=xyz",
        multipart_body("xyz", b'Content-Disposition: form-data; name="a"\r\n\r\nb'),
    ),
    "no disposition": ("multipart/form-data; boundary=xyz", multipart_body("xyz", b"X-Other: 1\r\n\r\nhello")),
    "empty filename": (
        "multipart/form-data; boundary=xyz",
        multipart_body("xyz", b'Content-Disposition: form-data; name="file"; filename=""\r\n\r\nhi'),
    ),
    "nul filename": (
        "multipart/form-data; boundary=xyz",
        multipart_body("xyz", b'Content-Disposition: form-data; name="file"; filename="a\x00b"\r\n\r\n'),
    ),
    "latin-1 filename": (
        "multipart/form-data; boundary=xyz",
        multipart_body("xyz", b'Content-Disposition: form-data; name="file"; filename="\xe9"\r\n\r\n'),
    ),
    "empty body": ("multipart/form-data; boundary=xyz", b""),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_malformed_multipart_gets_400_json_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tmp_path: Path, case: str
) -> None:
    content_type, body = BAD_BODIES[case]
    before = await snapshot(db, tmp_path)
    response = await client.post(UPLOAD, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["status_code"] == 400
    await assert_nothing_changed(db, tmp_path, before)


async def test_upload_over_the_size_limit_gets_413_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    before = await snapshot(db, tmp_path)
    too_big = os.urandom(4 * 1024 * 1024 + 1)
    raw = await client.post("/api/v1/uploads?filename=big", content=too_big)
    assert raw.status_code == 413 and raw.json()["status_code"] == 413

    async def chunked() -> object:  # no Content-Length: the limit is enforced while streaming
        for offset in range(0, len(too_big), 65536):
            yield too_big[offset : offset + 65536]

    streamed = await client.post("/api/v1/uploads?filename=big", content=chunked())
    assert streamed.status_code == 413
    multipart = await client.post(UPLOAD, files=[("file", ("a", b"small")), ("file", ("b", too_big))])
    assert multipart.status_code == 413
    await assert_nothing_changed(db, tmp_path, before)


async def test_listing_pages_with_limit_and_cursor_and_whole_list_plainly(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.post(f"/api/v1/uploads?filename={n}.txt", content=str(n).encode())).json()["id"] for n in range(5)
    ]
    whole = (await client.get("/api/db/user/uploads")).json()
    assert [item["id"] for item in whole] == list(reversed(ids))
    assert set(whole[0]) == {"id", "user", "url", "sha256", "size", "filename", "created"}
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/uploads", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    pwb_page = await client.get("/api/db/user/uploads", params={"limit": "3"})
    assert len(pwb_page.json()) == 3 and pwb_page.headers["x-next-cursor"]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "x"}, {"limit": "100000"}, {"cursor": "%%%"}])
async def test_bad_paging_parameters_get_400(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get("/api/v1/uploads", params=params)
    assert response.status_code == 400 and response.json()["msg"]


async def test_users_see_and_delete_only_their_own_uploads(client: httpx.AsyncClient, bob: dict) -> None:
    mine = (await client.post("/api/v1/uploads?filename=mine", content=b"mine")).json()
    assert (await client.get(f"/api/v1/uploads/{mine['id']}")).json()["filename"] == "mine"
    assert (await client.get(f"/api/v1/uploads/{mine['id']}", headers=bob)).status_code == 404
    assert (await client.delete(f"/api/v1/uploads/{mine['id']}", headers=bob)).status_code == 404
    assert (await client.post(f"/api/db/user/uploads/{mine['id']}/delete", headers=bob)).status_code == 404
    assert (await client.get("/api/db/user/uploads", headers=bob)).json() == []
    assert (await client.get(f"/ga4gh/drs/v1/objects/{mine['id']}")).status_code == 200


async def test_delete_makes_the_drs_id_answer_404_and_keeps_the_blob(client: httpx.AsyncClient, tmp_path: Path) -> None:
    one = (await client.post("/api/v1/uploads?filename=one", content=b"bytes")).json()
    two = (await client.post(UPLOAD, files={"file": ("two", b"other")})).json()["file"][0]
    two_id = two["url"].rsplit("/", 1)[1]
    assert (await client.delete(f"/api/v1/uploads/{one['id']}")).status_code == 204
    deleted = await client.post(f"/api/db/user/uploads/{two_id}/delete")
    assert deleted.status_code == 200 and deleted.json()["id"] == two_id and deleted.json()["filename"] == "two"
    for id in (one["id"], two_id):
        assert (await client.get(f"/ga4gh/drs/v1/objects/{id}")).status_code == 404
        assert (await client.get(f"/ga4gh/drs/v1/objects/{id}/access/https/data")).status_code == 404
    assert (await client.delete(f"/api/v1/uploads/{one['id']}")).status_code == 404
    assert (tmp_path / "ufs" / one["sha256"]).exists()  # garbage collection comes with the workers


@pytest.mark.parametrize("id", ["not-a-uuid", "00000000-0000-0000-0000-00000000000g"])
async def test_unknown_upload_ids_get_404(client: httpx.AsyncClient, id: str) -> None:
    assert (await client.get(f"/api/v1/uploads/{id}")).status_code == 404
    assert (await client.delete(f"/api/v1/uploads/{id}")).status_code == 404


async def test_pwb_download_serves_own_drs_links_only(client: httpx.AsyncClient) -> None:
    record = (await client.post(UPLOAD, files={"file": ("d.txt", b"download me")})).json()["file"][0]
    response = await client.post("/api/v1/components/core/file/download", json={"url": record["url"]})
    assert response.status_code == 200 and response.content == b"download me"
    for url in [
        "drs://elsewhere.org/" + record["url"].rsplit("/", 1)[1],
        "http://127.0.0.1/",
        "file:///etc/passwd",
        "storage://" + record["sha256"],
    ]:
        refused = await client.post("/api/v1/components/core/file/download", json={"url": url})
        assert refused.status_code == 400, url
    missing = await client.post("/api/v1/components/core/file/download", json={"url": "drs://drs.test:3000/nope"})
    assert missing.status_code == 404
    for body in [b"{not json", b"[1]", b'{"url": 3}', b""]:
        bad = await client.post("/api/v1/components/core/file/download", content=body)
        assert bad.status_code == 400 and bad.json()["status_code"] == 400


async def test_wrong_methods_and_unknown_paths_get_json_errors(client: httpx.AsyncClient) -> None:
    wrong = await client.get(UPLOAD)
    assert wrong.status_code == 405 and wrong.json() == {"msg": "Method Not Allowed", "status_code": 405}
    assert "POST" in wrong.headers["allow"]
    unknown = await client.get("/api/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 404
