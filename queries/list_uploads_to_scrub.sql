-- name: list_uploads_to_scrub :many
-- Stored blobs never re-hashed or not for $1 seconds, least recently checked first, at most $2.
SELECT id, url, sha256, size
FROM upload
WHERE url LIKE 'storage://%'
    AND (scrubbed IS NULL OR scrubbed < now() - make_interval(secs => $1::double precision))
ORDER BY scrubbed NULLS FIRST, id
LIMIT $2::bigint;
