-- Hand-written (never edit once applied): the job queue, the schedule of periodic jobs, and the upload
-- columns used by garbage collection and the integrity scrub. codegen/schema.py declares the same
-- (since=1); tests/test_codegen.py checks that migrating gives exactly db/full_schema.sql.
-- migrate:up
ALTER TABLE "upload" ADD COLUMN "orphaned" timestamptz;
ALTER TABLE "upload" ADD COLUMN "scrubbed" timestamptz;
ALTER TABLE "upload" ADD COLUMN "corrupt" boolean NOT NULL DEFAULT false;
CREATE INDEX "upload_orphaned_idx" ON "upload" (orphaned) WHERE orphaned IS NOT NULL;

CREATE TABLE "jobs" (
    "id" uuid NOT NULL DEFAULT gen_random_uuid(),
    "kind" varchar NOT NULL,
    "payload" jsonb NOT NULL DEFAULT '{}'::jsonb,
    "user" uuid REFERENCES "user" (id) ON DELETE CASCADE,
    "state" varchar NOT NULL DEFAULT 'queued',
    "attempts" integer NOT NULL DEFAULT 0,
    "max_attempts" integer NOT NULL DEFAULT 5,
    "run_after" timestamptz NOT NULL DEFAULT now(),
    "worker" varchar,
    "heartbeat" timestamptz,
    "progress" bigint NOT NULL DEFAULT 0,
    "result" jsonb,
    "error" varchar,
    "created" timestamptz NOT NULL DEFAULT now(),
    "updated" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ("id"),
    CONSTRAINT "jobs_check1" CHECK (state IN ('queued', 'running', 'done', 'failed'))
);
CREATE INDEX "jobs_queued_idx" ON "jobs" (run_after) WHERE state = 'queued';
CREATE INDEX "jobs_running_idx" ON "jobs" (heartbeat) WHERE state = 'running';

CREATE TABLE "schedule" (
    "name" varchar NOT NULL,
    "next_run" timestamptz NOT NULL,
    PRIMARY KEY ("name")
);

CREATE OR REPLACE VIEW "user_upload_complete" AS
SELECT
    user_upload.id,
    user_upload."user",
    upload.url,
    upload.sha256,
    upload.size,
    user_upload.filename,
    user_upload.created,
    upload.md5,
    user_upload.upload,
    upload.corrupt
FROM user_upload
JOIN upload ON user_upload.upload = upload.id;

-- migrate:down
DROP VIEW "user_upload_complete";
CREATE VIEW "user_upload_complete" AS
SELECT
    user_upload.id,
    user_upload."user",
    upload.url,
    upload.sha256,
    upload.size,
    user_upload.filename,
    user_upload.created,
    upload.md5,
    user_upload.upload
FROM user_upload
JOIN upload ON user_upload.upload = upload.id;
DROP TABLE IF EXISTS "schedule";
DROP TABLE IF EXISTS "jobs";
DROP INDEX IF EXISTS "upload_orphaned_idx";
ALTER TABLE "upload" DROP COLUMN "corrupt";
ALTER TABLE "upload" DROP COLUMN "scrubbed";
ALTER TABLE "upload" DROP COLUMN "orphaned";
