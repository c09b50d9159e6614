-- name: get_drs_stats :one
-- The last counted DRS service statistics, if they were ever counted.
SELECT object_count, total_size, updated
FROM drs_stats;
