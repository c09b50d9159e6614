"""The Python client (client/) end to end: a real `python server.py`, PWB's helpers called in-process, the command
line as a subprocess, a second DRS server of our own making, and the SSRF rules the client shares with URL imports."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import processes
from client import DrsboxError, Refused, file_as_path, file_as_stream, file_from_url, file_read_stream, upsert_file
from conftest import ROOT
from origin import serving

SECRET = "client-test-secret"
TOKEN = "client-test-token"
BIG = 5 * 1024 * 1024 + 7


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Server]:
    env = {
        "DATABASE_URL": "",
        "DEV_TOKEN": TOKEN,
        "SECRET": SECRET,
        "UFS_STORAGE": str(tmp_path_factory.mktemp("ufs")),
        "PUBLIC_URL": "http://localhost:{port}",  # by name, as a component's PUBLIC_URL usually is
        "IMPORT_ALLOW": "",
    }
    with processes.server(env) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def public_url(server: processes.Server) -> Iterator[str]:
    """The client's environment, as a PWB component has it: PUBLIC_URL and the service secret."""
    url = server.url.replace("127.0.0.1", "localhost")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBLIC_URL", url)
        patch.setenv("SECRET", SECRET)
        for name in ("NEXTAUTH_SECRET", "DRSBOX_TOKEN", "IMPORT_ALLOW"):
            patch.delenv(name, raising=False)
        yield url


@pytest.fixture(scope="module")
def uploaded(public_url: str) -> tuple[dict[str, Any], bytes, str]:
    """A multi-MiB file made with upsert_file: its record, its bytes and the temporary path it was written at."""
    data = os.urandom(BIG)
    with upsert_file(".bin", description="made by a test") as record:
        assert record["url"] == "" and os.path.exists(record.file)
        Path(record.file).write_bytes(data)
    return dict(record), data, record.file


def test_upsert_file_uploads_the_written_bytes_and_deletes_the_temp_file(
    uploaded: tuple[dict[str, Any], bytes, str], public_url: str
) -> None:
    record, data, temp = uploaded
    assert not os.path.exists(temp)
    host = public_url.removeprefix("http://")
    assert record["url"].startswith(f"drs://{host}/")
    assert record["sha256"] == sha256(data) and record["size"] == len(data)
    assert record["filename"] == os.path.basename(temp) and record["description"] == "made by a test"
    obj = httpx.get(f"{public_url}/ga4gh/drs/v1/objects/{record['url'].rsplit('/', 1)[1]}").json()
    assert obj["size"] == len(data) and {"type": "sha-256", "checksum": sha256(data)} in obj["checksums"]


def test_upsert_file_uploads_nothing_when_the_block_fails_and_reports_server_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(RuntimeError), upsert_file(".txt") as record:
        raise RuntimeError("the component failed")
    assert not os.path.exists(record.file) and record["url"] == ""

    monkeypatch.delenv("SECRET")
    monkeypatch.setenv("NEXTAUTH_SECRET", "not-the-secret")  # PWB's name for it is read too
    with pytest.raises(DrsboxError) as refused, upsert_file() as record:
        Path(record.file).write_text("x")
    assert refused.value.status == 401 and refused.value.msg == "invalid service token"
    assert not os.path.exists(record.file)

    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    with upsert_file(".txt") as record:
        Path(record.file).write_text("héllo\nwörld\n", encoding="utf-8")
    with file_as_stream(record, "r", encoding="utf-8") as text:
        assert text.readlines() == ["héllo\n", "wörld\n"]


def test_file_as_stream_read_stream_and_path_give_the_uploaded_bytes(
    uploaded: tuple[dict[str, Any], bytes, str],
) -> None:
    record, data, _ = uploaded
    with file_as_stream(record) as stream:
        digest = hashlib.sha256()
        while chunk := stream.read(1_000_003):
            digest.update(chunk)
    assert digest.hexdigest() == record["sha256"]
    with file_as_stream(record["url"], "rb") as stream:  # a bare URL works as well as a record
        assert stream.read(10) == data[:10] and stream.read(5) == data[10:15]

    chunks = list(file_read_stream(record, chunk_size=65536))
    assert max(map(len, chunks)) <= 65536 and sha256(b"".join(chunks)) == record["sha256"]

    with file_as_path(record) as path:
        assert os.path.basename(path) == record["filename"]  # the name survives, as with PWB's mount
        assert sha256(Path(path).read_bytes()) == record["sha256"]
    assert not os.path.exists(path)
    with file_as_path({"url": "file:///srv/data/x.csv", "filename": "x.csv"}) as path:
        assert path == "/srv/data/x.csv"


def test_file_from_url_reads_drs_metadata_and_hashes_http_bytes(
    uploaded: tuple[dict[str, Any], bytes, str], public_url: str
) -> None:
    record, data, _ = uploaded
    assert file_from_url(record["url"]) == {k: record[k] for k in ("url", "filename", "size", "sha256")}
    data_url = f"{public_url}/ga4gh/drs/v1/objects/{record['url'].rsplit('/', 1)[1]}/access/https/data"
    assert file_from_url(data_url) == {"url": data_url, "filename": "data", "size": len(data), "sha256": sha256(data)}


