"""The job queue (both backends) and the worker loop: claim, heartbeat, retries, rescue, shutdown, schedule."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

import jobs
from auth import SERVICE_USER
from database import Database
from pgdb import PostgresDatabase
from settings import Settings
from storage import MemoryStorage
from worker import Worker

pytestmark = pytest.mark.anyio

FAST = Settings(job_heartbeat=0.05, job_stale=0.3, job_poll=0.05, job_backoff=0.01, shutdown_grace=0.2)


async def enqueue(db: Database, kind: str = "noop", attempts: int = 3, **payload: Any) -> dict:
    job = await db.enqueue_job(kind=kind, payload=payload, user=SERVICE_USER, max_attempts=attempts)
    assert job is not None and job["state"] == "queued"
    return job


async def state_of(db: Database, job: dict) -> dict:
    row = await db.get_job(id=job["id"], user=SERVICE_USER)
    assert row is not None
    return row


async def test_claim_takes_each_job_once_even_when_workers_race(db: Database) -> None:
    queued = {(await enqueue(db))["id"] for _ in range(10)}
    claims = await asyncio.gather(*(db.claim_job(worker=f"w{n}") for n in range(14)))
    claimed = [claim["id"] for claim in claims if claim is not None]
    assert sorted(claimed) == sorted(queued)  # ten distinct jobs, four claims came back empty
    assert await db.claim_job(worker="late") is None


async def test_complete_records_the_result_and_only_the_holder_may(db: Database) -> None:
    job = await enqueue(db, url="x")
    claim = await db.claim_job(worker="w1")
    assert claim["payload"] == {"url": "x"} and claim["attempts"] == 1
    assert await db.complete_job(id=job["id"], worker="someone else", result={}) is None
    assert await db.update_job_heartbeat(id=job["id"], worker="w1", progress=123) is not None
    assert await db.complete_job(id=job["id"], worker="w1", result={"ok": True}) is not None
    row = await state_of(db, job)
    assert (row["state"], row["result"], row["progress"]) == ("done", {"ok": True}, 123)


async def test_failures_back_off_then_fail_for_good_with_the_error(db: Database) -> None:
    job = await enqueue(db, attempts=2)
    await db.claim_job(worker="w")
    retried = await db.fail_job(id=job["id"], worker="w", error="flaky", backoff=3600, final=False)
    assert retried["state"] == "queued"
    assert await db.claim_job(worker="w") is None  # backing off
    await db.fail_job(id=job["id"], worker="nobody", error="-", backoff=0, final=False)  # not the holder: ignored
    row = await state_of(db, job)
    assert row["state"] == "queued" and row["error"] == "flaky"
    permanent = await enqueue(db, attempts=5)
    await db.claim_job(worker="w")
    assert (await db.fail_job(id=permanent["id"], worker="w", error="bad url", backoff=0, final=True))[
        "state"
    ] == "failed"


async def test_jobs_of_a_silent_worker_are_rescued_and_requeued_jobs_keep_their_attempts(db: Database) -> None:
    job = await enqueue(db)
    await db.claim_job(worker="dead")
    assert await db.rescue_jobs(stale=3600) == []
    await asyncio.sleep(0.05)
    assert [row["id"] for row in await db.rescue_jobs(stale=0.01)] == [job["id"]]
    assert await db.update_job_heartbeat(id=job["id"], worker="dead", progress=0) is None  # no longer its
    claim = await db.claim_job(worker="alive")
    assert claim["attempts"] == 2
    assert await db.requeue_job(id=job["id"], worker="alive") is not None
    assert (await db.claim_job(worker="next"))["attempts"] == 2


async def test_schedule_lets_one_caller_per_interval(db: Database) -> None:
    first = await asyncio.gather(*(db.claim_schedule(name="gc", interval=3600) for _ in range(5)))
    assert sum(row is not None for row in first) == 1
    assert await db.claim_schedule(name="gc", interval=3600) is None
    assert await db.claim_schedule(name="scrub", interval=0.01) is not None
    await asyncio.sleep(0.05)
    assert await db.claim_schedule(name="scrub", interval=0.01) is not None


async def test_enqueue_wakes_listeners(db: Database) -> None:
    woken = asyncio.Event()
    listener = await db.listen_jobs(woken.set)
    try:
        await enqueue(db)
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await listener.close()


async def run_worker(db: Database, settings: Settings, until: Any, timeout: float = 10) -> Worker:
    worker = Worker(db, MemoryStorage(), settings, loops=2)
    runner = asyncio.ensure_future(worker.run())
    try:
        async with asyncio.timeout(timeout):
            while not await until():
                await asyncio.sleep(0.02)
    finally:
        await worker.shutdown(runner)
    return worker


async def test_worker_runs_jobs_and_retries_failures(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def flaky(ctx: jobs.Context) -> dict:
        calls.append(ctx.job["attempts"])
        if ctx.job["attempts"] < 3:
            raise RuntimeError("not yet")
        return {"attempt": ctx.job["attempts"]}

    monkeypatch.setitem(jobs.HANDLERS, "flaky", flaky)
    easy = [await enqueue(db) for _ in range(5)]
    hard = await enqueue(db, kind="flaky", attempts=5)
    doomed = await enqueue(db, kind="no-such-kind")

    async def settled() -> bool:
        rows = [await state_of(db, job) for job in [*easy, hard, doomed]]
        return all(row["state"] in ("done", "failed") for row in rows)

    await run_worker(db, FAST, settled)
    assert [(await state_of(db, job))["state"] for job in easy] == ["done"] * 5
    assert (await state_of(db, hard))["result"] == {"attempt": 3} and calls == [1, 2, 3]
    row = await state_of(db, doomed)
    assert row["state"] == "failed" and "no handler" in row["error"] and row["attempts"] == 1


async def test_shutdown_hands_a_long_job_back_untried(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()

    async def forever(ctx: jobs.Context) -> dict:
        started.set()
        await asyncio.sleep(3600)
        return {}

    monkeypatch.setitem(jobs.HANDLERS, "forever", forever)
    job = await enqueue(db, kind="forever")

    async def running() -> bool:
        return started.is_set()

    await run_worker(db, FAST, running)
    row = await state_of(db, job)
    assert (row["state"], row["attempts"]) == ("queued", 0)


async def test_a_job_taken_from_a_stalled_worker_is_not_finished_by_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancelled = asyncio.Event()

    async def slow(ctx: jobs.Context) -> dict:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    monkeypatch.setitem(jobs.HANDLERS, "slow", slow)
    job = await enqueue(db, kind="slow")
    settings = dataclasses.replace(FAST, job_stale=3600)

    rescued: list[dict] = []

    async def rescued_elsewhere() -> bool:
        if not rescued and (await state_of(db, job))["state"] == "running":
            rescued.extend(await db.rescue_jobs(stale=0))  # as another worker would after missed heartbeats
        return cancelled.is_set()

    await run_worker(db, settings, rescued_elsewhere)
    assert job["id"] in [row["id"] for row in rescued]  # (periodic jobs may have been running too)
    assert (await state_of(db, job))["state"] == "queued"  # run again, then handed back at shutdown


async def test_periodic_jobs_are_enqueued_once_per_interval(db: Database) -> None:
    settings = dataclasses.replace(FAST, gc_interval=3600, sweep_interval=3600, scrub_interval=3600)

    async def scheduled() -> bool:
        counts = {(row["kind"], row["state"]) for row in await db.list_job_counts()}
        return {kind for kind, _ in counts} >= {"sweep", "scrub"}

    await run_worker(db, settings, scheduled)
    await run_worker(db, settings, lambda: asyncio.sleep(0.2, True))  # a second worker: nothing is due yet
    kinds = [row["kind"] for row in await db.list_job_counts() for _ in range(row["count"])]
    assert kinds.count("sweep") == 1 and kinds.count("scrub") == 1
    assert kinds.count("gc") == (1 if isinstance(db, PostgresDatabase) else 0)  # never in memory mode
