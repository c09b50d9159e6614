-- name: list_job_counts :many
-- Jobs per kind and state, for metrics.
SELECT kind, state, count(*) AS count
FROM jobs
GROUP BY kind, state
ORDER BY kind, state;
