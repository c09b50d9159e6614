from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import fsspec
import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import postgres  # noqa: E402
import s3  # noqa: E402
import storage  # noqa: E402
from auth import issue_token  # noqa: E402
from codegen.schema import SEED, TABLES  # noqa: E402
from database import Database  # noqa: E402
from memdb import MemoryDatabase  # noqa: E402
from objectstore import FsspecStorage, S3Options, S3Storage  # noqa: E402
from pgdb import PostgresDatabase  # noqa: E402
from server import create_app  # noqa: E402
from settings import Settings  # noqa: E402

SECRET = "service-secret-for-tests"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres.cluster() as pg:
        yield pg.url()


async def reset(url: str) -> None:
    # Truncate rather than roll back, so that locking behaviour in tests stays real.
    conn = await asyncpg.connect(url)
    try:
        names = ", ".join(f'"{table.name}"' for table in TABLES)
        await conn.execute(f"TRUNCATE {names} CASCADE")
        for statement in SEED:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["memory", "postgres"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    if request.param == "memory":
        yield MemoryDatabase()
        return
    url = request.getfixturevalue("pg_url")
    await reset(url)
    database = await PostgresDatabase.connect(url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[s3.Moto]:
    with s3.moto() as server:
        yield server


def s3_storage(moto_server: s3.Moto, prefix: str = "ufs") -> S3Storage:
    """An S3 backend on a fresh bucket of the test endpoint."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    moto_server.make_bucket(bucket)
    return S3Storage(S3Options(bucket, prefix, moto_server.url, "test", "test"))


@pytest.fixture(params=["local", "memory", "fsspec", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[storage.Storage]:
    backend: storage.Storage
    if request.param == "memory":
        backend = storage.MemoryStorage()
    elif request.param == "local":
        backend = storage.LocalStorage(tmp_path / "ufs")
    elif request.param == "fsspec":
        # fsspec's own in-memory filesystem stands in for gs://, az://, ...: the same generic code path.
        backend = FsspecStorage(fsspec.filesystem("memory"), f"/{uuid.uuid4().hex}/ufs")
    else:
        backend = s3_storage(request.getfixturevalue("moto_server"))
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(public_url="http://drs.test:3000", secret=SECRET, max_upload_size=4 * 1024 * 1024)


@pytest.fixture
async def client(db: Database, tmp_path: Path, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client with a real database backend and local storage under tmp_path/ufs."""
    app = create_app(settings, db=db, storage=storage.LocalStorage(tmp_path / "ufs"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://drs.test:3000") as client:
        client.headers["Authorization"] = f"Bearer {await issue_token(db, 'alice')}"
        yield client


@pytest.fixture
async def bob(db: Database) -> dict[str, str]:
    """Headers of a second user."""
    return {"Authorization": f"Bearer {await issue_token(db, 'bob')}"}
