"""Real Python DRS clients, each from its own virtualenv (tests/toolvenv.py), resolve objects of a live
`python server.py` and download their bytes: drs-cli over http, ga4gh-drs-client and `gen3 drs-pull` over https
with a certificate from a test CA. What each client needs from its caller is said where it is called."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import processes
import s3
import tls
import toolvenv
from conftest import ROOT

SECRET = "clients-secret"
NAME = "reads 2024 (ünïcode).fastq"
DATA = os.urandom(6 * 1024 * 1024 + 12345)
SHA256 = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tls.Certificates:
    return tls.make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["local", "s3-presigned"])
def server_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The server's storage: a local directory (bytes through our byte route), or S3 handing out presigned URLs."""
    env = {"SECRET": SECRET, "DATABASE_URL": "", "UFS_FSYNC": "false"}
    if request.param == "local":
        return {**env, "UFS_STORAGE": str(tmp_path / "ufs")}
    moto: s3.Moto = request.getfixturevalue("moto_server")
    bucket = f"clients-{uuid.uuid4().hex[:12]}"
    moto.make_bucket(bucket)
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return {**env, **aws, "AWS_ENDPOINT_URL": moto.url, "UFS_STORAGE": f"s3://{bucket}/ufs", "UFS_PRESIGN": "true"}


def upload(url: str, verify: ssl.SSLContext | bool = True) -> dict[str, Any]:
    headers = {"Authorization": f"Token {SECRET}"}
    response = httpx.post(
        f"{url}/api/v1/uploads", params={"filename": NAME}, content=DATA, headers=headers, verify=verify, timeout=60
    )
    assert response.status_code == 201, response.text
    return response.json()


def run(command: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # HOME in the test's folder: whatever a client caches or configures stays there.
    full_env = {**os.environ, "HOME": str(tmp_path), **(env or {})}
    return subprocess.run(command, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=180)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_drs_cli_resolves_metadata_and_access_urls_and_the_bytes_download(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    python = toolvenv.ensure("drs-cli") / "python"
    with processes.server(server_env) as server:
        record = upload(server.url)
        port = server.url.rsplit(":", 1)[1]
        # drs-cli drops the port of drs://host:port/id (then dials 443 or 80) and refuses hosts without a dot
        # (localhost), so it gets the host and the port apart, and the bare id.
        script = ROOT / "tests" / "tools" / "drs_cli_fetch.py"
        result = run([str(python), str(script), "http://127.0.0.1", port, record["id"], str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = json.loads(result.stdout)
    drs_object = fetched["object"]
    assert drs_object["id"] == record["id"] and drs_object["name"] == NAME and drs_object["size"] == len(DATA)
    assert drs_object["self_uri"] == record["url"]
    assert {c["type"]: c["checksum"] for c in drs_object["checksums"]} == {"sha-256": SHA256, "md5": record["md5"]}
    expected = ["presigned", "https"] if server_env.get("UFS_PRESIGN") else ["https"]
    assert list(fetched["access_urls"]) == expected
    for access_id in expected:
        assert sha256(tmp_path / access_id) == SHA256


def test_ga4gh_drs_client_downloads_over_https_and_passes_its_md5_check(
    server_env: dict[str, str], certificates: tls.Certificates, tmp_path: Path
) -> None:
    drs = toolvenv.ensure("ga4gh-drs-client") / "drs"
    out = tmp_path / "out"
    out.mkdir()
    with tls.server(server_env, certificates) as server:
        record = upload(server.url, ssl.create_default_context(cafile=str(certificates.ca)))
        # It only accepts https base URLs (no drs:// URI), verifies certificates through requests: the test CA
        # comes in REQUESTS_CA_BUNDLE, so `-s` (no verification) is not needed.
        command = [
            str(drs),
            "get",
            server.url,
            record["id"],
            "-d",
            "-v",
            "-o",
            str(out),
            "-m",
            str(tmp_path / "m.json"),
        ]
        result = run(command, tmp_path, certificates.client_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "m.json").read_text())["id"] == record["id"]
    report = (out / "drs_download_report.txt").read_text().splitlines()[-1].split("\t")
    assert report[3:6] == ["COMPLETED", "PASSED", "md5"] and report[6] == report[7] == record["md5"]
    # It writes <output dir>/<id>/<name>.
    assert sha256(out / record["id"] / NAME) == SHA256


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.unsigned"


def test_gen3_drs_pull_downloads_over_https(
    server_env: dict[str, str], certificates: tls.Certificates, tmp_path: Path
) -> None:
    gen3 = toolvenv.ensure("gen3") / "gen3"
    out = tmp_path / "out"
    with tls.server(server_env, certificates) as server:
        record = upload(server.url, ssl.create_default_context(cafile=str(certificates.ca)))
        host = server.url.removeprefix("https://")
        # gen3 insists on Gen3 credentials: any JWT with an expiry will do (it sends it as a bearer token, which
        # public objects ignore). It reads drs://host:port/id as a compact id to resolve through an outside
        # registry, so the host:port goes in --commons_url and --endpoint, and the bare id on the command line.
        token = unsigned_jwt({"iss": server.url, "exp": int(time.time()) + 3600})
        command = [str(gen3), "--auth", f"accesstoken:///{token}", "--endpoint", host, "--commons_url", host]
        command += ["drs-pull", "object", record["id"], "--output-dir", str(out), "--no-progress"]
        result = run(command, tmp_path, certificates.client_env())
    # Its exit code is 0 whatever happened: the file it writes is what counts.
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"succeeded": [record["id"]], "failed": []}
    assert sha256(out / NAME) == SHA256


def test_clients_refuse_the_server_without_the_test_ca(certificates: tls.Certificates, tmp_path: Path) -> None:
    """The https tests above prove trust, not luck: without the test CA the same client fails."""
    venv = toolvenv.ensure("ga4gh-drs-client")
    env = {"SECRET": SECRET, "DATABASE_URL": "", "UFS_STORAGE": str(tmp_path / "ufs")}
    with tls.server(env, certificates) as server:
        record = upload(server.url, ssl.create_default_context(cafile=str(certificates.ca)))
        result = run([str(venv / "drs"), "get", server.url, record["id"], "-d"], tmp_path)
        # The client words every failed request the same way; the requests library underneath says why.
        probe = run(
            [str(venv / "python"), "-c", "import requests, sys; requests.get(sys.argv[1])", server.url], tmp_path
        )
    assert result.returncode == 1 and "Could not find any service/host by specified URL" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in probe.stderr
