-- name: update_upload_scrub :exec
-- Records the result of re-hashing a blob.
UPDATE upload
SET scrubbed = now(), corrupt = $2::boolean
WHERE id = $1::uuid;
