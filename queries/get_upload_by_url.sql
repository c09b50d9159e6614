-- name: get_upload_by_url :one
-- The upload row of a URL (storage://<sha256> for stored blobs), if any.
SELECT id, url, sha256, size, md5, created, orphaned, scrubbed, corrupt
FROM upload
WHERE url = $1;
