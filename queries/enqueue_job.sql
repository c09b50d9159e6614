-- name: enqueue_job :one
-- Queues a job and wakes idle workers (LISTEN drsbox_jobs) in the same statement.
WITH queued AS (
    INSERT INTO jobs (kind, payload, "user", max_attempts)
    VALUES ($1, $2::jsonb, $3::uuid, $4::integer)
    RETURNING id, kind, payload, "user", state, attempts, progress, result, error, created, updated
)
SELECT id, kind, payload, "user", state, attempts, progress, result, error, created, updated,
    pg_notify('drsbox_jobs', kind) IS NOT NULL AS notified
FROM queued;
