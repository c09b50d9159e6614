"""SSL_CERTFILE/SSL_KEYFILE: `python server.py` serving https itself (DRS clients that only speak https)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import tls
from conftest import ROOT
from settings import load


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tls.Certificates:
    return tls.make_certificates(tmp_path_factory.mktemp("tls"))


def test_a_certificate_makes_the_default_public_url_https(certificates: tls.Certificates, tmp_path: Path) -> None:
    env = {"PORT": "8443", "SSL_CERTFILE": str(certificates.cert), "SSL_KEYFILE": str(certificates.key)}
    settings = load(env, env_file=str(tmp_path / "none"))
    assert settings.public_url == "https://localhost:8443" and settings.ssl_certfile == str(certificates.cert)
    assert load({**env, "PUBLIC_URL": "https://drs.example.org"}, env_file=str(tmp_path / "none")).drs_host == (
        "drs.example.org"
    )
    combined = tmp_path / "combined.pem"
    combined.write_bytes(certificates.cert.read_bytes() + certificates.key.read_bytes())
    assert load({"SSL_CERTFILE": str(combined)}, env_file=str(tmp_path / "none")).ssl_keyfile is None


@pytest.mark.parametrize("case", ["key without certificate", "missing file", "not a certificate", "wrong key"])
def test_bad_tls_settings_stop_start_up_with_a_message(
    case: str, certificates: tls.Certificates, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    other = tls.make_certificates(tmp_path / "other")
    env = {
        "key without certificate": {"SSL_KEYFILE": str(certificates.key)},
        "missing file": {"SSL_CERTFILE": str(tmp_path / "missing.pem"), "SSL_KEYFILE": str(certificates.key)},
        "not a certificate": {"SSL_CERTFILE": str(garbage), "SSL_KEYFILE": str(certificates.key)},
        "wrong key": {"SSL_CERTFILE": str(certificates.cert), "SSL_KEYFILE": str(other.key)},
    }[case]
    with pytest.raises(ValueError, match="SSL_"):
        load(env, env_file=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, "server.py"], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and result.stderr.startswith("drsbox: SSL_") and "Traceback" not in result.stderr


def test_server_over_https_links_https_access_urls_that_serve_ranges(
    certificates: tls.Certificates, tmp_path: Path
) -> None:
    env = {"SECRET": "s", "DATABASE_URL": "", "UFS_STORAGE": str(tmp_path / "ufs")}
    data = os.urandom(100_000)
    with tls.server(env, certificates) as server:
        port = server.url.rsplit(":", 1)[1]
        with httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=str(certificates.ca))
        ) as client:
            record = client.post("/api/v1/uploads?filename=a.bin", content=data, headers={"Authorization": "Token s"})
            id = record.json()["id"]
            drs = client.get(f"/ga4gh/drs/v1/objects/{id}").json()
            access = drs["access_methods"][0]["access_url"]["url"]
            assert access == f"https://localhost:{port}/ga4gh/drs/v1/objects/{id}/access/https/data"
            assert client.get(access, headers={"Range": "bytes=10-19"}).content == data[10:20]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/healthz")  # the default trust store does not know the test CA
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")  # no plain http on the TLS port
