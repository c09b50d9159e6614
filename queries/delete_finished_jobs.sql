-- name: delete_finished_jobs :exec
-- Forgets done and failed jobs last updated more than $1 seconds ago.
DELETE FROM jobs
WHERE state IN ('done', 'failed') AND updated < now() - make_interval(secs => $1::double precision);
