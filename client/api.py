"""The configured drsbox's own API (PUBLIC_URL, with a token or the service secret): upload, list, delete; and the
client's errors."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

import netguard

DEFAULT_URL = "http://localhost:3000"
UPLOAD_PATH = "/api/v1/components/core/file/upload"
MAX_ERROR = 1 << 16
TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # per connect, read and write: a large transfer may take much longer
Progress = Callable[[int], None]


class DrsboxError(Exception):
    """A request failed: `msg` is the server's own message where it sent one, `status` its HTTP status."""

    def __init__(self, msg: str, status: int | None = None) -> None:
        super().__init__(f"{msg} (HTTP {status})" if status else msg)
        self.msg = msg
        self.status = status


class Refused(DrsboxError):
    """The URL may not be read under the SSRF rules; nothing was sent to it."""


@dataclass(frozen=True)
class Config:
    url: str  # the drsbox that uploads go to (PUBLIC_URL)
    authorization: str | None = None
    allow: netguard.Allowlist = field(default_factory=netguard.Allowlist)

    @classmethod
    def from_env(
        cls, url: str | None = None, token: str | None = None, environ: Mapping[str, str] = os.environ
    ) -> Config:
        """A user's token (Bearer) wins over the service secret (Token), which is what PWB's components send."""
        token = token or environ.get("DRSBOX_TOKEN")
        secret = environ.get("SECRET") or environ.get("NEXTAUTH_SECRET")
        authorization = f"Bearer {token}" if token else f"Token {secret}" if secret else None
        base = (url or environ.get("PUBLIC_URL") or DEFAULT_URL).rstrip("/")
        return cls(base, authorization, netguard.Allowlist.parse(environ.get("IMPORT_ALLOW", "")))

    @property
    def drs_host(self) -> str:
        return urlsplit(self.url).netloc

    def credentials(self) -> dict[str, str]:
        if not self.authorization:
            raise DrsboxError("no credentials: set DRSBOX_TOKEN (or --token), or SECRET for the service identity")
        return {"Authorization": self.authorization}


@contextmanager
def api(config: Config) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=config.url, headers=config.credentials(), timeout=TIMEOUT, verify=netguard.tls_context()
    ) as client:
        yield client


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise DrsboxError(f"cannot reach {client.base_url}: {error}") from error
    if not response.is_success:
        raise error_from(response, f"{method} {path}")
    return response


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise DrsboxError(f"{response.request.url} answered something other than JSON") from error


def error_from(response: httpx.Response, what: str) -> DrsboxError:
    """The server's JSON `msg` where it sent one (drsbox always does), else what answered which status."""
    try:
        body = response.content[:MAX_ERROR]
    except httpx.ResponseNotRead:
        body = b""
        try:
            for chunk in response.iter_raw():  # a hostile server's error body can be endless: read a bounded prefix
                body += chunk
                if len(body) >= MAX_ERROR:
                    break
        except httpx.HTTPError:
            pass  # the status says enough
    try:
        msg = json.loads(body).get("msg")
    except (ValueError, AttributeError):
        msg = None
    if not isinstance(msg, str):
        msg = f"{what} answered {response.reason_phrase}"
    return DrsboxError(msg, response.status_code)


class ProgressFile(io.FileIO):
    """A file that reports what is read from it: httpx streams a multipart file field by reading it in chunks."""

    def __init__(self, path: str, progress: Progress) -> None:
        super().__init__(path, "rb")
        self.progress = progress

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.progress(len(data))
        return data


def upload(config: Config, path: str, progress: Progress = lambda size: None) -> dict[str, Any]:
    """PWB's multipart upload of one file, streamed from disk: its record `{url, filename, sha256, size}`."""
    with api(config) as client, ProgressFile(path, progress) as body:
        answer = json_of(call(client, "POST", UPLOAD_PATH, files={"file": (os.path.basename(path), body)}))
    try:
        return dict(answer["file"][0])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise DrsboxError(f"unexpected answer to the upload: {answer!r:.200}") from error


def list_uploads(config: Config, page_size: int = 100) -> Iterator[dict[str, Any]]:
    """The caller's uploads, newest first, fetched a page at a time."""
    with api(config) as client:
        cursor = None
        while True:
            params = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = json_of(call(client, "GET", "/api/v1/uploads", params=params))
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise DrsboxError(f"{config.url} answered no list of uploads: is it a drsbox?")
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def delete_upload(config: Config, ref: str) -> None:
    """Deletes one of the caller's uploads, named by its id or its drs:// URI."""
    parts = urlsplit(ref)
    if parts.scheme == "drs" and parts.netloc != config.drs_host:
        raise DrsboxError(f"{ref} is not on {config.url}")
    id = parts.path.strip("/") if parts.scheme == "drs" else ref
    with api(config) as client:
        call(client, "DELETE", f"/api/v1/uploads/{quote(id, safe='')}")
