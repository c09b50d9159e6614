-- name: fail_job :one
-- Records a failed attempt: queued again after a backoff of $4 seconds, or failed for good when $5 says the
-- error is permanent or the job is out of attempts.
UPDATE jobs
SET state = CASE WHEN $5::boolean OR attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
    run_after = now() + make_interval(secs => $4::double precision),
    error = $3, worker = NULL, heartbeat = NULL, updated = now()
WHERE id = $1::uuid AND worker = $2 AND state = 'running'
RETURNING id, state;
