-- name: requeue_job :one
-- Hands a job back untried (a worker shutting down): queued at once, the attempt not counted.
UPDATE jobs
SET state = 'queued', attempts = attempts - 1, run_after = now(), worker = NULL, heartbeat = NULL, updated = now()
WHERE id = $1::uuid AND worker = $2 AND state = 'running'
RETURNING id;
