"""PostgreSQL backend: an asyncpg pool; each method runs its `queries/<name>.sql`."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import asyncpg

from database import ForeignKeyViolation, Row, Unavailable, UniqueViolation, load_queries

QUERIES = load_queries()


class PostgresDatabase:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def _run(self, name: str, *args: Any) -> Any:
        query = QUERIES[name]
        try:
            async with self.pool.acquire() as conn:
                if query.kind == "one":
                    row = await conn.fetchrow(query.sql, *args)
                    return None if row is None else dict(row)
                if query.kind == "many":
                    return [dict(row) for row in await conn.fetch(query.sql, *args)]
                await conn.execute(query.sql, *args)
                return None
        except asyncpg.UniqueViolationError as error:
            raise UniqueViolation(str(error)) from error
        except asyncpg.ForeignKeyViolationError as error:
            raise ForeignKeyViolation(str(error)) from error
        except (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
        ) as error:
            raise Unavailable(str(error)) from error

    async def get_now(self) -> Row | None:
        return await self._run("get_now")

    async def upsert_user(self, *, username: str) -> Row | None:
        return await self._run("upsert_user", username)

    async def insert_user_token(self, *, token_hash: str, user: UUID) -> None:
        await self._run("insert_user_token", token_hash, user)

    async def get_user_by_token(self, *, token_hash: str) -> Row | None:
        return await self._run("get_user_by_token", token_hash)

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
