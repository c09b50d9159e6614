"""Reads of drs:// and http(s) URLs under the SSRF rules of URL imports (netguard: every hop checked and pinned),
except that the configured drsbox itself is always reachable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import json
import re
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpx

import netguard
from client.api import TIMEOUT, Config, DrsboxError, Progress, Refused, error_from

MAX_METADATA = 1 << 20
DRS_OBJECT = re.compile(r"^/?([A-Za-z0-9._~-]+)$")
T = TypeVar("T")


@dataclass
class Source:
    url: str  # where the bytes are; for a DRS object, found from `access_methods` only when the bytes are wanted
    name: str | None = None
    sha256: str | None = None
    size: int | None = None
    headers: dict[str, str] | None = None
    drs_object: str = ""  # the DRS object's URL
    access_methods: list[Any] = field(default_factory=list)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """netguard's checks are async: run them to completion on a private event loop, in a thread of its own when the
    caller is itself inside an event loop (asyncio.run refuses to nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for anything else, malformed URLs included."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return None if port is None or not parts.hostname else (parts.scheme, parts.hostname.lower().rstrip("."), port)


def pin(config: Config, url: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """The URL to connect to, with the Host header and TLS name to keep: netguard's own check-and-pin."""
    if origin(url) is not None and origin(url) == origin(config.url):
        # The configured drsbox is trusted by configuration, and is usually on loopback: reached as configured.
        return httpx.URL(url), {}, {}
    try:
        return run(netguard.Guard(config.allow).pin(url))
    except netguard.Refused as error:
        raise Refused(str(error)) from error


@contextmanager
def get(config: Config, url: str, headers: dict[str, str] | None = None) -> Iterator[httpx.Response]:
    """GET with redirects followed by hand, every hop checked and pinned: the sync twin of netguard.Guard.get."""
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, verify=netguard.tls_context()) as client:
        for _ in range(netguard.MAX_REDIRECTS + 1):
            target, pinned, extensions = pin(config, url)
            sent = {**(headers or {}), **pinned, "Accept-Encoding": "identity"}
            request = client.build_request("GET", target, headers=sent, extensions=extensions)
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as error:
                raise DrsboxError(f"cannot fetch {url}: {error}") from error
            try:
                if response.is_redirect and "location" in response.headers:
                    following = urljoin(url, response.headers["location"])
                    if urlsplit(following).netloc != urlsplit(url).netloc:
                        headers = None  # headers meant for one host never follow a redirect to another
                    url = following
                    continue
                yield response
                return
            finally:
                response.close()
        raise Refused(f"more than {netguard.MAX_REDIRECTS} redirects")


def read_json(config: Config, url: str) -> Any:
    with get(config, url, {"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise error_from(response, url)
        body = b""
        for chunk in chunks(response, url):
            body += chunk
            if len(body) > MAX_METADATA:
                raise DrsboxError(f"{url}: the answer is larger than {MAX_METADATA} bytes")
    try:
        return json.loads(body)
    except ValueError as error:
        raise DrsboxError(f"{url}: the answer is not JSON") from error


def resolve_drs(config: Config, uri: str) -> Source:
    """drs://host[:port]/id through that server's DRS API (http when a port is given, else https): the object's name,
    size and sha-256, and its access methods."""
    parts = urlsplit(uri)
    match = DRS_OBJECT.match(parts.path)
    if not parts.netloc or match is None:
        raise Refused(f"not a drs://host/id URI: {uri}")
    base = f"{'http' if parts.port else 'https'}://{parts.netloc}/ga4gh/drs/v1/objects/{match.group(1)}"
    obj = read_json(config, base)
    if not isinstance(obj, dict) or not isinstance(obj.get("access_methods"), list):
        raise DrsboxError(f"{uri}: the DRS object has no access_methods")
    checksums = {c.get("type"): c.get("checksum") for c in obj.get("checksums") or [] if isinstance(c, dict)}
    name, sha256, size = obj.get("name"), checksums.get("sha-256"), obj.get("size")
    return Source(
        "",
        name if isinstance(name, str) and name else match.group(1),
        sha256 if isinstance(sha256, str) else None,
        size if type(size) is int else None,  # not a bool, which is an int too
        drs_object=base,
        access_methods=obj["access_methods"],
    )


def resolve_access(config: Config, source: Source) -> None:
    """Fills in where a DRS object's bytes are: the first http(s) access method's URL, asked of /access/{access_id}
    when the object does not carry it (presigned URLs expire, so servers hand them out only on request)."""
    for method in source.access_methods:
        if not isinstance(method, dict) or method.get("type") not in ("https", "http"):
            continue
        access = method.get("access_url")
        if url_in(access) is None and isinstance(method.get("access_id"), str):
            access = read_json(config, f"{source.drs_object}/access/{quote(method['access_id'], safe='')}")
        if url_in(access) is not None:
            source.url = access["url"]
            pairs = [h.split(":", 1) for h in access.get("headers") or [] if isinstance(h, str) and ":" in h]
            source.headers = {name.strip(): value.strip() for name, value in pairs}
            return
    raise DrsboxError(f"{source.drs_object}: no http(s) access method")


def url_in(access: Any) -> str | None:
    """The `url` of a DRS AccessURL."""
    return access["url"] if isinstance(access, dict) and isinstance(access.get("url"), str) else None


def source_of(config: Config, url: str) -> Source:
    scheme = urlsplit(url).scheme
    if scheme == "drs":
        return resolve_drs(config, url)
    if scheme in ("http", "https"):
        return Source(url, unquote(urlsplit(url).path).rpartition("/")[2] or None)
    raise Refused(f"refusing {scheme or 'a schemeless'} URL: only drs, http and https are read")


@contextmanager
def open_bytes(config: Config, source: Source) -> Iterator[httpx.Response]:
    if not source.url:
        resolve_access(config, source)
    with get(config, source.url, source.headers) as response:
        if response.status_code != 200:
            raise error_from(response, source.url)
        yield response


def chunks(response: httpx.Response, url: str) -> Iterator[bytes]:
    try:
        yield from response.iter_raw()
    except httpx.HTTPError as error:
        raise DrsboxError(f"cannot read {url}: {error}") from error


def copy(
    response: httpx.Response, out: IO[bytes] | None, source: Source, progress: Progress = lambda size: None
) -> tuple[str, int]:
    """Streams the body into `out` (or only through the hash): its sha256 and size, checked against the source's."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks(response, source.url):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
        progress(len(chunk))
    if source.sha256 and source.sha256.lower() != digest.hexdigest():
        raise DrsboxError(f"the bytes of {source.url} do not match their sha-256 {source.sha256}")
    if source.size is not None and source.size != size:
        raise DrsboxError(f"got {size} bytes from {source.url}, expected {source.size}")
    return digest.hexdigest(), size


class BodyReader(io.RawIOBase):
    """A response body as a raw binary stream; io.BufferedReader on top gives read(n), readline and iteration."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self.chunks = chunks(response, url)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending = memoryview(chunk)
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def safe_name(name: str | None) -> str | None:
    """A remote name as a local file name: its last path segment, printable, never empty, '.' or '..'."""
    name = "".join(c for c in (name or "").replace("\\", "/").rpartition("/")[2] if c.isprintable()).strip()
    return None if name in ("", ".", "..") else name
