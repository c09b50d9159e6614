"""The job loop. `python worker.py` runs N_WORKERS concurrent loops against PostgreSQL until SIGTERM; in
memory mode the server runs the same loops in-process.

Each loop claims one job at a time (claim_job: one UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING), holds
no transaction while it runs, heartbeats with its progress, and completes or fails it (retried with
backoff, then failed for good with the error text). Idle loops sleep until NOTIFY wakes them. Jobs of a
worker that died (no heartbeat for JOB_STALE seconds) are rescued by any other. Periodic jobs (garbage
collection, sweep, scrub) are enqueued once per interval across all workers (claim_schedule).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable
from typing import Any

import jobs
import settings as settings_module
import storage
import ufsconfig
from database import Database, Unavailable, open_database
from memdb import MemoryDatabase
from settings import Settings

logger = logging.getLogger("drsbox.worker")


class Worker:
    def __init__(self, db: Database, store: storage.Storage, settings: Settings, loops: int | None = None) -> None:
        self.db = db
        self.storage = store
        self.settings = settings
        self.loops = loops or settings.n_workers
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.should_exit = asyncio.Event()
        self.wake = asyncio.Event()
        self.running: set[asyncio.Task[Any]] = set()
        self.listener: Any = None

    async def run(self) -> None:
        self.listener = await self.listen()
        try:
            await asyncio.gather(self.maintain(), *(self.loop(f"{self.name}/{n}") for n in range(self.loops)))
        finally:
            if self.listener is not None:
                await self.listener.close()

    def stop(self) -> None:
        self.should_exit.set()
        self.wake.set()

    async def listen(self) -> Any:
        try:
            return await self.db.listen_jobs(self.wake.set)
        except Unavailable as error:
            logger.warning("cannot LISTEN for jobs (%s): polling every %gs", error, self.settings.job_poll)
            return None

    async def idle(self, seconds: float) -> None:
        """Sleeps until woken (a new job, shutdown) or `seconds` pass."""
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass

    async def loop(self, holder: str) -> None:
        """One job at a time. Each loop claims under a name of its own, so that a job rescued from it and
        claimed again by a sibling loop is still recognised as no longer its own."""
        while not self.should_exit.is_set():
            self.wake.clear()
            try:
                job = await self.db.claim_job(worker=holder)
            except Unavailable as error:
                logger.warning("cannot claim jobs: %s", error)
                await self.idle(self.settings.job_poll)
                continue
            if job is None:
                await self.idle(self.settings.job_poll)
                continue
            await self.run_job(job, holder)

    async def run_job(self, job: dict[str, Any], holder: str) -> None:
        ctx = jobs.Context(self.db, self.storage, self.settings, job)
        handler = jobs.HANDLERS.get(job["kind"])
        task = asyncio.ensure_future(handler(ctx) if handler else unknown_kind(job["kind"]))
        self.running.add(task)
        beat = asyncio.ensure_future(self.heartbeat(ctx, task, holder))
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this loop itself is being cancelled
            if self.should_exit.is_set():
                await settle(self.db.requeue_job(id=job["id"], worker=holder))  # another worker takes it
                logger.info("job %s (%s) handed back at shutdown", job["id"], job["kind"])
            # else the heartbeat found the job rescued by another worker: nothing of ours to record
        except Exception as error:
            await settle(self.fail(job, holder, error))
        else:
            try:
                await settle(self.db.complete_job(id=job["id"], worker=holder, result=result))
            except Exception as error:  # a result the database refuses (not JSON): the job failed
                await settle(self.fail(job, holder, jobs.PermanentError(f"cannot record the result: {error}")))
        finally:
            self.running.discard(task)
            beat.cancel()

    async def fail(self, job: dict[str, Any], holder: str, error: Exception) -> None:
        final = isinstance(error, jobs.PermanentError)
        backoff = min(self.settings.job_backoff * 2 ** (job["attempts"] - 1), 600.0)
        text = str(error) or type(error).__name__
        failed = await self.db.fail_job(id=job["id"], worker=holder, error=text, backoff=backoff, final=final)
        state = failed["state"] if failed else "lost"
        log = logger.error if state == "failed" else logger.warning
        log("job %s (%s) attempt %d: %s → %s", job["id"], job["kind"], job["attempts"], text, state)

    async def heartbeat(self, ctx: jobs.Context, task: asyncio.Task[Any], holder: str) -> None:
        while not task.done():
            await asyncio.sleep(self.settings.job_heartbeat)
            try:
                alive = await self.db.update_job_heartbeat(id=ctx.job["id"], worker=holder, progress=ctx.progress)
            except Unavailable:
                continue
            if alive is None:  # rescued by another worker after we stalled: stop doing its work twice
                logger.warning("job %s was taken from us; cancelling it", ctx.job["id"])
                task.cancel()
                return

    async def maintain(self) -> None:
        """Rescues jobs of dead workers and enqueues periodic jobs when they are due."""
        periodic = {
            "sweep": self.settings.sweep_interval,
            "scrub": self.settings.scrub_interval,
            "stats": self.settings.stats_interval,
        }
        if not isinstance(self.db, MemoryDatabase):
            # Memory mode's rows vanish on restart while its blobs stay: collecting there would lose files.
            periodic["gc"] = self.settings.gc_interval
        while not self.should_exit.is_set():
            if self.listener is None or not self.listener.alive:
                self.listener = await self.listen()  # the database restarted: listen again (polling meanwhile)
            try:
                for rescued in await self.db.rescue_jobs(stale=self.settings.job_stale):
                    logger.warning("job %s had a dead worker: %s", rescued["id"], rescued["state"])
                for name, interval in periodic.items():
                    if await self.db.claim_schedule(name=name, interval=interval):
                        await self.db.enqueue_job(kind=name, payload={}, user=None, max_attempts=1)
            except Unavailable as error:
                logger.warning("maintenance skipped: %s", error)
            try:
                await asyncio.wait_for(self.should_exit.wait(), self.settings.job_poll)
            except TimeoutError:
                pass

    async def shutdown(self, runner: asyncio.Task[Any]) -> None:
        """Stops claiming; running jobs get WORKER_SHUTDOWN_GRACE seconds, then are cancelled and handed back."""
        self.stop()
        if self.running:
            _, pending = await asyncio.wait(set(self.running), timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
        await runner


async def settle(outcome: Awaitable[Any]) -> None:
    """Records a job's outcome; if the database is away, the job is rescued once its heartbeat is stale."""
    try:
        await outcome
    except Unavailable as error:
        logger.warning("cannot record a job's outcome: %s", error)


async def unknown_kind(kind: str) -> dict[str, Any]:
    raise jobs.PermanentError(f"no handler for jobs of kind {kind!r}")


async def serve(settings: Settings) -> None:
    db = await open_database(settings.database_url)
    store = ufsconfig.open_storage(settings.ufs_storage, fsync=settings.ufs_fsync)
    worker = Worker(db, store, settings)
    runner = asyncio.ensure_future(worker.run())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    logger.info("worker %s: %d job loops", worker.name, worker.loops)
    await asyncio.wait([runner, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    await worker.shutdown(runner)
    await store.close()
    await db.close()
    logger.info("worker %s stopped", worker.name)


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "info").upper(), format="%(levelname)s: %(name)s: %(message)s"
    )
    try:
        settings = settings_module.load()
    except ValueError as error:
        print(f"drsbox worker: {error}", file=sys.stderr)
        return 2
    if not settings.database_url:
        print("drsbox worker: DATABASE_URL is required (in memory mode the server runs jobs itself)", file=sys.stderr)
        return 2
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
