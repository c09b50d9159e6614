-- name: get_job :one
-- One job as its owner sees it.
SELECT id, kind, payload, "user", state, attempts, progress, result, error, created, updated
FROM jobs
WHERE id = $1::uuid AND "user" = $2::uuid;
