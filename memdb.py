"""In-memory backend: the twin of pgdb.py for development and fast tests (rows vanish on restart).

Each method does what its SQL file does, constraints included; no method awaits between reading and
writing, so under asyncio each one is atomic like the single statement it mirrors.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from codegen.schema import SERVICE_USER_ID
from database import ForeignKeyViolation, Row, UniqueViolation

UPLOAD_COLUMNS = ("id", "user", "url", "sha256", "size", "filename", "created", "md5", "upload", "corrupt")
JOB_COLUMNS = (
    "id",
    "kind",
    "payload",
    "user",
    "state",
    "attempts",
    "progress",
    "result",
    "error",
    "created",
    "updated",
)


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
        self.jobs: dict[UUID, Row] = {}
        self.schedule: dict[str, dt.datetime] = {}
        self.listeners: list[MemoryListener] = []
        self.stats: Row = {}

    async def close(self) -> None:
        pass

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryDatabase]:
        # One process, one event loop: there is nobody to isolate from, and memory mode never collects garbage.
        yield self

    async def listen_jobs(self, wake: Callable[[], None]) -> MemoryListener:
        listener = MemoryListener(self, wake)
        self.listeners.append(listener)
        return listener

    async def lock_blob_shared(self, *, sha256: str) -> None:
        pass

    async def lock_blob(self, *, sha256: str) -> None:
        pass

    def _complete(self, user_upload: Row) -> Row:
        upload = self.uploads[user_upload["upload"]]
        row = {**upload, **user_upload}  # the user_upload's id and created win, as in the view
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
            self.uploads[upload_id] = {
                "id": upload_id,
                "url": url,
                "sha256": sha256,
                "size": size,
                "md5": md5,
                "created": now(),
                "orphaned": None,
                "scrubbed": None,
                "corrupt": False,
            }
        else:
            upload = self.uploads[upload_id]
            upload["md5"] = upload["md5"] or md5
            upload["orphaned"] = None
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

    def _referenced(self, upload_id: UUID) -> bool:
        return any(row["upload"] == upload_id for row in self.user_uploads.values())

    async def get_upload_by_url(self, *, url: str) -> Row | None:
        id = self.upload_by_url.get(url)
        return None if id is None else dict(self.uploads[id])

    async def list_uploads_by_url(self, *, urls: list[str]) -> list[Row]:
        return [{"url": url} for url in dict.fromkeys(urls) if url in self.upload_by_url]

    async def update_orphaned_uploads(self) -> None:
        for upload in self.uploads.values():
            referenced = self._referenced(upload["id"])
            if upload["orphaned"] is None and not referenced:
                upload["orphaned"] = now()
            elif upload["orphaned"] is not None and referenced:
                upload["orphaned"] = None

    async def list_orphaned_uploads(self, *, grace: float, limit: int) -> list[Row]:
        cutoff = now() - dt.timedelta(seconds=grace)
        rows = sorted(
            (u for u in self.uploads.values() if u["orphaned"] is not None and u["orphaned"] < cutoff),
            key=lambda u: u["orphaned"],
        )
        return [{"id": u["id"], "url": u["url"], "sha256": u["sha256"]} for u in rows[:limit]]

    async def delete_orphaned_upload(self, *, id: UUID) -> Row | None:
        upload = self.uploads.get(id)
        if upload is None or upload["orphaned"] is None or self._referenced(id):
            return None
        del self.uploads[id], self.upload_by_url[upload["url"]]
        return {"id": id, "url": upload["url"], "sha256": upload["sha256"]}

    async def list_uploads_to_scrub(self, *, older_than: float, limit: int) -> list[Row]:
        cutoff = now() - dt.timedelta(seconds=older_than)
        due = [
            u
            for u in self.uploads.values()
            if u["url"].startswith("storage://") and (u["scrubbed"] is None or u["scrubbed"] < cutoff)
        ]
        due.sort(key=lambda u: (u["scrubbed"] is not None, u["scrubbed"] or now(), u["id"].bytes))
        return [{"id": u["id"], "url": u["url"], "sha256": u["sha256"], "size": u["size"]} for u in due[:limit]]

    async def update_upload_scrub(self, *, id: UUID, corrupt: bool) -> None:
        if id in self.uploads:
            self.uploads[id].update(scrubbed=now(), corrupt=corrupt)

    async def count_corrupt_uploads(self) -> Row | None:
        return {"count": sum(1 for u in self.uploads.values() if u["corrupt"])}

    def _job(self, id: UUID, worker: str) -> Row | None:
        job = self.jobs.get(id)
        return job if job is not None and job["worker"] == worker and job["state"] == "running" else None

    async def enqueue_job(
        self, *, kind: str, payload: dict[str, Any], user: UUID | None, max_attempts: int
    ) -> Row | None:
        if user is not None and user not in self.users:
            raise ForeignKeyViolation(f"no user {user}")
        id, at = uuid.uuid4(), now()
        self.jobs[id] = {
            "id": id,
            "kind": kind,
            "payload": payload,
            "user": user,
            "state": "queued",
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_after": at,
            "worker": None,
            "heartbeat": None,
            "progress": 0,
            "result": None,
            "error": None,
            "created": at,
            "updated": at,
        }
        for listener in self.listeners:
            listener.wake()
        return {**{column: self.jobs[id][column] for column in JOB_COLUMNS}, "notified": True}

    async def claim_job(self, *, worker: str) -> Row | None:
        due = [j for j in self.jobs.values() if j["state"] == "queued" and j["run_after"] <= now()]
        if not due:
            return None
        job = min(due, key=lambda j: j["run_after"])
        job.update(state="running", worker=worker, heartbeat=now(), attempts=job["attempts"] + 1, updated=now())
        return {column: job[column] for column in ("id", "kind", "payload", "user", "attempts", "max_attempts")}

    async def update_job_heartbeat(self, *, id: UUID, worker: str, progress: int) -> Row | None:
        job = self._job(id, worker)
        if job is None:
            return None
        job.update(heartbeat=now(), progress=progress, updated=now())
        return {"id": id}

    async def complete_job(self, *, id: UUID, worker: str, result: dict[str, Any]) -> Row | None:
        job = self._job(id, worker)
        if job is None:
            return None
        job.update(state="done", result=result, worker=None, heartbeat=None, updated=now())
        return {"id": id}

    async def fail_job(self, *, id: UUID, worker: str, error: str, backoff: float, final: bool) -> Row | None:
        job = self._job(id, worker)
        if job is None:
            return None
        state = "failed" if final or job["attempts"] >= job["max_attempts"] else "queued"
        job.update(
            state=state,
            run_after=now() + dt.timedelta(seconds=backoff),
            error=error,
            worker=None,
            heartbeat=None,
            updated=now(),
        )
        return {"id": id, "state": state}

    async def requeue_job(self, *, id: UUID, worker: str) -> Row | None:
        job = self._job(id, worker)
        if job is None:
            return None
        job.update(
            state="queued", attempts=job["attempts"] - 1, run_after=now(), worker=None, heartbeat=None, updated=now()
        )
        return {"id": id}

    async def rescue_jobs(self, *, stale: float) -> list[Row]:
        cutoff, rescued = now() - dt.timedelta(seconds=stale), []
        for job in self.jobs.values():
            if job["state"] == "running" and job["heartbeat"] < cutoff:
                out = job["attempts"] >= job["max_attempts"]
                job.update(
                    state="failed" if out else "queued", run_after=now(), worker=None, heartbeat=None, updated=now()
                )
                if out:
                    job["error"] = "its worker stopped responding"
                rescued.append({"id": job["id"], "state": job["state"]})
        return rescued

    async def get_job(self, *, id: UUID, user: UUID) -> Row | None:
        job = self.jobs.get(id)
        return None if job is None or job["user"] != user else {column: job[column] for column in JOB_COLUMNS}

    async def list_job_counts(self) -> list[Row]:
        counts: dict[tuple[str, str], int] = {}
        for job in self.jobs.values():
            counts[(job["kind"], job["state"])] = counts.get((job["kind"], job["state"]), 0) + 1
        return [{"kind": kind, "state": state, "count": n} for (kind, state), n in sorted(counts.items())]

    async def delete_finished_jobs(self, *, older_than: float) -> None:
        cutoff = now() - dt.timedelta(seconds=older_than)
        for id in [id for id, j in self.jobs.items() if j["state"] in ("done", "failed") and j["updated"] < cutoff]:
            del self.jobs[id]

    async def refresh_drs_stats(self) -> None:
        referenced = {row["upload"] for row in self.user_uploads.values()}
        total = sum(self.uploads[id]["size"] for id in referenced)
        self.stats = {"object_count": len(self.user_uploads), "total_size": total, "updated": now()}

    async def get_drs_stats(self) -> Row | None:
        return dict(self.stats) if self.stats else None

    async def claim_schedule(self, *, name: str, interval: float) -> Row | None:
        due = self.schedule.get(name)
        if due is not None and due > now():
            return None
        self.schedule[name] = now() + dt.timedelta(seconds=interval)
        return {"name": name}


class MemoryListener:
    def __init__(self, db: MemoryDatabase, wake: Callable[[], None]) -> None:
        self.db = db
        self.wake = wake
        self.alive = True

    async def close(self) -> None:
        self.alive = False
        if self in self.db.listeners:
            self.db.listeners.remove(self)
