-- name: list_drs_objects :many
-- The uploads behind several DRS object ids at once (ids that do not exist are left out).
SELECT id, "user", url, sha256, size, filename, created, md5, upload, corrupt
FROM user_upload_complete
WHERE id = ANY($1::uuid[]);
