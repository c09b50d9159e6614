"""In-memory backend: the twin of pgdb.py for development and fast tests (rows vanish on restart).

Each method does what its SQL file does, constraints included; no method awaits between reading and
writing, so under asyncio each one is atomic like the single statement it mirrors.
"""

from __future__ import annotations

import datetime as dt
import uuid
from uuid import UUID

from codegen.schema import SERVICE_USER_ID
from database import ForeignKeyViolation, Row, UniqueViolation

UPLOAD_COLUMNS = ("id", "user", "url", "sha256", "size", "filename", "created", "md5", "upload")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MemoryDatabase:
    def __init__(self) -> None:
        service = UUID(SERVICE_USER_ID)
        self.users: dict[UUID, Row] = {service: {"id": service, "username": None, "name": "Service"}}
        self.tokens: dict[str, Row] = {}
        self.uploads: dict[UUID, Row] = {}
        self.user_uploads: dict[UUID, Row] = {}
        # Unique keys, as in the schema.
        self.upload_by_url: dict[str, UUID] = {}
        self.user_upload_by_key: dict[tuple[UUID, UUID, str], UUID] = {}

    async def close(self) -> None:
        pass

    def _complete(self, user_upload: Row) -> Row:
        upload = self.uploads[user_upload["upload"]]
        row = {**upload, **user_upload}
        return {column: row[column] for column in UPLOAD_COLUMNS}

    async def get_now(self) -> Row | None:
        return {"now": now()}

    async def upsert_user(self, *, username: str) -> Row | None:
        for user in self.users.values():
            if user["username"] == username:
                return {"id": user["id"]}
        id = uuid.uuid4()
        self.users[id] = {"id": id, "username": username, "name": username}
        return {"id": id}

    async def insert_user_token(self, *, token_hash: str, user: UUID) -> None:
        if user not in self.users:
            raise ForeignKeyViolation(f"no user {user}")
        if token_hash in self.tokens:
            raise UniqueViolation("user_token_pkey")
        self.tokens[token_hash] = {"token_hash": token_hash, "user": user, "created": now()}

    async def get_user_by_token(self, *, token_hash: str) -> Row | None:
        token = self.tokens.get(token_hash)
        return None if token is None else {"id": token["user"], "token_hash": token_hash}

    async def upsert_user_upload(
        self, *, user: UUID, url: str, sha256: str, size: int, md5: str | None, filename: str
    ) -> Row | None:
        if user not in self.users:
            raise ForeignKeyViolation(f"no user {user}")
        upload_id = self.upload_by_url.get(url)
        if upload_id is None:
            upload_id = uuid.uuid4()
            self.upload_by_url[url] = upload_id
            self.uploads[upload_id] = {"id": upload_id, "url": url, "sha256": sha256, "size": size, "md5": md5}
        elif self.uploads[upload_id]["md5"] is None:
            self.uploads[upload_id]["md5"] = md5
        key = (user, upload_id, filename)
        id = self.user_upload_by_key.get(key)
        if id is None:
            id = uuid.uuid4()
            self.user_upload_by_key[key] = id
            self.user_uploads[id] = {
                "id": id,
                "user": user,
                "upload": upload_id,
                "filename": filename,
                "created": now(),
            }
        return self._complete(self.user_uploads[id])

    async def get_user_upload(self, *, id: UUID, user: UUID) -> Row | None:
        row = self.user_uploads.get(id)
        return None if row is None or row["user"] != user else self._complete(row)

    async def get_drs_object(self, *, id: UUID) -> Row | None:
        row = self.user_uploads.get(id)
        return None if row is None else self._complete(row)

    async def list_drs_objects(self, *, ids: list[UUID]) -> list[Row]:
        return [self._complete(self.user_uploads[id]) for id in dict.fromkeys(ids) if id in self.user_uploads]

    async def list_user_uploads(
        self, *, user: UUID, after_created: dt.datetime | None, after_id: UUID | None, limit: int | None
    ) -> list[Row]:
        rows = [row for row in self.user_uploads.values() if row["user"] == user]
        if after_created is not None:
            # PostgreSQL compares uuids bytewise, as Python compares their .bytes.
            cursor = (after_created, after_id.bytes if after_id else b"")
            rows = [row for row in rows if (row["created"], row["id"].bytes) < cursor]
        rows.sort(key=lambda row: (row["created"], row["id"].bytes), reverse=True)
        return [self._complete(row) for row in rows[:limit]]

    async def delete_user_upload(self, *, id: UUID, user: UUID) -> Row | None:
        row = self.user_uploads.get(id)
        if row is None or row["user"] != user:
            return None
        del self.user_uploads[id]
        del self.user_upload_by_key[(row["user"], row["upload"], row["filename"])]
        return dict(row)
