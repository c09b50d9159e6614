"""PostgreSQL backend: an asyncpg pool; each method runs its `queries/<name>.sql`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from database import ForeignKeyViolation, Row, Unavailable, UniqueViolation, load_queries

QUERIES = load_queries()
CHANNEL = "drsbox_jobs"


def translate(error: Exception) -> Exception:
    """asyncpg's exceptions become the database module's, the ones the memory backend raises too."""
    if isinstance(error, asyncpg.UniqueViolationError):
        return UniqueViolation(str(error))
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(str(error))
    # InterfaceError's subclasses (DataError, ...) are bad input, not a lost connection.
    lost = type(error) is asyncpg.InterfaceError or isinstance(
        error, OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError
    )
    return Unavailable(str(error)) if lost else error


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except Exception as error:
        translated = translate(error)
        if translated is error:
            raise
        raise translated from error


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def execute(conn: asyncpg.Connection, kind: str, sql: str, args: tuple[Any, ...]) -> Any:
    if kind == "one":
        row = await conn.fetchrow(sql, *args)
        return None if row is None else dict(row)
    if kind == "many":
        return [dict(row) for row in await conn.fetch(sql, *args)]
    await conn.execute(sql, *args)
    return None


class JobListener:
    """A connection of its own that LISTENs for new jobs, so idle workers wake at once."""

    def __init__(self, conn: asyncpg.Connection, wake: Callable[[], None]) -> None:
        self.conn = conn
        self.wake = wake

    def on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.wake()

    @property
    def alive(self) -> bool:
        return not self.conn.is_closed()

    async def close(self) -> None:
        if not self.conn.is_closed():
            await self.conn.close()


class PostgresDatabase:
    def __init__(self, pool: asyncpg.Pool, url: str, conn: asyncpg.Connection | None = None) -> None:
        self.pool = pool
        self.url = url
        self.conn = conn  # set inside transaction(): every query then runs on it

    @classmethod
    async def connect(cls, url: str, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        async with translate_errors():
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=init_connection)
        return cls(pool, url)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresDatabase]:
        """The same interface on one connection, inside one transaction (committed on a clean exit)."""
        async with translate_errors(), self.pool.acquire() as conn, conn.transaction():
            yield PostgresDatabase(self.pool, self.url, conn)

    async def listen_jobs(self, wake: Callable[[], None]) -> JobListener:
        async with translate_errors():
            conn = await asyncpg.connect(self.url)
            listener = JobListener(conn, wake)
            await conn.add_listener(CHANNEL, listener.on_notify)
        return listener

    async def _run(self, name: str, *args: Any) -> Any:
        query = QUERIES[name]
        try:
            if self.conn is not None:
                return await execute(self.conn, query.kind, query.sql, args)
            async with self.pool.acquire() as conn:
                return await execute(conn, query.kind, query.sql, args)
        except Exception as error:  # not `async with translate_errors()`: it costs µs on every query
            translated = translate(error)
            if translated is error:
                raise
            raise translated from error

    async def get_now(self) -> Row | None:
        return await self._run("get_now")

    async def upsert_user(self, *, username: str) -> Row | None:
        return await self._run("upsert_user", username)

    async def insert_user_token(self, *, token_hash: str, user: UUID) -> None:
        await self._run("insert_user_token", token_hash, user)

    async def get_user_by_token(self, *, token_hash: str) -> Row | None:
        return await self._run("get_user_by_token", token_hash)

    async def lock_blob_shared(self, *, sha256: str) -> None:
        await self._run("lock_blob_shared", sha256)

    async def lock_blob(self, *, sha256: str) -> None:
        await self._run("lock_blob", sha256)

    async def upsert_user_upload(
        self, *, user: UUID, url: str, sha256: str, size: int, md5: str | None, filename: str
    ) -> Row | None:
        return await self._run("upsert_user_upload", user, url, sha256, size, md5, filename)

    async def get_user_upload(self, *, id: UUID, user: UUID) -> Row | None:
        return await self._run("get_user_upload", id, user)

    async def get_drs_object(self, *, id: UUID) -> Row | None:
        return await self._run("get_drs_object", id)

    async def list_drs_objects(self, *, ids: list[UUID]) -> list[Row]:
        return await self._run("list_drs_objects", ids)

    async def list_user_uploads(
        self, *, user: UUID, after_created: dt.datetime | None, after_id: UUID | None, limit: int | None
    ) -> list[Row]:
        return await self._run("list_user_uploads", user, after_created, after_id, limit)

    async def delete_user_upload(self, *, id: UUID, user: UUID) -> Row | None:
        return await self._run("delete_user_upload", id, user)

    async def get_upload_by_url(self, *, url: str) -> Row | None:
        return await self._run("get_upload_by_url", url)

    async def list_uploads_by_url(self, *, urls: list[str]) -> list[Row]:
        return await self._run("list_uploads_by_url", urls)

    async def update_orphaned_uploads(self) -> None:
        await self._run("update_orphaned_uploads")

    async def list_orphaned_uploads(self, *, grace: float, limit: int) -> list[Row]:
        return await self._run("list_orphaned_uploads", grace, limit)

    async def delete_orphaned_upload(self, *, id: UUID) -> Row | None:
        return await self._run("delete_orphaned_upload", id)

    async def list_uploads_to_scrub(self, *, older_than: float, limit: int) -> list[Row]:
        return await self._run("list_uploads_to_scrub", older_than, limit)

    async def update_upload_scrub(self, *, id: UUID, corrupt: bool) -> None:
        await self._run("update_upload_scrub", id, corrupt)

    async def count_corrupt_uploads(self) -> Row | None:
        return await self._run("count_corrupt_uploads")

    async def enqueue_job(
        self, *, kind: str, payload: dict[str, Any], user: UUID | None, max_attempts: int
    ) -> Row | None:
        return await self._run("enqueue_job", kind, payload, user, max_attempts)

    async def claim_job(self, *, worker: str) -> Row | None:
        return await self._run("claim_job", worker)

    async def update_job_heartbeat(self, *, id: UUID, worker: str, progress: int) -> Row | None:
        return await self._run("update_job_heartbeat", id, worker, progress)

    async def complete_job(self, *, id: UUID, worker: str, result: dict[str, Any]) -> Row | None:
        return await self._run("complete_job", id, worker, result)

    async def fail_job(self, *, id: UUID, worker: str, error: str, backoff: float, final: bool) -> Row | None:
        return await self._run("fail_job", id, worker, error, backoff, final)

    async def requeue_job(self, *, id: UUID, worker: str) -> Row | None:
        return await self._run("requeue_job", id, worker)

    async def rescue_jobs(self, *, stale: float) -> list[Row]:
        return await self._run("rescue_jobs", stale)

    async def get_job(self, *, id: UUID, user: UUID) -> Row | None:
        return await self._run("get_job", id, user)

    async def list_job_counts(self) -> list[Row]:
        return await self._run("list_job_counts")

    async def delete_finished_jobs(self, *, older_than: float) -> None:
        await self._run("delete_finished_jobs", older_than)

    async def refresh_drs_stats(self) -> None:
        await self._run("refresh_drs_stats")

    async def get_drs_stats(self) -> Row | None:
        return await self._run("get_drs_stats")

    async def claim_schedule(self, *, name: str, interval: float) -> Row | None:
        return await self._run("claim_schedule", name, interval)
