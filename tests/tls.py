"""A throwaway certificate authority and `python server.py` over https, for clients that only speak https."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from postgres import free_port
from processes import ROOT, Server


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what clients trust (REQUESTS_CA_BUNDLE, SSL_CERT_FILE)
    cert: Path  # the server's certificate, for localhost and 127.0.0.1
    key: Path

    def client_env(self) -> dict[str, str]:
        """Environment that makes requests-, urllib- and httpx-based clients trust the test CA."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca), "SSL_CERT_FILE": str(self.ca), "CURL_CA_BUNDLE": str(self.ca)}


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_certificates(folder: Path) -> Certificates:
    """A CA and a server certificate signed by it, shaped as strict verifiers (OpenSSL 3, X509_STRICT) demand."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("drsbox test CA"))
        .issuer_name(name("drsbox test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    certificates = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    certificates.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certificates.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certificates.key.write_bytes(pem_key(key))
    certificates.key.chmod(0o600)
    return certificates


def wait_until_up(url: str, process: subprocess.Popen, ca: Path, timeout: float = 20.0) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=context).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


@contextmanager
def server(env: dict[str, str], certificates: Certificates) -> Iterator[Server]:
    """`python server.py` serving https with `certificates` on a free port: processes.server's twin for TLS."""
    port = free_port()
    full_env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    full_env |= {"SSL_CERTFILE": str(certificates.cert), "SSL_KEYFILE": str(certificates.key)}
    log = Path(tempfile.mkstemp(prefix="drsbox-server-", suffix=".log")[1])
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "server.py"], cwd=ROOT, env=full_env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(f"https://localhost:{port}", process, certificates.ca)
        yield Server(f"https://localhost:{port}", process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)
