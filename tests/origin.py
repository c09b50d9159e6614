"""A small real HTTP server to import from: files, names, redirects, errors, oversize and slow bodies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from postgres import free_port


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        files: dict[str, bytes] = self.server.files
        path = self.path.split("?")[0]
        if path.startswith("/files/") and path[7:] in files:
            self.send(200, files[path[7:]])
        elif path == "/named":
            self.send(200, b"named", {"Content-Disposition": 'attachment; filename="report.csv"'})
        elif path.startswith("/redirect/"):
            self.send(302, headers={"Location": path.removeprefix("/redirect/").replace("~", "/")})
        elif path.startswith("/status/"):
            self.send(int(path[8:]), b"error")
        elif path == "/declared-big":
            self.send(200, b"x", {"Content-Length": str(10**12)})
        elif path == "/endless":
            self.send_response(200)
            self.end_headers()  # no length: HTTP/1.0 style, ends when the connection closes
            try:
                for _ in range(10_000):
                    self.wfile.write(b"z" * 65536)
            except OSError:
                pass
        elif path == "/slow":  # 1 MB in 1000 pieces, `?ms=` apart (50 ms by default)
            delay = int(self.path.partition("?ms=")[2] or 50) / 1000
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"s" * 1000)
                    self.wfile.flush()
                    time.sleep(delay)
            except OSError:
                pass
        else:
            self.send(404, b"not found")


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[Any]:
    """Runs a configured server in a thread until the block ends."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def origin(host: str = "127.0.0.2", files: dict[str, bytes] | None = None) -> AbstractContextManager[Any]:
    server: Any = ThreadingHTTPServer((host, free_port()), Handler)
    server.files = files or {}
    server.url = f"http://{host}:{server.server_address[1]}"
    return serving(server)
