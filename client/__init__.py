"""drsbox's Python client, with the names and behaviour of PWB's file helpers (`components/core/file`):

    from client import upsert_file, file_as_path
    with upsert_file(".csv") as f:
        df.to_csv(f.file)
    f["url"]  # drs://host/id, with f["filename"], f["sha256"], f["size"]

Settings come from the environment, read at each call: PUBLIC_URL (the drsbox; http://localhost:3000 by default),
SECRET or NEXTAUTH_SECRET (the service identity, as PWB's components use it) or DRSBOX_TOKEN (a user's token), and
IMPORT_ALLOW (non-public hosts and networks that reads may reach anyway, as for the server's URL imports)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any, TypedDict
from urllib.parse import urlsplit
from urllib.request import url2pathname

from client import api, fetch
from client.api import Config, DrsboxError, Refused

__all__ = [
    "Config",
    "DrsboxError",
    "File",
    "Refused",
    "TemporaryFile",
    "file_as_path",
    "file_as_stream",
    "file_from_url",
    "file_read_stream",
    "upsert_file",
]


class File(TypedDict, total=False):
    url: str
    filename: str
    description: str | None
    size: int
    sha256: str | None


FileRef = Mapping[str, Any] | str  # a File-like record, or just its URL


class TemporaryFile(dict[str, Any]):
    """PWB's record of a file being made: `.file` is the path to write to; after the upload the record holds the
    file's `url` (drs://), `filename`, `sha256` and `size`."""

    def __init__(self, suffix: str = "", description: str | None = None) -> None:
        # mkstemp rather than PWB's mktemp: creating the file reserves its name, so no other process can take it.
        descriptor, self.file = tempfile.mkstemp(suffix=suffix)
        os.close(descriptor)
        super().__init__(url="", filename=self.file, description=description, size=0)

    def unlink(self) -> None:
        try:
            os.unlink(self.file)
        except FileNotFoundError:
            pass  # the caller moved it away


@contextmanager
def upsert_file(suffix: str = "", description: str | None = None) -> Iterator[TemporaryFile]:
    """A temporary file to write to; uploaded to the drsbox when the block ends without an error, then deleted."""
    tmp = TemporaryFile(suffix, description)
    try:
        yield tmp
        tmp.update(api.upload(Config.from_env(), tmp.file))
    finally:
        tmp.unlink()


def url_of(file: FileRef) -> str:
    return file if isinstance(file, str) else str(file["url"])


@contextmanager
def file_as_stream(file: FileRef, mode: str = "rb", **kwargs: Any) -> Iterator[IO[Any]]:
    """The bytes behind the file's URL (drs:// of any DRS server, http, https) as a readable stream, fetched as they
    are read. Mode "r" decodes text; `kwargs` then go to io.TextIOWrapper (encoding, errors, newline)."""
    if mode not in ("rb", "r", "rt"):
        raise ValueError(f"file_as_stream only reads: mode 'rb' or 'r', not {mode!r}")
    config = Config.from_env()
    source = fetch.source_of(config, url_of(file))
    with fetch.open_bytes(config, source) as response:
        stream = io.BufferedReader(fetch.BodyReader(response, source.url))
        yield stream if mode == "rb" else io.TextIOWrapper(stream, **kwargs)


def file_read_stream(file: FileRef, chunk_size: int = 8192) -> Iterator[bytes]:
    with file_as_stream(file, "rb") as stream:
        while chunk := stream.read(chunk_size):
            yield chunk


@contextmanager
def file_as_path(file: FileRef, *args: Any, **kwargs: Any) -> Iterator[str]:
    """A local path holding the file's bytes, checked against the DRS object's sha-256 and deleted on exit; the path
    ends with the file's name, as with PWB's mount. A file:// URL is yielded as it is. (`args` and `kwargs` are
    accepted for PWB's signature, which ignores them too.)"""
    url = url_of(file)
    if urlsplit(url).scheme == "file":
        yield url2pathname(urlsplit(url).path)
        return
    config = Config.from_env()
    source = fetch.source_of(config, url)
    given = None if isinstance(file, str) else file.get("filename")
    name = fetch.safe_name(given) or fetch.safe_name(source.name) or "download"
    with tempfile.TemporaryDirectory(prefix="drsbox-") as directory:
        path = os.path.join(directory, name)
        with fetch.open_bytes(config, source) as response, open(path, "wb") as out:
            fetch.copy(response, out, source)
        yield path


def file_from_url(url: str) -> dict[str, Any]:
    """`{url, filename, size, sha256}` of a URL: from the DRS object when it has them, else by streaming the bytes."""
    config = Config.from_env()
    source = fetch.source_of(config, url)
    if source.sha256 is None or source.size is None:
        with fetch.open_bytes(config, source) as response:
            source.sha256, source.size = fetch.copy(response, None, source)
    return {"url": url, "filename": source.name or "", "size": source.size, "sha256": source.sha256}
