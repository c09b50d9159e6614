"""One contract for both database backends, and the rule that every query file has its memory twin."""

from __future__ import annotations

import asyncio
import inspect
import re
import uuid

import pytest

from auth import SERVICE_USER
from database import QUERIES, Database, ForeignKeyViolation, UniqueViolation, load_queries
from memdb import MemoryDatabase
from pgdb import PostgresDatabase

pytestmark = pytest.mark.anyio

SHA = "a" * 64


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if inspect.iscoroutinefunction(member)
        and not name.startswith("_")
        and name not in ("connect", "close", "listen_jobs")
    }


def test_query_files_each_have_a_method_on_both_backends() -> None:
    stems = set(load_queries())
    assert set(public_methods(PostgresDatabase)) == stems
    assert set(public_methods(MemoryDatabase)) == stems


def test_backend_methods_take_the_same_keyword_arguments_as_their_sql_parameters() -> None:
    queries = load_queries()
    postgres, memory = public_methods(PostgresDatabase), public_methods(MemoryDatabase)
    for name, query in queries.items():
        parameters = [p for p in postgres[name].parameters.values() if p.name != "self"]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name
        assert [p.name for p in parameters] == [p.name for p in memory[name].parameters.values() if p.name != "self"]
        highest = max((int(n) for n in re.findall(r"\$(\d+)", query.sql)), default=0)
        assert highest == len(parameters), name


def test_query_files_have_headers_and_end_with_a_semicolon() -> None:
    for path in QUERIES.glob("*.sql"):
        lines = path.read_text().splitlines()
        assert re.match(rf"^-- name: {path.stem} :(one|many|exec)$", lines[0]), path
        assert lines[1].startswith("-- ") and lines[-1].endswith(";"), path
        assert "SELECT *" not in path.read_text(), path


async def add(db: Database, user: uuid.UUID, sha: str = SHA, filename: str = "a.txt", size: int = 3) -> dict:
    row = await db.upsert_user_upload(
        user=user, url=f"storage://{sha}", sha256=sha, size=size, md5="m", filename=filename
    )
    assert row is not None
    return row


async def test_upsert_user_upload_same_user_bytes_and_name_returns_the_same_row(db: Database) -> None:
    first = await add(db, SERVICE_USER)
    again = await add(db, SERVICE_USER)
    assert again["id"] == first["id"] and again["created"] == first["created"]
    other_name = await add(db, SERVICE_USER, filename="b.txt")
    assert other_name["id"] != first["id"] and other_name["upload"] == first["upload"]


async def test_upsert_user_upload_concurrent_retries_create_one_row(db: Database) -> None:
    rows = await asyncio.gather(*(add(db, SERVICE_USER, filename="same.txt") for _ in range(8)))
    assert len({row["id"] for row in rows}) == 1
    assert len(await db.list_user_uploads(user=SERVICE_USER, after_created=None, after_id=None, limit=None)) == 1


async def test_upsert_user_upload_unknown_user_violates_the_foreign_key(db: Database) -> None:
    with pytest.raises(ForeignKeyViolation):
        await add(db, uuid.uuid4())


async def test_user_upload_is_visible_to_its_owner_only(db: Database) -> None:
    alice = (await db.upsert_user(username="alice"))["id"]
    bob = (await db.upsert_user(username="bob"))["id"]
    row = await add(db, alice)
    assert (await db.get_user_upload(id=row["id"], user=alice))["filename"] == "a.txt"
    assert await db.get_user_upload(id=row["id"], user=bob) is None
    assert await db.delete_user_upload(id=row["id"], user=bob) is None
    assert (await db.get_drs_object(id=row["id"]))["sha256"] == SHA


async def test_delete_user_upload_removes_the_object_and_a_new_upload_gets_a_new_id(db: Database) -> None:
    row = await add(db, SERVICE_USER)
    deleted = await db.delete_user_upload(id=row["id"], user=SERVICE_USER)
    assert deleted["id"] == row["id"] and deleted["upload"] == row["upload"]
    assert await db.get_drs_object(id=row["id"]) is None
    again = await add(db, SERVICE_USER)
    assert again["id"] != row["id"] and again["upload"] == row["upload"]


async def test_list_user_uploads_pages_newest_first_without_gaps(db: Database) -> None:
    ids = [(await add(db, SERVICE_USER, filename=f"{n}.txt"))["id"] for n in range(7)]
    everything = await db.list_user_uploads(user=SERVICE_USER, after_created=None, after_id=None, limit=None)
    assert [row["filename"] for row in everything] == [f"{n}.txt" for n in reversed(range(7))]
    seen, cursor = [], (None, None)
    while True:
        page = await db.list_user_uploads(user=SERVICE_USER, after_created=cursor[0], after_id=cursor[1], limit=3)
        if not page:
            break
        seen += [row["id"] for row in page]
        cursor = (page[-1]["created"], page[-1]["id"])
    assert seen == [row["id"] for row in everything] and sorted(seen) == sorted(ids)


async def test_list_drs_objects_returns_only_existing_ids(db: Database) -> None:
    row = await add(db, SERVICE_USER)
    rows = await db.list_drs_objects(ids=[row["id"], uuid.uuid4(), row["id"]])
    assert [r["id"] for r in rows] == [row["id"]]


async def test_tokens_map_to_users_and_cannot_be_stored_twice(db: Database) -> None:
    user = (await db.upsert_user(username="carol"))["id"]
    assert (await db.upsert_user(username="carol"))["id"] == user
    await db.insert_user_token(token_hash="h1", user=user)
    assert (await db.get_user_by_token(token_hash="h1"))["id"] == user
    assert await db.get_user_by_token(token_hash="nope") is None
    with pytest.raises(UniqueViolation):
        await db.insert_user_token(token_hash="h1", user=user)


async def test_get_now_answers(db: Database) -> None:
    assert (await db.get_now())["now"] is not None
