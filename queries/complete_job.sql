-- name: complete_job :one
-- Marks a job done with its result; nothing when the job is no longer the worker's.
UPDATE jobs
SET state = 'done', result = $3::jsonb, worker = NULL, heartbeat = NULL, updated = now()
WHERE id = $1::uuid AND worker = $2 AND state = 'running'
RETURNING id;
