-- name: list_orphaned_uploads :many
-- Upload rows unreferenced for at least $1 seconds, oldest first, at most $2.
SELECT id, url, sha256
FROM upload
WHERE orphaned < now() - make_interval(secs => $1::double precision)
ORDER BY orphaned
LIMIT $2::bigint;
