"""The addresses clients see, all derived from PUBLIC_URL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from settings import Settings

DRS_PATH = "/ga4gh/drs/v1"


def drs_uri(settings: Settings, id: UUID | str) -> str:
    return f"drs://{settings.drs_host}/{id}"


def data_url(settings: Settings, id: UUID | str) -> str:
    """PWB's byte route: linked from reports, so it must keep this shape."""
    return f"{settings.public_url}{DRS_PATH}/objects/{id}/access/https/data"


def iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")
