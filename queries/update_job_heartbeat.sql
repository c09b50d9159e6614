-- name: update_job_heartbeat :one
-- Records that a worker still holds a job, with its progress in bytes; nothing when the job is no longer its.
UPDATE jobs
SET heartbeat = now(), progress = $3::bigint, updated = now()
WHERE id = $1::uuid AND worker = $2 AND state = 'running'
RETURNING id;
