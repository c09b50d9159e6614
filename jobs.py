"""The job kinds a worker runs, and how a job reaches its handler: `HANDLERS[kind](context)` → result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import garbage
import imports
import scrub
import storage
from database import Database, Row
from netguard import Refused
from settings import Settings


class PermanentError(Exception):
    """Retrying cannot help: the job fails at once."""


@dataclass
class Context:
    db: Database
    storage: storage.Storage
    settings: Settings
    job: Row
    progress: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job["payload"]

    def report(self, size: int) -> None:
        self.progress = size


def upload_record(row: Row) -> dict[str, Any]:
    return {"id": str(row["id"]), "filename": row["filename"], "size": row["size"], "sha256": row["sha256"]}


async def run_import(ctx: Context) -> dict[str, Any]:
    user: UUID = ctx.job["user"]
    try:
        row = await imports.import_url(
            ctx.db,
            ctx.storage,
            imports.guard(ctx.settings),
            imports.options(ctx.settings),
            user,
            ctx.payload.get("url", ""),
            ctx.payload.get("filename"),
            ctx.report,
        )
    except (Refused, imports.ImportFailed) as error:
        if isinstance(error, imports.ImportFailed) and not error.permanent:
            raise
        raise PermanentError(str(error)) from error
    return upload_record(row)


async def run_gc(ctx: Context) -> dict[str, Any]:
    return await garbage.collect(ctx.db, ctx.storage, ctx.settings.gc_grace)


async def run_sweep(ctx: Context) -> dict[str, Any]:
    await ctx.db.delete_finished_jobs(older_than=ctx.settings.job_retention)
    return await garbage.sweep(ctx.storage, ctx.settings.temp_max_age)


async def run_scrub(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    return await scrub.scrub(ctx.db, ctx.storage, s.scrub_max_age, s.scrub_batch, s.scrub_rate)


async def run_stats(ctx: Context) -> dict[str, Any]:
    await ctx.db.refresh_drs_stats()
    stats = await ctx.db.get_drs_stats() or {}
    return {"object_count": stats.get("object_count"), "total_size": stats.get("total_size")}


async def run_noop(ctx: Context) -> dict[str, Any]:
    """Does nothing: for measuring the queue itself."""
    return {}


HANDLERS: dict[str, Callable[[Context], Awaitable[dict[str, Any]]]] = {
    "import": run_import,
    "gc": run_gc,
    "sweep": run_sweep,
    "scrub": run_scrub,
    "stats": run_stats,
    "noop": run_noop,
}
