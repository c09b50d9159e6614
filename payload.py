"""Small JSON request bodies, read with a size cap and checked for shape."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

MAX_JSON = 1 << 20


async def read_json(request: Request, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}` unless one is required."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON:
            raise HTTPException(413, f"the JSON body is larger than {MAX_JSON} bytes")
    if not body.strip():
        if required:
            raise HTTPException(400, "a JSON body is required")
        return {}
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HTTPException(400, f"invalid JSON body: {error}") from error
    if not isinstance(value, dict):
        raise HTTPException(400, "the JSON body must be an object")
    return value
