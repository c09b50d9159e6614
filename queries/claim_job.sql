-- name: claim_job :one
-- Takes the next due job for a worker; SKIP LOCKED lets many workers claim at once without waiting.
UPDATE jobs
SET state = 'running', worker = $1, heartbeat = now(), attempts = attempts + 1, updated = now()
WHERE id = (
    SELECT id FROM jobs
    WHERE state = 'queued' AND run_after <= now()
    ORDER BY run_after
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, kind, payload, "user", attempts, max_attempts;
