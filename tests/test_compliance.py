"""The GA4GH DRS compliance suite (PyPI drs-compliance-suite, which knows DRS 1.2.0 only) against a live
`python server.py` advertising DRS_VERSION=1.2.0. The suite runs from its own virtualenv (tests/toolvenv.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import processes
import s3
import toolvenv

SECRET = "compliance-secret"
FILES = {
    "notes.txt": b"plain text\n",
    "table.csv": b"a,b\n1,2\n",
    "empty.bin": b"",
    "données brutes (v2).fastq.gz": os.urandom(300_000),
}
# "none" against public objects (DRS_AUTH=public); "bearer" and "basic" against DRS_AUTH=token, where only
# the owner may read. Passport mode does not apply: drsbox validates no passports, and refuses them clearly.
AUTH_MODES = ["none", "bearer", "basic"]
OWNER_TOKEN = "compliance-owner-token"


@pytest.fixture(scope="module")
def suite() -> Path:
    return toolvenv.ensure("compliance") / "drs-compliance-suite"


@pytest.fixture(params=["memory+local", "postgres+s3-presigned"])
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {"SECRET": SECRET, "UFS_FSYNC": "false", "DRS_VERSION": "1.2.0", "DATABASE_URL": ""}
    if request.param == "memory+local":
        return {**env, "UFS_STORAGE": str(tmp_path / "ufs")}
    moto: s3.Moto = request.getfixturevalue("moto_server")
    bucket = f"compliance-{uuid.uuid4().hex[:12]}"
    moto.make_bucket(bucket)
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return {
        **env,
        **aws,
        "DATABASE_URL": request.getfixturevalue("pg_url"),
        "AWS_ENDPOINT_URL": moto.url,
        "UFS_STORAGE": f"s3://{bucket}/ufs",
        "UFS_PRESIGN": "true",
    }


def upload_files(url: str, headers: dict[str, str] | None = None) -> list[str]:
    headers = headers or {"Authorization": f"Token {SECRET}"}
    ids = []
    for name, data in FILES.items():
        response = httpx.post(f"{url}/api/v1/uploads", params={"filename": name}, content=data, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def auth(mode: str) -> dict[str, str]:
    """The suite's credentials for one auth mode: its `auth_type` and `auth_token` config fields."""
    if mode == "none":
        return {"auth_type": "none", "auth_token": ""}
    if mode == "bearer":
        return {"auth_type": "bearer", "auth_token": OWNER_TOKEN}
    if mode == "basic":
        return {"auth_type": "basic", "auth_token": base64.b64encode(f"owner:{OWNER_TOKEN}".encode()).decode()}
    raise ValueError(f"no credentials for auth mode {mode!r}")


def owner_headers(env: dict[str, str]) -> dict[str, str]:
    """Creates the owner whose token the suite presents (DEV_TOKEN in memory mode, create-token otherwise)."""
    if env["DATABASE_URL"]:
        command = [sys.executable, "-c", CREATE_OWNER]
        subprocess.run(command, cwd=processes.ROOT, env={**os.environ, **env}, check=True, capture_output=True)
    return {"Authorization": f"Bearer {OWNER_TOKEN}"}


# A fixed token for a user of the PostgreSQL database, through the same function create-token uses.
CREATE_OWNER = f"""
import asyncio, settings
from auth import issue_token
from database import UniqueViolation, open_database
async def main():
    db = await open_database(settings.load().database_url)
    try:
        await issue_token(db, "owner", "{OWNER_TOKEN}")
    except UniqueViolation:
        pass  # made by an earlier test on the same database
    await db.close()
asyncio.run(main())
"""


def run_suite(suite: Path, url: str, ids: list[str], mode: str, folder: Path) -> dict[str, Any]:
    """Runs the suite and returns its JSON report (its exit code is 0 whatever it finds)."""
    objects = [{"drs_id": id, **auth(mode), "is_bundle": False} for id in ids]
    config = {"service_info": auth(mode), "drs_object_info": objects, "drs_object_access": objects}
    (folder / "config.json").write_text(json.dumps(config))
    command = [str(suite), "--server_base_url", f"{url}/ga4gh/drs/v1", "--drs_version", "1.2.0"]
    command += ["--platform_name", "drsbox", "--platform_description", "drsbox under test"]
    command += ["--config_file", str(folder / "config.json"), "--report_path", str(folder / "report.json")]
    # It writes ./output and ./logs wherever it runs: keep them in the test's folder.
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((folder / "report.json").read_text())


def access_ids(url: str, id: str, headers: dict[str, str]) -> list[str]:
    drs = httpx.get(f"{url}/ga4gh/drs/v1/objects/{id}", headers=headers).json()
    return [method["access_id"] for method in drs["access_methods"]]


def problems(report: dict[str, Any]) -> list[str]:
    return [
        f"{test['test_name']}: {case['case_name']}: {case['status']}: {case.get('message')}"
        for phase in report["phases"]
        for test in phase["tests"]
        for case in test["cases"]
        if case["status"] != "PASS"
    ]


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_compliance_suite_passes_every_case(suite: Path, server_env: dict[str, str], mode: str, tmp_path: Path) -> None:
    env = {**server_env, "DEV_TOKEN": OWNER_TOKEN, "DRS_AUTH": "public" if mode == "none" else "token"}
    with processes.server(env) as server:
        headers = owner_headers(env)
        ids = upload_files(server.url, headers)
        report = run_suite(suite, server.url, ids, mode, tmp_path)
        methods = [access_ids(server.url, id, headers) for id in ids]
        if mode != "none":  # the suite really needed its credentials
            assert httpx.get(f"{server.url}/ga4gh/drs/v1/objects/{ids[0]}").status_code == 401
    assert problems(report) == []
    assert report["summary"]["failed"] == 0
    # Every case ran: service-info (3), each object (5), each of its access methods (3).
    assert report["summary"]["passed"] == 3 + 5 * len(ids) + 3 * sum(map(len, methods))
    assert methods == [["presigned", "https"] if server_env.get("UFS_PRESIGN") else ["https"]] * len(ids)


def test_compliance_suite_flags_the_1_5_service_info_shape(suite: Path, tmp_path: Path) -> None:
    """Why DRS_VERSION=1.2.0 exists: 1.5's service-info fields fail the suite's closed 1.2 schema (and this shows
    that the suite's report is read correctly). DRS 1.5 itself is validated against the bundled spec in test_drs.py."""
    env = {"SECRET": SECRET, "DATABASE_URL": "", "UFS_STORAGE": str(tmp_path / "ufs"), "DRS_VERSION": "1.5.0"}
    with processes.server(env) as server:
        report = run_suite(suite, server.url, upload_files(server.url)[:1], "none", tmp_path)
    assert report["summary"]["failed"] == 1
    [problem] = problems(report)
    assert "Service Info response schema validation: FAIL" in problem and "maxBulkRequestLength" in problem
