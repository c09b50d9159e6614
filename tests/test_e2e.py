"""End to end: `python server.py` as a real process, spoken to over HTTP, on both database backends."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

import postgres
import processes
import s3
from conftest import ROOT


@pytest.fixture(params=["memory+local", "postgres+local", "postgres+s3"])
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings for a server process: its database and its storage."""
    database, store = request.param.split("+")
    env = {"DATABASE_URL": request.getfixturevalue("pg_url") if database == "postgres" else ""}
    if store == "local":
        return {**env, "UFS_STORAGE": str(tmp_path / "ufs")}
    moto: s3.Moto = request.getfixturevalue("moto_server")
    bucket = f"e2e-{uuid.uuid4().hex[:12]}"
    moto.make_bucket(bucket)
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return {**env, **aws, "AWS_ENDPOINT_URL": moto.url, "UFS_STORAGE": f"s3://{bucket}/ufs"}


def token_for(env: dict[str, str]) -> str:
    """A bearer token: the fixed DEV_TOKEN in memory mode, `server.py create-token` with PostgreSQL."""
    if not env["DATABASE_URL"]:
        return env["DEV_TOKEN"]
    result = subprocess.run(
        [sys.executable, "server.py", "create-token", "e2e-user"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_upload_metadata_ranged_download_and_delete_over_http(server_env: dict, tmp_path: Path) -> None:
    env = {**server_env, "DEV_TOKEN": "e2e-dev-token", "PUBLIC_URL": ""}
    data = os.urandom(5 * 1024 * 1024 + 123)
    with processes.server(env) as server:
        url = server.url
        port = url.rsplit(":", 1)[1]
        headers = {"Authorization": f"Bearer {token_for(env)}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            assert client.get("/readyz").json()["status"] == "ok"
            record = client.post("/api/v1/uploads", params={"filename": "big.bin"}, content=data).json()
            assert record["sha256"] == hashlib.sha256(data).hexdigest()
            assert record["url"] == f"drs://localhost:{port}/{record['id']}"

            multipart = client.post("/api/v1/components/core/file/upload", files={"file": ("m.txt", b"m")}).json()
            assert multipart["file"][0]["filename"] == "m.txt"

            drs = httpx.get(f"{url}/ga4gh/drs/v1/objects/{record['id']}").json()
            assert drs["size"] == len(data) and drs["self_uri"] == record["url"]
            access = drs["access_methods"][0]["access_url"]["url"]
            assert access == f"http://localhost:{port}/ga4gh/drs/v1/objects/{record['id']}/access/https/data"

            data_url = f"{url}/ga4gh/drs/v1/objects/{record['id']}/access/https/data"
            ranged = httpx.get(data_url, headers={"Range": "bytes=1048576-2097151"})
            assert ranged.status_code == 206 and ranged.content == data[1048576:2097152]
            whole = httpx.get(data_url)
            assert hashlib.sha256(whole.content).hexdigest() == record["sha256"]

            assert client.delete(f"/api/v1/uploads/{record['id']}").status_code == 204
            assert httpx.get(f"{url}/ga4gh/drs/v1/objects/{record['id']}").status_code == 404
            assert httpx.get(data_url).status_code == 404
    if env["UFS_STORAGE"].startswith("/"):
        assert sorted(os.listdir(tmp_path / "ufs" / ".tmp")) == []


def test_uvicorn_serves_server_app_with_memory_defaults(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "UFS_STORAGE": str(tmp_path / "ufs"), "DEV_TOKEN": "t"}
    command = [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", "{port}"]
    with processes.server(env, command) as server:
        url = server.url
        assert httpx.get(f"{url}/readyz").json() == {"status": "ok", "database": "ok", "storage": "ok"}
        response = httpx.post(f"{url}/api/v1/uploads?filename=a", content=b"a", headers={"Authorization": "Bearer t"})
        assert response.status_code == 201


def test_memory_mode_prints_a_working_development_token(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "UFS_STORAGE": str(tmp_path / "ufs"), "DEV_TOKEN": ""}
    with processes.server(env) as server:
        url = server.url
        line = next(line for line in server.log.read_text().splitlines() if "development token" in line)
        token = line.rsplit("Bearer ", 1)[1].strip()
        response = httpx.get(f"{url}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def test_readyz_and_requests_report_a_database_that_went_away_and_recover(tmp_path: Path) -> None:
    with postgres.cluster() as pg:
        env = {"DATABASE_URL": pg.url(), "UFS_STORAGE": str(tmp_path / "ufs")}
        with processes.server(env) as server:
            url = server.url
            assert httpx.get(f"{url}/readyz").status_code == 200
            pg.stop()
            response = httpx.get(f"{url}/readyz", timeout=20)
            assert response.status_code == 503
            assert response.json()["database"].startswith("down") and response.json()["storage"] == "ok"
            lookup = httpx.get(f"{url}/ga4gh/drs/v1/objects/00000000-0000-4000-8000-000000000000", timeout=20)
            assert lookup.status_code == 503 and lookup.json()["status_code"] == 503
            pg.start()
            assert httpx.get(f"{url}/readyz", timeout=20).status_code == 200
            assert httpx.get(f"{url}/ga4gh/drs/v1/objects/00000000-0000-4000-8000-000000000000").status_code == 404


def send_partial(url: str, path: str, headers: dict[str, str], body: bytes, declared: int) -> None:
    """Sends a request whose body stops short of its Content-Length, then hangs up."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        sock.sendall(head.encode() + body)
        time.sleep(0.3)  # let the server start streaming the body to a temp file


@pytest.mark.parametrize("route", ["raw", "multipart"])
def test_client_that_disconnects_mid_upload_leaves_nothing_behind(route: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "DEV_TOKEN": "t", "UFS_STORAGE": str(tmp_path / "ufs")}
    auth = {"Authorization": "Bearer t"}
    with processes.server(env) as server:
        if route == "raw":
            send_partial(server.url, "/api/v1/uploads?filename=cut", auth, os.urandom(3_000_000), 10_000_000)
        else:
            head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="cut"\r\n\r\n'
            headers = {**auth, "Content-Type": "multipart/form-data; boundary=b"}
            send_partial(
                server.url, "/api/v1/components/core/file/upload", headers, head + os.urandom(3_000_000), 10_000_000
            )
        deadline = time.monotonic() + 10
        while os.listdir(tmp_path / "ufs" / ".tmp") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(tmp_path / "ufs" / ".tmp") == []
        assert [name for name in os.listdir(tmp_path / "ufs") if name != ".tmp"] == []
        assert httpx.get(f"{server.url}/api/v1/uploads", headers=auth).json()["items"] == []
        assert "Traceback" not in server.log.read_text()


def test_memory_mode_runs_jobs_in_process(tmp_path: Path) -> None:
    from origin import origin

    with origin("127.0.0.2", {"a.txt": b"imported in-process"}) as source:
        env = {
            "DATABASE_URL": "",
            "DEV_TOKEN": "t",
            "UFS_STORAGE": str(tmp_path / "ufs"),
            "IMPORT_ALLOW": "127.0.0.2",
            "JOB_POLL": "0.2",
        }
        with processes.server(env) as server:
            auth = {"Authorization": "Bearer t"}
            job = httpx.post(f"{server.url}/api/v1/imports", json={"url": f"{source.url}/files/a.txt"}, headers=auth)
            assert job.status_code == 202
            deadline = time.monotonic() + 20
            while (state := httpx.get(f"{server.url}/api/v1/jobs/{job.json()['id']}", headers=auth).json())[
                "state"
            ] not in ("done", "failed") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert state["state"] == "done", state
            data = httpx.get(f"{server.url}/ga4gh/drs/v1/objects/{state['result']['id']}/access/https/data")
            assert data.content == b"imported in-process"
