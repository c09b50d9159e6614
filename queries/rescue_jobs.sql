-- name: rescue_jobs :many
-- Jobs whose worker stopped heartbeating for $1 seconds (it died): queued again, or failed when out of attempts.
UPDATE jobs
SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
    error = CASE WHEN attempts >= max_attempts THEN 'its worker stopped responding' ELSE error END,
    run_after = now(), worker = NULL, heartbeat = NULL, updated = now()
WHERE state = 'running' AND heartbeat < now() - make_interval(secs => $1::double precision)
RETURNING id, state;
