"""drsbox: `create_app(...)` wires the app; `python server.py` serves it, `python server.py create-token NAME`
prints a new API token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, Route

import auth
import errors
import settings as settings_module
import storage as storage_module
import ufsconfig
from database import Database, open_database
from memdb import MemoryDatabase
from routes import drs, files, health, imports, uploads
from settings import Settings
from worker import Worker

logger = logging.getLogger("drsbox")

DEV_USERNAME = "dev"


def create_app(
    settings: Settings, db: Database | None = None, storage: storage_module.Storage | None = None
) -> Starlette:
    """The ASGI app. Resources not given are opened from the settings at start-up (tests inject theirs)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened_db = app.state.db is None
        if opened_db:
            app.state.db = await open_database(settings.database_url)
        if opened_db and isinstance(app.state.db, MemoryDatabase):
            token = await auth.issue_token(app.state.db, DEV_USERNAME, settings.dev_token)
            # Memory mode is for development: print a working credential rather than make people create one.
            print(f"drsbox: in-memory database; development token: Authorization: Bearer {token}", flush=True)
        runs_jobs = settings.run_jobs if settings.run_jobs is not None else isinstance(app.state.db, MemoryDatabase)
        worker = Worker(app.state.db, app.state.storage, settings) if runs_jobs else None
        runner = asyncio.ensure_future(worker.run()) if worker else None
        try:
            yield
        finally:
            if worker and runner:
                await worker.shutdown(runner)
            await app.state.storage.close()
            if opened_db:
                await app.state.db.close()

    # DRS first: object lookups are the hot path (bench/drs_metadata.py), and no paths overlap. GET of one
    # object also gets a route outside its Mount, which saves a router layer (other methods fall through).
    routes = [
        *(Route(f"{base}/objects/{{object_id}}", drs.get_object, methods=["GET"]) for base in drs.BASES),
        *(Mount(base, routes=drs.routes) for base in drs.BASES),
        *health.routes,
        *files.routes,
        *uploads.routes,
        *imports.routes,
    ]
    app = Starlette(routes=routes, exception_handlers=errors.HANDLERS, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.settings = settings
    app.state.db = db
    # Opening a backend does no I/O, so a bad UFS_STORAGE stops start-up here, before anything listens.
    app.state.storage = storage or ufsconfig.open_storage(settings.ufs_storage, fsync=settings.ufs_fsync)
    return app


async def create_token(settings: Settings, username: str) -> str:
    db = await open_database(settings.database_url)
    try:
        return await auth.issue_token(db, username)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python server.py", description="drsbox file store")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the server (the default)")
    token_command = commands.add_parser("create-token", help="create USERNAME if needed and print a new token")
    token_command.add_argument("username")
    args = parser.parse_args(argv)
    try:
        settings = settings_module.load()
        app = create_app(settings)
    except ValueError as error:
        print(f"drsbox: {error}", file=sys.stderr)
        return 2
    if args.command == "create-token":
        if not settings.database_url:
            print("create-token needs DATABASE_URL: in-memory tokens vanish with the process", file=sys.stderr)
            return 2
        print(asyncio.run(create_token(settings, args.username)))
        return 0
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # X-Forwarded-Proto/For are honoured only from these proxies; links always come from PUBLIC_URL.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        access_log=False,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:
    app = create_app(settings_module.load())  # for `uvicorn server:app`
