"""A streaming multipart/form-data reader on python-multipart's push parser: parts arrive as events,
their bytes are never spooled, so a request body of any size costs the same memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

MAX_HEADERS = 16


class MalformedMultipart(Exception):
    pass


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None for a plain form field
    content_type: str


Event = Part | bytes | None  # a part begins, some of its bytes, the part ends


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise MalformedMultipart("expected a multipart/form-data body with a boundary")
    return boundary


def decode(value: bytes) -> str:
    # Browsers send raw UTF-8 in quoted parameters; python-multipart hands them over as latin-1.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedMultipart("a part header is not valid UTF-8") from error


def make_part(headers: dict[bytes, bytes]) -> Part:
    kind, options = parse_options_header(headers.get(b"content-disposition", b"").decode("latin-1"))
    if kind != b"form-data" or b"name" not in options:
        raise MalformedMultipart("each part needs `Content-Disposition: form-data; name=...`")
    filename = options.get(b"filename")
    content_type = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
    return Part(decode(options[b"name"]), None if filename is None else decode(filename), content_type)


async def events(stream: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[Event]:
    pending: list[Event] = []
    headers: dict[bytes, bytes] = {}
    field = bytearray()
    value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        pending.append(make_part(headers))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        pending.append(data[start:end])

    def on_part_end() -> None:
        pending.append(None)

    callbacks = {
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks, max_header_count=MAX_HEADERS)  # type: ignore[arg-type]
    except FormParserError as error:
        raise MalformedMultipart(f"malformed multipart boundary: {error}") from error
    async for chunk in stream:
        try:
            parser.write(chunk)
        except FormParserError as error:
            raise MalformedMultipart(f"malformed multipart body: {error}") from error
        for event in pending:
            yield event
        pending.clear()
    if parser.state != MultipartState.END:
        raise MalformedMultipart("the multipart body ends before its closing boundary")