# --- another DRS server, on another loopback address: not ours, so under the SSRF rules ---


class OtherDrs(BaseHTTPRequestHandler):
    """One object, `obj`, whose bytes are reached only through `/access/a1` (no access_url), as some servers do."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        state = self.server
        state.paths.append(self.path)
        if self.path == "/ga4gh/drs/v1/objects/obj":
            self.send(200, json.dumps(state.object).encode(), "application/json")
        elif self.path == "/ga4gh/drs/v1/objects/obj/access/a1":
            self.send(200, json.dumps({"url": state.access_url}).encode(), "application/json")
        elif self.path == "/bytes":
            self.send(200, state.data, "application/octet-stream")
        else:
            self.send(404, b'{"msg": "no such thing", "status_code": 404}', "application/json")

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def other_drs(data: bytes, checksum: str | None, access_url: str | None = None) -> AbstractContextManager[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.2", 0), OtherDrs)
    server.url = f"http://127.0.0.2:{server.server_address[1]}"
    server.uri = f"drs://127.0.0.2:{server.server_address[1]}/obj"
    server.paths, server.data = [], data
    server.access_url = access_url or f"{server.url}/bytes"
    checksums = [{"type": "sha-256", "checksum": checksum}] if checksum else []
    access = [{"type": "https", "access_id": "a1"}]
    server.object = {"id": "obj", "name": "../remote.csv", "size": len(data), "checksums": checksums}
    server.object["access_methods"] = access
    return serving(server)


def test_another_drs_server_is_read_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"remote,bytes\n" * 1000
    with other_drs(data, sha256(data)) as other:
        with pytest.raises(Refused, match="not a public address"):
            file_from_url(other.uri)
        assert other.paths == []  # refused before any connection

        monkeypatch.setenv("IMPORT_ALLOW", "127.0.0.2")
        expected = {"url": other.uri, "filename": "../remote.csv", "size": len(data), "sha256": sha256(data)}
        assert file_from_url(other.uri) == expected
        assert other.paths == ["/ga4gh/drs/v1/objects/obj"]  # the checksum came from the object: no bytes read
        assert b"".join(file_read_stream(other.uri)) == data
        assert other.paths[-2:] == ["/ga4gh/drs/v1/objects/obj/access/a1", "/bytes"]
        with file_as_path(other.uri) as path:
            assert os.path.basename(path) == "remote.csv"  # a remote name never becomes a path
            assert Path(path).read_bytes() == data


def test_file_from_url_hashes_the_bytes_when_the_drs_object_has_no_sha256(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_ALLOW", "127.0.0.2")
    data = os.urandom(300_000)
    with other_drs(data, None) as other:
        assert file_from_url(other.uri)["sha256"] == sha256(data)
        assert other.paths[-1] == "/bytes"


def test_an_access_url_pointing_inside_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPORT_ALLOW", "127.0.0.2")
    with other_drs(b"x", None, access_url="http://169.254.169.254/latest/meta-data/") as other:
        with pytest.raises(Refused, match="169.254.169.254"), file_as_stream(other.uri):
            pass


@pytest.mark.parametrize(
    "url",
    [
        "drs://127.0.0.3:{port}/x",
        "http://127.0.0.3:{port}/x",
        "http://[::ffff:127.0.0.3]:{port}/x",  # IPv4-mapped IPv6 is unwrapped
        "drs://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "drs://127.0.0.1:{server_port}/x",  # our own server, but not as PUBLIC_URL names it
        "drs://localhost:{port}/x",  # PUBLIC_URL's host, another port
        "file:///etc/passwd",
        "ftp://127.0.0.3:{port}/x",
    ],
)
def test_urls_outside_the_rules_are_refused_before_any_connection(url: str, server: processes.Server) -> None:
    with socket.create_server(("127.0.0.3", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        url = url.format(port=port, server_port=server.url.rsplit(":", 1)[1])
        with pytest.raises(Refused):
            file_from_url(url)
        with pytest.raises(Refused), file_as_stream({"url": url}):
            pass
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked


def test_the_helpers_work_inside_a_running_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # netguard's checks run on a private event loop: a caller that is itself async must not trip over it.
    monkeypatch.setenv("IMPORT_ALLOW", "127.0.0.2")
    data = b"from async code"

    async def component() -> dict[str, Any]:
        with pytest.raises(Refused):
            file_from_url("drs://10.0.0.1/x")
        return file_from_url(other.uri)

    with other_drs(data, None) as other:
        assert asyncio.run(component())["sha256"] == sha256(data)


# --- the command line ---


def cli(*args: str, env: dict[str, str] | None = None, tty: bool = False) -> tuple[int, bytes, bytes]:
    """`python -m client ARGS`: exit code, stdout, stderr. With `tty`, stderr is an 80-column terminal (a pty)."""
    command = [sys.executable, "-m", "client", *args]
    full_env = {**os.environ, **(env or {})}
    if not tty:
        done = subprocess.run(command, cwd=ROOT, env=full_env, capture_output=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a fresh pty has no size
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child is gone and its end is closed
                return
            if not data:
                return
            seen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(command, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    finally:
        os.close(slave)
    reader.join(10)
    os.close(master)
    return done.returncode, done.stdout, bytes(seen)


def test_cli_transfers_show_progress_on_a_terminal_and_keep_stdout_clean(tmp_path: Path) -> None:
    big, small = os.urandom(3 * 1024 * 1024), b"small file\n"
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.txt").write_bytes(small)

    code, out, terminal = cli("upload", str(tmp_path / "big.bin"), str(tmp_path / "small.txt"), tty=True)
    assert code == 0, terminal
    urls = out.decode().splitlines()
    assert len(urls) == 2 and all(url.startswith("drs://localhost:") for url in urls)
    assert b"big.bin" in terminal and b"100%" in terminal

    code, out, terminal = cli("download", urls[0], "-o", str(tmp_path / "copy.bin"), tty=True)
    assert code == 0 and out.decode() == f"{tmp_path / 'copy.bin'}\n" and b"100%" in terminal
    assert (tmp_path / "copy.bin").read_bytes() == big

    code, out, err = cli("download", urls[0], "-o", "-")  # stderr is a pipe: no bar
    assert code == 0 and out == big and err == b""

    code, out, terminal = cli("upload", "-q", "--json", str(tmp_path / "small.txt"), tty=True)
    assert code == 0 and terminal == b""
    record = json.loads(out)
    assert record == {"url": record["url"], "filename": "small.txt", "sha256": sha256(small), "size": len(small)}

    code, out, _ = cli("download", urls[1], "-o", str(tmp_path))  # into a directory, under the object's name
    assert code == 0 and (tmp_path / "small.txt").read_bytes() == small


def test_cli_download_checks_the_sha256_of_another_drs_server(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    allow = {"IMPORT_ALLOW": "127.0.0.2"}
    with other_drs(data, sha256(b"other bytes")) as other:
        code, out, err = cli("download", other.uri, "-o", str(tmp_path / "bad.bin"), env=allow)
        assert code == 1 and out == b""
        assert err.decode().startswith("error: ") and "sha-256" in err.decode() and err.count(b"\n") == 1
        assert list(tmp_path.iterdir()) == []  # neither the file nor its .part
    with other_drs(data, sha256(data)) as other:
        code, out, err = cli("download", other.uri, "-o", str(tmp_path / "good.bin"), env=allow)
        assert code == 0, err
        assert (tmp_path / "good.bin").read_bytes() == data


def test_cli_ls_follows_pages_and_rm_deletes_by_id_or_uri(tmp_path: Path, public_url: str) -> None:
    user = {"DRSBOX_TOKEN": TOKEN}  # a user's own list, not the service identity's
    names = [f"f{i}.txt" for i in range(5)]
    for name in names:
        (tmp_path / name).write_text(name)
    code, out, err = cli("upload", *(str(tmp_path / name) for name in names), env=user)
    assert code == 0, err
    urls = out.decode().splitlines()

    code, out, _ = cli("ls", "--page-size", "2", env=user)
    listed = [line.split("\t") for line in out.decode().splitlines()]
    everything = httpx.get(f"{public_url}/api/v1/uploads", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert code == 0 and [row[0] for row in listed] == [item["url"] for item in everything["items"]]
    assert set(urls) <= {row[0] for row in listed} and len(listed) > 2
    assert {row[3] for row in listed if row[0] in urls} == set(names)

    code, _, err = cli("rm", urls[0].rsplit("/", 1)[1], urls[1], env=user)
    assert code == 0, err
    for url in urls[:2]:
        assert httpx.get(f"{public_url}/ga4gh/drs/v1/objects/{url.rsplit('/', 1)[1]}").status_code == 404
    code, out, _ = cli("ls", "--json", env=user)
    assert {json.loads(line)["url"] for line in out.decode().splitlines()} & set(urls) == set(urls[2:])


def test_cli_errors_are_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert cli("rm", unknown) == (1, b"", f"error: no upload {unknown} (HTTP 404)\n".encode())
    code, _, err = cli("ls", env={"DRSBOX_TOKEN": "wrong"})
    assert code == 1 and err == b"error: invalid bearer token (HTTP 401)\n"
    code, _, err = cli("download", "drs://10.0.0.1/x")
    assert code == 1 and err.startswith(b"error: refusing to fetch from 10.0.0.1") and err.count(b"\n") == 1
    code, _, err = cli("upload", str(tmp_path / "missing.txt"))
    assert code == 1 and err.startswith(b"error: ") and b"No such file" in err and err.count(b"\n") == 1
    code, _, err = cli("ls", "--url", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert code == 1 and err.startswith(b"error: cannot reach") and b"Traceback" not in err
